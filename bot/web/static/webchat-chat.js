// Webchat: one chat. Its messages, the input box, and the WebSocket that carries them.

import {
  $, BOT_NAME, el, formatTime, messageId, showBanner, showView, state, views
} from './webchat-core.js';
import { chatEntries, checkRoom, recheck } from './webchat-list.js';

// ---------- chat view ----------

function openChat(chatId) {
  const entry = chatEntries().find((c) => c.id === chatId) ||
    { id: chatId, title: '群聊', isRoom: chatId !== 'private' };
  state.chat = entry;
  state.outbox = [];
  state.sentLocal = [];
  state.sentMedia = [];
  $('chat-title').textContent = entry.title;
  $('messages').replaceChildren();
  $('jump-new').hidden = true;
  $('text-input').value = '';
  showView('chat');
  fitInput();
  connect();
  if (entry.isRoom && !state.checkedRooms.has(entry.id)) checkRoom(entry.id);
}

function isOwn(msg) {
  return msg.own === true;
}

// Only the bot and party members are verified; the server keeps residents off their names.
function verifiedBadge(msg) {
  if (msg.verified !== true) return '';
  return msg.sender_kind === 'bot' ? '✔ 官方' : '✔ 社区工作人员';
}

function senderLabel(msg) {
  if (msg.sender_kind === 'bot') return BOT_NAME;
  return msg.sender_name || '';
}

// Numbers worth a tap: the emergency lines and phone numbers (a member's, when they chose to
// give it). Lookbehind is missing on older phones, so the character before is matched instead.
const CALLABLE = /(^|\D)(110|119|120|1[3-9]\d{9}|0\d{2,3}-?\d{7,8})(?=\D|$)/g;

function withCallLinks(text) {
  const parts = document.createDocumentFragment();
  let done = 0;
  for (const match of text.matchAll(CALLABLE)) {
    const start = match.index + match[1].length;
    const number = match[2];
    const link = el('a', 'tel-link', number);
    link.href = 'tel:' + number.replace('-', '');
    link.setAttribute('aria-label', '拨打' + number);
    parts.append(text.slice(done, start), link);
    done = start + number.length;
  }
  parts.append(text.slice(done));
  return parts;
}

// `badge`: a verified line (the bot's or a member's), whose numbers become tap-to-call links;
// a resident's numbers stay text, so nobody can plant a number to call.
function buildBubble(text, own, name, time, extraClass, badge) {
  const row = el('div', 'msg ' + (own ? 'msg-own' : 'msg-other') + (extraClass ? ' ' + extraClass : ''));
  if (name) {
    const label = el('div', 'msg-name', name);
    if (badge) label.append(' ', el('span', 'badge-verified', badge));
    row.append(label);
  }
  const bubble = el('div', 'bubble');
  bubble.append(badge ? withCallLinks(text) : text);
  row.append(bubble);
  if (time) row.append(el('div', 'msg-time', time));
  return row;
}

function addLocalRow(row) {
  $('messages').append(row);
  scrollToBottom();
}

function scrollToBottom() {
  const box = $('messages');
  box.scrollTop = box.scrollHeight;
  $('jump-new').hidden = true;
}

function nearBottom() {
  const box = $('messages');
  return box.scrollHeight - box.scrollTop - box.clientHeight < 120;
}

$('jump-new').addEventListener('click', scrollToBottom);
$('messages').addEventListener('scroll', () => { if (nearBottom()) $('jump-new').hidden = true; });

// Insert server messages above the local (not yet echoed) bubbles.
function appendServerRow(row) {
  const box = $('messages');
  const firstLocal = box.querySelector('.msg-local');
  box.insertBefore(row, firstLocal);
}

// A photo or voice clip shows as a word: the resident knows what they sent, and a neighbour
// in a room need not see it (members do, in the console).
function shownText(msg) {
  if (msg.kind === 'image') return '📷 照片';
  if (msg.kind === 'voice') return '🎤 语音' + (msg.text ? '：' + msg.text : '');
  return msg.text;
}

