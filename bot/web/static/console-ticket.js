// Console: one ticket (#t=ID). Its details, messages, history, and `act` for its buttons.

import {
  $, BOT_NAME, UNCLAIMED, el, excerpt, formatTime, showError, showOk, state, timeAgo
} from './console-core.js';
import {
  countdown, isDone, isMine, isOpen, isSecretary, isUnsure, nobodyText, ratingTag, scheduleRefresh, statusTags,
  tag
} from './console-list.js';
import { api, mediaUrl } from './console-session.js';

// ---------- one ticket ----------
async function loadTicket(id) {
  try {
    const ticket = await api('GET', '/api/tickets/' + id);
    if (state.currentId !== id) return;
    state.current = ticket;
    renderTicket(ticket);
  } catch (err) {
    if (state.currentId !== id) return;
    if (err.status === 403 || err.status === 404) showGone(err.status);
    else showError(err.message);
  }
}

// The ticket cannot be shown (any more): say so plainly instead of "正在打开…" forever.
function showGone(status) {
  showError('');
  state.current = null;
  $('ticket-info').hidden = true;
  $('ticket-body').hidden = true;
  $('ticket-gone-text').textContent = status === 404
    ? '没有找到这张工单，可能是链接不对。'
    : '这张工单现在不归您管（可能已经由其他人接手了），您不用再管它了。';
  $('ticket-gone').hidden = false;
}
$('gone-back').addEventListener('click', () => { location.hash = ''; });

function infoRow(label, value) {
  const row = el('div', 'info-row');
  const content = el('span', 'info-value');
  content.append(value);  // text, or a node
  row.append(el('span', 'info-label', label), content);
  return row;
}

const digits = (phone) => String(phone).replace(/[^0-9+]/g, '');

// The masked number, a button to see the whole one (the server records who looked), and
// once seen, a big "拨打" link.
function phoneRow(t, masked) {
  const box = el('span', 'phone-box');
  const revealed = state.revealed && state.revealed.id === t.id ? state.revealed : null;
  if (revealed && revealed.phone) {
    const number = el('a', 'phone-full', revealed.phone);
    const call = el('a', 'btn btn-call-big', '拨打');
    number.href = call.href = 'tel:' + digits(revealed.phone);
    call.setAttribute('aria-label', '拨打 ' + revealed.phone);
    box.append(number, call);
  } else if (revealed) {
    box.append(el('span', '', (masked || '') + '（居民没有留完整电话）'));
  } else {
    box.append(el('span', 'phone-masked', masked));
    const show = el('button', 'btn btn-small btn-reveal', '查看完整电话');
    show.type = 'button';
    show.addEventListener('click', () => revealPhone(t.id, show));
    box.append(show, el('span', 'phone-note', '查看会留记录'));
  }
  return infoRow('电话', box);
}

async function revealPhone(id, button) {
  button.disabled = true;
  button.textContent = '正在查看…';
  try {
    const data = await api('POST', '/api/tickets/' + id + '/phone');
    if (state.currentId !== id) return;
    state.revealed = { id, phone: data.phone || null };
    showError('');
  } catch (err) {
    showError(err.message);
  } finally {
    if (state.currentId === id) loadTicket(id);  // shows the number and the "查看电话" event
  }
}

const LEVEL_TEXT = { 1: '已请第二位同事', 2: '已请书记', 3: '已通知全支部' };

// What a request can really be (bot/core/categories.py); 未分类 is never a choice.
const CATEGORIES = { repair: '维修', canteen: '助餐', medical: '医疗', complaint: '投诉', urgent: '紧急' };

// The category with "分错了？": one tap says what the request really is. The server records
// it on the ticket and hands it to the model operators as a training example.
function categoryRow(t) {
  const box = el('span', 'category-box');
  box.append(el('span', 'category-name', t.category_label));
  const row = infoRow('分类', box);
  row.classList.add('category-row');
  const unclassified = !CATEGORIES[t.category];
  if (state.fixingCategory !== t.id) {
    const open = el('button', 'btn btn-plain btn-small', unclassified ? '帮它分个类' : '分错了？');
    open.type = 'button';
    open.addEventListener('click', () => showCategoryChoices(t.id, true));
    box.append(open);
    return row;
  }
  const picks = el('div', 'category-picks');
  for (const [category, label] of Object.entries(CATEGORIES)) {
    if (category === t.category) continue;
    const pick = el('button', 'btn btn-plain category-pick', (unclassified ? '是' : '其实是') + label);
    pick.type = 'button';
    pick.addEventListener('click', () => act(pick, '/category', { category }, (corrected) => {
      state.fixingCategory = null;
      const holder = corrected.assignee;
      const passedOn = holder && holder.id !== (t.assignee && t.assignee.id) ? '，已转给' + holder.name : '';
      showOk('已改成“' + label + '”' + passedOn + '，谢谢您！');
    }));
    picks.append(pick);
  }
  const cancel = el('button', 'btn btn-plain category-cancel', '没分错');
  cancel.type = 'button';
  cancel.addEventListener('click', () => showCategoryChoices(t.id, false));
  picks.append(cancel);
  row.append(picks);
  return row;
}

