// Webchat for residents: a small WeChat-like stand-in. See docs/api.md.
'use strict';

(function () {
  const BOT_NAME = '社区小助手';
  const KEY_USER = 'webchat.user_id';
  const KEY_NAME = 'webchat.name';
  const ID_CHARS = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-';

  const $ = (id) => document.getElementById(id);
  const views = { name: $('view-name'), list: $('view-list'), chat: $('view-chat') };

  const state = {
    userId: null,
    name: null,
    rooms: [],
    chat: null,        // {id, title, isRoom}
    ws: null,
    wsGen: 0,          // bumps on every (re)connect so stale sockets are ignored
    retryDelay: 1000,
    retryTimer: null,
    bannerTimer: null,
    enteredFromList: false,
    outbox: [],        // own messages not yet acked: {id, text, el}
    sentLocal: [],     // acked own messages still waiting for their echo: {text, el}
  };

  // ---------- helpers ----------

  function randomId(len) {
    const bytes = new Uint8Array(len);
    crypto.getRandomValues(bytes);
    let out = '';
    for (const b of bytes) out += ID_CHARS[b % ID_CHARS.length];
    return out;
  }

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = text;
    return node;
  }

  const timeFmt = new Intl.DateTimeFormat('zh-CN', {
    timeZone: 'Asia/Shanghai', hour: '2-digit', minute: '2-digit', hourCycle: 'h23',
  });
  const dayFmt = new Intl.DateTimeFormat('zh-CN', {
    timeZone: 'Asia/Shanghai', month: 'numeric', day: 'numeric',
  });

  function formatTime(iso) {
    const date = new Date(iso);
    if (isNaN(date)) return '';
    const day = dayFmt.format(date);
    const time = timeFmt.format(date);
    return day === dayFmt.format(new Date()) ? time : day + ' ' + time;
  }

  function showBanner(text, kind) {
    clearTimeout(state.bannerTimer);
    const banner = $('banner');
    banner.textContent = text || '';
    banner.className = 'banner' + (kind ? ' banner-' + kind : '');
    banner.hidden = !text;
  }

  function showView(name) {
    for (const key of Object.keys(views)) views[key].hidden = key !== name;
  }

  // ---------- name ----------

  function loadIdentity() {
    let userId = localStorage.getItem(KEY_USER);
    if (!userId || !/^[A-Za-z0-9_-]{8,64}$/.test(userId)) {
      userId = randomId(16);
      localStorage.setItem(KEY_USER, userId);
    }
    state.userId = userId;
    state.name = localStorage.getItem(KEY_NAME);
  }

  function showNameError(text) {
    const box = $('name-error');
    box.textContent = text || '';
    box.hidden = !text;
    $('name-input').setAttribute('aria-invalid', text ? 'true' : 'false');
  }

  function askName() {
    closeSocket();
    showNameError('');
    $('name-input').value = state.name || '';
    $('name-cancel').hidden = !state.name;
    showView('name');
    $('name-input').focus();
  }

  $('name-form').addEventListener('submit', (e) => {
    e.preventDefault();
    // Count characters, not UTF-16 units, so an emoji is never cut in half.
    const name = Array.from($('name-input').value.trim()).slice(0, 20).join('');
    if (!name) {
      showNameError('请先写上您的称呼，比如：张阿姨');
      $('name-input').focus();
      return;
    }
    showNameError('');
    state.name = name;
    localStorage.setItem(KEY_NAME, name);
    route();
  });
  $('name-input').addEventListener('input', () => showNameError(''));
  $('name-cancel').addEventListener('click', route);
  $('change-name').addEventListener('click', (e) => { e.preventDefault(); askName(); });

  // ---------- chat list ----------

  function chatEntries() {
    const entries = [{ id: 'private', title: BOT_NAME, sub: '私聊 · 有事随时问我', isRoom: false }];
    for (const room of state.rooms) {
      entries.push({ id: room.id, title: room.name, sub: '群聊 · ' + (room.grid || ''), isRoom: true });
    }
    return entries;
  }

  function renderList() {
    $('hello-text').textContent = state.name + '，您好！';
    const list = $('chat-list');
    list.replaceChildren();
    for (const entry of chatEntries()) {
      const item = el('li');
      const link = el('a', 'chat-item');
      link.href = '#chat=' + encodeURIComponent(entry.id);
      const avatar = el('span', 'avatar' + (entry.isRoom ? ' avatar-room' : ' avatar-bot'),
        entry.isRoom ? '群' : '助');
      const body = el('span', 'chat-item-body');
      body.append(el('span', 'chat-item-title', entry.title), el('span', 'chat-item-sub', entry.sub));
      link.append(avatar, body);
      item.append(link);
      list.append(item);
    }
  }

  async function loadRooms() {
    const status = $('rooms-status');
    try {
      const resp = await fetch('/webchat/api/rooms', { headers: { Accept: 'application/json' } });
      if (!resp.ok) throw new Error('HTTP ' + resp.status);
      const data = await resp.json();
      state.rooms = Array.isArray(data.rooms) ? data.rooms : [];
      status.hidden = true;
    } catch (err) {
      status.textContent = '群聊列表暂时没加载出来，稍后再试试。';
      status.hidden = false;
    }
    if (!views.list.hidden) renderList();
    if (state.chat && state.chat.isRoom) {
      const room = state.rooms.find((r) => r.id === state.chat.id);
      if (room) $('chat-title').textContent = state.chat.title = room.name;
    }
  }

  // ---------- chat view ----------

  function openChat(chatId) {
    const entry = chatEntries().find((c) => c.id === chatId) ||
      { id: chatId, title: '群聊', isRoom: chatId !== 'private' };
    state.chat = entry;
    state.outbox = [];
    state.sentLocal = [];
    $('chat-title').textContent = entry.title;
    $('messages').replaceChildren();
    $('jump-new').hidden = true;
    $('text-input').value = '';
    showView('chat');
    fitInput();
    connect();
  }

  function isOwn(msg) {
    return msg.sender_kind === 'resident' && msg.user_id === state.userId;
  }

  function senderLabel(msg) {
    if (msg.sender_kind === 'bot') return BOT_NAME;
    return msg.sender_name || '';
  }

  function buildBubble(text, own, name, time, extraClass) {
    const row = el('div', 'msg ' + (own ? 'msg-own' : 'msg-other') + (extraClass ? ' ' + extraClass : ''));
    if (name) row.append(el('div', 'msg-name', name));
    row.append(el('div', 'bubble', text));
    if (time) row.append(el('div', 'msg-time', time));
    return row;
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

  function renderMessage(msg, fromHistory) {
    const own = isOwn(msg);
    if (own && !fromHistory) {
      // Our own message came back: drop the local placeholder with the same text.
      // (Check the unacked outbox too, in case the echo beats the ack.)
      for (const list of [state.sentLocal, state.outbox]) {
        const idx = list.findIndex((m) => m.text === msg.text);
        if (idx >= 0) { list.splice(idx, 1)[0].el.remove(); break; }
      }
    }
    const hint = $('messages').querySelector('.msg-hint');
    if (hint) hint.remove();
    const showName = !own && (state.chat.isRoom || msg.sender_kind === 'member');
    appendServerRow(buildBubble(msg.text, own, showName ? senderLabel(msg) : '', formatTime(msg.created_at)));
    return own;
  }

  function renderHistory(messages) {
    $('messages').querySelectorAll('.msg-hint, .msg:not(.msg-local)').forEach((n) => n.remove());
    // Acked messages are part of the history now.
    for (const m of state.sentLocal) m.el.remove();
    state.sentLocal = [];
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

  function addPending(text) {
    const row = buildBubble(text, true, '', '', 'msg-local msg-pending');
    row.append(el('div', 'msg-time', '发送中…'));
    $('messages').append(row);
    const item = { id: crypto.randomUUID ? crypto.randomUUID() : randomId(32), text, el: row, sentAt: Date.now() };
    state.outbox.push(item);
    scrollToBottom();
    return item;
  }

  function handleAck(id) {
    const idx = state.outbox.findIndex((m) => m.id === id);
    if (idx < 0) return;
    const item = state.outbox.splice(idx, 1)[0];
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
      state.outbox.push(item);
      trySend(item);
    });
    item.el.querySelector('.msg-time').replaceWith(retry);
  }

  function trySend(item) {
    if (state.ws && state.ws.readyState === WebSocket.OPEN) {
      state.ws.send(JSON.stringify({ type: 'message', id: item.id, text: item.text }));
    }
  }

  $('send-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const input = $('text-input');
    const text = input.value.trim();
    if (!text) { input.focus(); return; }
    input.value = '';
    fitInput();
    trySend(addPending(text));
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
    const params = new URLSearchParams({ user_id: state.userId, name: state.name, chat: state.chat.id });
    const ws = new WebSocket(proto + '//' + location.host + '/webchat/ws?' + params);
    state.ws = ws;

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
      showBanner('连接中…', 'info');
      state.retryTimer = setTimeout(() => { if (gen === state.wsGen) connect(); }, state.retryDelay);
      state.retryDelay = Math.min(state.retryDelay * 2, 10000);
    });
  }

  // ---------- routing ----------

  function route() {
    if (!state.name) { askName(); return; }
    const match = location.hash.match(/^#chat=(.+)$/);
    if (match) {
      const chatId = decodeURIComponent(match[1]);
      if (!state.chat || state.chat.id !== chatId || views.chat.hidden) {
        state.enteredFromList = !views.list.hidden;
        openChat(chatId);
      }
      return;
    }
    closeSocket();
    state.chat = null;
    renderList();
    showView('list');
    if (!$('rooms-status').hidden) loadRooms();
  }

  window.addEventListener('hashchange', route);

  loadIdentity();
  route();
  loadRooms();
})();