function renderMessage(msg, fromHistory) {
  const own = isOwn(msg);
  if (own && !fromHistory && msg.kind !== 'text') {
    // Our own photo or voice clip came back: its "sending" row goes.
    const idx = state.sentMedia.findIndex((m) => m.messageId === msg.id);
    if (idx >= 0) state.sentMedia.splice(idx, 1)[0].el.remove();
  } else if (own && !fromHistory) {
    // Our own message came back: drop the local placeholder with the same text.
    // (Check the unacked outbox too, in case the echo beats the ack.) In a room the server
    // masks phone numbers, so the text may differ: echoes come back in the order they were
    // sent, so then it is the oldest acked one.
    const found = [state.sentLocal, state.outbox].some((list) => {
      const idx = list.findIndex((m) => m.text === msg.text);
      if (idx >= 0) list.splice(idx, 1)[0].el.remove();
      return idx >= 0;
    });
    if (!found && state.sentLocal.length) state.sentLocal.shift().el.remove();
  }
  const hint = $('messages').querySelector('.msg-hint');
  if (hint) hint.remove();
  const showName = !own && (state.chat.isRoom || msg.sender_kind === 'member');
  const row = buildBubble(shownText(msg), own, showName ? senderLabel(msg) : '', formatTime(msg.created_at), '',
    verifiedBadge(msg));
  row.dataset.id = msg.id;
  appendServerRow(row);
  if (own) dropChoices();
  if (msg.choices && msg.choices.length) showChoices(msg.choices);
  return own;
}

// ---------- answers to a question (how did it go: 满意 / 一般 / 不满意) ----------

// Only the newest question keeps its buttons, until the resident says anything (tapped,
// typed or spoken: the server reads each the same way).
const CHOICE_IDS = { 满意: 'rate-satisfied', 一般: 'rate-so-so', 不满意: 'rate-unsatisfied' };

function dropChoices() {
  const old = $('rating-choices');
  if (old) old.remove();
}

function showChoices(choices) {
  dropChoices();
  const box = el('div', 'choices');
  box.id = 'rating-choices';
  box.setAttribute('role', 'group');
  box.setAttribute('aria-label', '这次办得怎么样？点一下回答');
  for (const choice of choices) {
    const button = el('button', 'btn btn-choice', choice);
    button.type = 'button';
    if (CHOICE_IDS[choice]) button.id = CHOICE_IDS[choice];
    button.addEventListener('click', () => sendLine(choice));
    box.append(button);
  }
  appendServerRow(box);
}

function renderHistory(messages) {
  $('messages').querySelectorAll('.msg-hint, .choices, .msg:not(.msg-local)').forEach((n) => n.remove());
  // Acked messages and uploaded photos and clips are part of the history now.
  for (const m of [...state.sentLocal, ...state.sentMedia]) m.el.remove();
  state.sentLocal = [];
  state.sentMedia = [];
  if (!messages.length) {
    const hint = state.chat.isRoom ? '群里还没有消息，打个招呼吧。' : '有什么事，直接跟我说就行。';
    appendServerRow(el('div', 'msg-hint', hint));
  }
  for (const msg of messages) renderMessage(msg, true);
  // A message stored just before the connection dropped is in the history already, even
  // though its ack never came: hide its "sending" bubble (the resend is a duplicate the
  // server only acks), so it is not shown twice.
  const matched = new Set();
  for (const item of state.outbox) {
    const hit = messages.find((m) => !matched.has(m.id) && isOwn(m) && m.text === item.text &&
      new Date(m.created_at).getTime() > item.sentAt - 10 * 60000);
    if (hit) { matched.add(hit.id); item.el.remove(); }
  }
  scrollToBottom();
}

function pendingRow(text) {
  const row = buildBubble(text, true, '', '', 'msg-local msg-pending');
  row.append(el('div', 'msg-time', '发送中…'));
  return row;
}

// A line the server has not taken within a few seconds, or written while the connection is
// down, says so instead of "发送中…"; it goes out by itself once the chat reconnects.
const SLOW_ACK_MS = 5000;
const RESENDING = '网络不好，正在重发';

function markResending(item) {
  const marker = item.el.querySelector('.msg-time');
  if (!marker || !state.outbox.includes(item)) return;
  marker.textContent = RESENDING;
  marker.classList.add('msg-resending');
}

function addPending(text) {
  const item = { id: messageId(), text, el: pendingRow(text), sentAt: Date.now() };
  item.slowTimer = setTimeout(() => markResending(item), SLOW_ACK_MS);
  state.outbox.push(item);
  addLocalRow(item.el);
  return item;
}

function handleAck(id) {
  const idx = state.outbox.findIndex((m) => m.id === id);
  if (idx < 0) return;
  const item = state.outbox.splice(idx, 1)[0];
  clearTimeout(item.slowTimer);
  item.el.classList.remove('msg-pending');
  const marker = item.el.querySelector('.msg-time');
  if (marker) marker.remove();
  state.sentLocal.push(item);
}

// An error frame carries no id; the server answers in order, so it is about
// the oldest message still waiting for its ack (if any).
function markFailed() {
  const item = state.outbox.shift();
  if (!item) return;
  item.el.classList.replace('msg-pending', 'msg-failed');
  const retry = el('button', 'msg-retry', '没发出去，点这里重发');
  retry.type = 'button';
  retry.addEventListener('click', () => {
    // Same id: if the server did store it after all, the resend is only acked.
    item.el.classList.replace('msg-failed', 'msg-pending');
    retry.replaceWith(el('div', 'msg-time', '发送中…'));
    item.sentAt = Date.now();
    item.slowTimer = setTimeout(() => markResending(item), SLOW_ACK_MS);
    state.outbox.push(item);
    trySend(item);
  });
  item.el.querySelector('.msg-time').replaceWith(retry);
}