function showCategoryChoices(id, show) {
  state.fixingCategory = show ? id : null;
  if (!state.current || state.current.id !== id) return;
  renderInfo(state.current);
  const target = $('ticket-info').querySelector(show ? '.category-pick' : '.category-row .btn');
  if (target) target.focus();
}

function renderInfo(t) {
  const info = $('ticket-info');
  info.replaceChildren();
  info.classList.toggle('is-urgent', t.category === 'urgent' && isOpen(t));
  const tags = statusTags(t);
  tags.append(el('span', 'card-ago', timeAgo(t.created_at)));
  if (t.category === 'urgent' && isOpen(t)) {
    info.append(el('p', 'urgent-strip', isUnsure(t) ? '可能紧急：请先看一眼' : '紧急求助：请尽快联系居民！'));
  }
  info.append(tags, el('blockquote', 'ticket-text', t.text), categoryRow(t));
  const resident = t.resident || {};
  const entities = t.entities || {};
  info.append(infoRow('居民', resident.name || '未知'));
  const masked = resident.phone || entities.phone;
  if (masked) info.append(phoneRow(t, masked));
  info.append(infoRow('网格', (t.grid || '未知') + (t.chat_type === 'group' ? '（群里说的）' : '（私聊）')));
  for (const [key, label] of [['address', '地址'], ['phone', '留的电话'], ['time', '时间']]) {
    if (entities[key] && !(key === 'phone' && entities[key] === masked)) info.append(infoRow(label, String(entities[key])));
  }
  const holder = t.assignee ? (isMine(t) ? t.assignee.name + '（我）' : t.assignee.name) : nobodyText(t);
  const holderLabel = t.status === 'claimed' || isDone(t) ? '处理人' : '分派给';
  info.append(infoRow(holderLabel, holder + (UNCLAIMED.includes(t.status) && t.assignee ? '，还没认领' : '')));
  const level = LEVEL_TEXT[t.escalation_level];
  // An urgent request goes to everyone on duty and the secretary at once: no chain to show.
  // A broadcast one already says 全支部 above.
  if (level && !t.broadcast && !(t.category === 'urgent' && t.escalation_level === 2)) info.append(infoRow('升级', level));
  if (t.incident_id) {
    const same = el('span');
    const link = el('a', 'info-link', '邻居先报的工单 #' + t.incident_id);
    link.href = '#t=' + t.incident_id;
    same.append(link);
    if (isSecretary() || isMine(t)) {
      const apart = el('button', 'btn btn-plain btn-small', '不是同一件事，分开');
      apart.type = 'button';
      apart.addEventListener('click', () => act(apart, '/split', {}, () => showOk('已分开，单独处理。')));
      same.append(' ', apart);
    }
    info.append(infoRow('同一件事', same));
  }
  const reporters = t.reporters || [];
  if (reporters.length) {
    const list = el('ul', 'reporter-list');
    for (const r of reporters) list.append(el('li', '', (r.resident || '居民') + '：' + r.text));
    info.append(infoRow('一起报的邻居', list));
  }
  const resolvedEvent = (t.events || []).filter((e) => e.kind === 'resolve').pop();
  const note = t.resolution_note || (resolvedEvent && resolvedEvent.reason);
  if (note) info.append(infoRow('处理说明', note));
  if (t.visit) {
    info.append(infoRow('上门走访', [formatTime(t.visit.at), t.visit.outcome].filter(Boolean).join('，')));
  }
  if (t.rating) info.append(infoRow('居民评价', ratingTag(t.rating, true)));
}

function renderTicket(t) {
  $('ticket-title').textContent = '工单 #' + t.id;
  renderInfo(t);
  $('ticket-gone').hidden = true;
  $('ticket-info').hidden = false;
  $('ticket-body').hidden = false;
  renderMessages(t.messages || []);
  renderEvents(t.events || []);
  renderEarlier(t.earlier || []);
  const open = isOpen(t);
  const unclaimed = UNCLAIMED.includes(t.status);
  // Only the ticket's holder (or the secretary) may reply, resolve or pass it on: the server
  // says 403 otherwise. A ticket nobody holds may be answered by anyone it is offered to.
  const mayAct = !state.me || isSecretary() || isMine(t);
  const mayReply = mayAct || (unclaimed && !t.assignee);
  $('claim').hidden = !unclaimed;
  $('unsure-box').hidden = !isUnsure(t) || !(state.me && state.me.holds_tickets);
  $('claim').classList.toggle('btn-urgent', t.category === 'urgent');
  $('claim').textContent = t.category === 'urgent' ? '我去！认领这个紧急求助' : '认领这个工单（由我来处理）';
  const deadline = $('claim-deadline');
  deadline.replaceChildren();
  const left = countdown(t, '', true);
  if (left) deadline.append(left);
  deadline.hidden = !left;
  $('reply-form').hidden = !open || !mayReply;
  const mayResolve = mayAct && open && t.status !== 'new';
  const mayPass = mayAct && open;
  if (!mayResolve) $('resolve-form').hidden = true;
  if (!mayPass) $('transfer-form').hidden = $('handback-form').hidden = $('merge-form').hidden = true;
  const panelOpen = ['resolve', 'transfer', 'handback', 'merge'].some((name) => !$(name + '-form').hidden);
  $('resolve-open').hidden = !mayResolve || panelOpen;
  $('holder-actions').hidden = !mayPass || panelOpen;
  $('handback-open').hidden = !isMine(t);  // 退回 is the holder's own "我接不了"
  $('merge-open').hidden = !!t.incident_id || (t.reporters || []).length > 0;
  $('reply-all-row').hidden = !(t.reporters || []).length;
  const note = $('not-mine');
  note.hidden = !open || mayReply;
  note.textContent = '先点上面的“认领”，认领后就能回复居民了。';
  const name = (t.resident || {}).name;
  if (name) $('reply-text').placeholder = '例如：' + name + '，我下午三点上门看看。';
}

// The resident's earlier requests: context at a glance, each opens the ticket.
function renderEarlier(earlier) {
  const list = $('earlier-list');
  list.replaceChildren();
  for (const e of earlier) {
    const link = el('a', 'earlier-item');
    link.href = '#t=' + e.id;
    const top = el('div', 'card-top');
    top.append(el('span', 'earlier-when', formatTime(e.created_at)), tag(e.category_label, 'tag-plain'),
      tag(e.status_label, 'tag-plain'));
    if (e.rating) top.append(ratingTag(e.rating));
    link.append(top, el('div', 'card-text', excerpt(e.text, 40)));
    const item = el('li');
    item.append(link);
    list.append(item);
  }
  $('earlier-box').hidden = !earlier.length;
}

const EVENT_LABELS = {
  created: '居民求助', assign: '分派', escalate: '无人认领·升级', transfer: '转交',
  hand_back: '退回', claim: '认领', resolve: '办好了', rate: '居民评价', expire: '未评价·关闭',
  reopen: '重新打开', unassigned: '暂时没人可派', waiting: '还在等人认领', phone_revealed: '查看电话',
  category_corrected: '更正分类', redispatch: '按新分类改派', confirmed: '确认是求助',
  recall: '仍无人认领·再次呼叫全支部', confirm_urgent: '确认是紧急情况', not_urgent: '看过了，不紧急',
};
// Kinds the resident or the clock caused: "系统" in front would only confuse.
const NO_ACTOR = ['created', 'rate', 'expire', 'escalate', 'waiting', 'unassigned', 'recall'];

function renderEvents(events) {
  const list = $('ticket-events');
  list.replaceChildren();
  for (const e of events) {
    const item = el('li', 'event event-' + e.kind);
    const actor = NO_ACTOR.includes(e.kind) ? '' : (e.actor === 'system' ? '系统' : (e.actor || ''));
    let what = EVENT_LABELS[e.kind] || e.kind;
    let reason = e.reason;
    if (e.kind === 'rate' && reason) { what += '：' + reason; reason = ''; }
    if (e.kind === 'phone_revealed') reason = '';
    if (reason && reason.startsWith(what + '：')) reason = reason.slice(what.length + 1);  // "退回：…"
    item.append(el('span', 'event-time', formatTime(e.created_at)),
      el('span', 'event-what', [actor, what].filter(Boolean).join(' ')));
    if (reason && reason !== EVENT_LABELS[e.kind]) item.append(el('span', 'event-reason', reason));
    list.append(item);
  }
}