// A socket still connecting sends the outbox once it opens; a dropped one says so at once.
function trySend(item) {
  if (state.ws && state.ws.readyState === WebSocket.OPEN) {
    state.ws.send(JSON.stringify({ type: 'message', id: item.id, text: item.text }));
  } else if (!state.ws || state.ws.readyState !== WebSocket.CONNECTING) {
    markResending(item);
  }
}

function sendLine(text) {
  dropChoices();
  trySend(addPending(text));
}

$('send-form').addEventListener('submit', (e) => {
  e.preventDefault();
  const input = $('text-input');
  const text = input.value.trim();
  if (!text) { input.focus(); return; }
  input.value = '';
  fitInput();
  sendLine(text);
  input.focus();
});

// The box grows with the text (up to a few lines) so the whole message can be read back.
function fitInput() {
  const input = $('text-input');
  const atBottom = nearBottom();
  input.style.height = 'auto';
  const border = input.offsetHeight - input.clientHeight;
  input.style.height = Math.min(input.scrollHeight + border, 180) + 'px';
  if (atBottom) $('messages').scrollTop = $('messages').scrollHeight;
}
$('text-input').addEventListener('input', fitInput);

// Enter sends (Shift+Enter starts a new line); never while a Chinese input method is composing.
$('text-input').addEventListener('keydown', (e) => {
  if (e.key !== 'Enter' || e.shiftKey) return;
  e.preventDefault();
  if (e.isComposing || e.keyCode === 229) return;
  $('send-form').requestSubmit();
});

// Keep the input box above the on-screen keyboard, also where the browser only shrinks the
// visual viewport (iOS Safari), and keep the newest message in view when the keyboard opens.
const vv = window.visualViewport;
if (vv) {
  const fit = () => {
    const atBottom = !views.chat.hidden && nearBottom();
    if (vv.scale > 1.01) document.body.style.removeProperty('height');  // pinch-zoomed: leave it
    else document.body.style.height = Math.round(vv.height) + 'px';
    if (atBottom) scrollToBottom();
  };
  vv.addEventListener('resize', fit);
  fit();
}

$('back').addEventListener('click', () => {
  if (state.enteredFromList) history.back();
  else location.hash = '';
});

// ---------- websocket ----------

function closeSocket() {
  state.wsGen += 1;
  clearTimeout(state.retryTimer);
  if (state.ws) state.ws.close();
  state.ws = null;
  showBanner('');
}

function connect() {
  closeSocket();
  const gen = state.wsGen;
  const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
  const params = new URLSearchParams({ chat: state.chat.id });  // who we are travels in the cookie
  const ws = new WebSocket(proto + '//' + location.host + '/webchat/ws?' + params);
  state.ws = ws;
  let opened = false;

  ws.addEventListener('open', () => {
    opened = true;
    state.failedOpens = 0;
  });

  ws.addEventListener('message', (event) => {
    if (gen !== state.wsGen) return;
    let frame;
    try { frame = JSON.parse(event.data); } catch (err) { return; }
    if (frame.type === 'history') {
      state.retryDelay = 1000;
      showBanner('');
      renderHistory(frame.messages || []);
      // Anything still unacked goes out again after reconnecting.
      for (const item of state.outbox) trySend(item);
    } else if (frame.type === 'ack') {
      handleAck(frame.id);
    } else if (frame.type === 'message' && frame.message) {
      const wasAtBottom = nearBottom();
      const own = renderMessage(frame.message);
      if (own || wasAtBottom) scrollToBottom();
      else $('jump-new').hidden = false;
    } else if (frame.type === 'error') {
      markFailed();
      showBanner(frame.message || '出了点问题，请稍后再试。', 'error');
      state.bannerTimer = setTimeout(() => showBanner(''), 6000);
    }
  });

  ws.addEventListener('close', () => {
    if (gen !== state.wsGen) return;
    if (!opened) {
      state.failedOpens += 1;
      if (state.failedOpens >= 2) recheck();
    }
    showBanner('连接中…', 'info');
    for (const item of state.outbox) markResending(item);
    state.retryTimer = setTimeout(() => { if (gen === state.wsGen) connect(); }, state.retryDelay);
    state.retryDelay = Math.min(state.retryDelay * 2, 10000);
  });
}

export { addLocalRow, closeSocket, openChat, pendingRow, shownText };