// A photo or voice clip sent through the webchat, which only a logged-in member may fetch.
const OUR_MEDIA = /^\/api\/media\/[\w-]+$/;

function ourPhoto(url) {
  const link = el('a');
  link.target = '_blank';  // the whole photo, in a tab of its own
  const img = el('img', 'msg-media');
  img.alt = '居民发来的照片';
  link.append(img);
  fetched(link, url, '[照片没能打开，请刷新再试]', (src) => { img.src = link.href = src; });
  return link;
}

function ourClip(url) {
  const audio = el('audio', 'msg-audio');
  audio.controls = true;
  audio.preload = 'metadata';
  audio.setAttribute('aria-label', '居民的语音');
  fetched(audio, url, '[语音没能打开，请刷新再试]', (src) => { audio.src = src; });
  return audio;
}

function fetched(node, url, failed, show) {
  mediaUrl(url).then(show, () => node.replaceWith(el('div', '', failed)));
}

// What a resident sent besides words: a photo, a voice clip, a place.
function bubble(m) {
  const box = el('div', 'bubble');
  const media = m.media || {};
  if (m.kind === 'image' && OUR_MEDIA.test(media.url || '')) {
    box.append(ourPhoto(media.url));
  } else if (m.kind === 'voice' && OUR_MEDIA.test(media.url || '')) {
    box.append(ourClip(media.url));
  } else if (m.kind === 'image') {
    if (/^https?:\/\//.test(media.url || '')) {
      const link = el('a');
      link.href = media.url; link.target = '_blank'; link.rel = 'noopener noreferrer';
      const img = el('img', 'msg-media');
      img.src = media.url; img.alt = '居民发来的照片';
      link.append(img);
      box.append(link);
    } else {
      box.append(el('div', '', '[照片]'));
    }
  } else if (m.kind === 'voice') {
    box.append(el('div', '', m.text ? '[语音] ' + m.text : '[语音，没有转成文字，请到微信里听]'));
  } else if (m.kind === 'location') {
    box.append(el('div', '', '[位置] ' + (media.label || (media.latitude + ', ' + media.longitude))));
  } else {
    box.textContent = m.text;
  }
  return box;
}

const UNDELIVERED = { undeliverable: '没送到居民那里，请电话联系', failed: '暂时没发出去，请电话联系' };

function renderMessages(messages) {
  const box = $('ticket-messages');
  box.replaceChildren();
  if (!messages.length) box.append(el('div', 'msg-hint', '还没有对话。'));
  for (const m of messages) {
    const fromResident = m.sender_kind === 'resident';
    const row = el('div', 'msg ' + (fromResident ? 'msg-other' : 'msg-own msg-' + m.sender_kind));
    const name = m.sender_kind === 'bot' ? BOT_NAME : (m.sender_name || '');
    row.append(el('div', 'msg-name', name), bubble(m));
    const clipId = m.kind === 'voice' && m.media && !m.media.url && m.media.media_id;
    if (clipId) row.append(el('div', 'msg-note', '语音编号 ' + clipId));
    if (UNDELIVERED[m.delivery]) row.append(el('div', 'msg-undelivered', UNDELIVERED[m.delivery]));
    row.append(el('div', 'msg-time', formatTime(m.created_at)));
    box.append(row);
  }
}

async function act(button, path, body, after) {
  const id = state.currentId;
  button.disabled = true;
  let conflict = '';
  try {
    const result = await api('POST', '/api/tickets/' + id + path, body);
    showError('');
    if (after) after(result);
  } catch (err) {
    showError(err.message);
    if (err.status === 409) conflict = err.message;  // someone else was quicker
  } finally {
    button.disabled = false;
    // Reload; a 409 stays on screen even when the ticket has gone out of our sight.
    if (state.currentId === id) loadTicket(id).then(() => { if (conflict && state.currentId === id) showError(conflict); });
    scheduleRefresh();
  }
}

export { act, digits, loadTicket, renderTicket };
