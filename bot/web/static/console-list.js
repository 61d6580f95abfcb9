// Console: the ticket list (待处理 / 已办完), its cards, countdowns and periodic refresh.

import {
  $, BASE_TITLE, DONE, UNCLAIMED, el, excerpt, showError, state, timeAgo, views
} from './console-core.js';
import { announceUrgent, setTitle, urgentHandled } from './console-alerts.js';
import { filtering, tabChanged, ticketQuery } from './console-filters.js';
import { renderPossible } from './console-possible.js';
import { api } from './console-session.js';
import { loadTicket } from './console-ticket.js';

// ---------- ticket list ----------
function scheduleRefresh() {  // coalesce bursts of live events into one reload
  clearTimeout(state.refreshTimer);
  state.refreshTimer = setTimeout(refreshList, 300);
}

// The open tab unfiltered is the open tickets already loaded; anything else is asked for.
async function loadShown() {
  if (state.tab === 'open' && !filtering()) return sortOpen(state.openTickets);
  const tickets = (await api('GET', '/api/tickets?' + ticketQuery(state.tab))).tickets || [];
  return state.tab === 'open' ? sortOpen(tickets) : tickets;
}

async function refreshList() {
  if (!state.token) return;
  try {
    const [open, possible] = await Promise.all([
      api('GET', '/api/tickets?status=open'),
      // The district reads tickets and decides nothing: it has no possible requests to see.
      state.me && state.me.holds_tickets ? api('GET', '/api/possible-requests') : { possible_requests: [] },
    ]);
    state.openTickets = open.tickets || [];
    state.possible = possible.possible_requests || [];
    renderPossible();
    const firstLoad = !state.knownIds;
    state.knownIds = state.knownIds || new Set();
    for (const t of state.openTickets) {
      if (!firstLoad && !state.knownIds.has(t.id)) {
        state.newIds.add(t.id);
        if (ringsWhenNew(t)) announceUrgent(t);  // e.g. arrived while we were offline
      }
      state.knownIds.add(t.id);
    }
    // Someone took the urgent request: no need to keep shouting about it.
    if (state.urgent && !state.openTickets.some((t) => t.id === state.urgent.id && UNCLAIMED.includes(t.status))) {
      urgentHandled(state.urgent.id);
    }
    state.shownTickets = await loadShown();
    renderList();
  } catch (err) {
    if (state.token) showError(err.message);
  }
}

const isUrgentWaiting = (t) => t.category === 'urgent' && UNCLAIMED.includes(t.status);
// 可能紧急: the model is unsure; the grid's members are asked first (their consoles get a
// ticket.alarm), so a new one does not ring everywhere it shows.
const isUnsure = (t) => !!t.possibly_urgent && UNCLAIMED.includes(t.status);
const ringsWhenNew = (t) => t.category === 'urgent' && !t.possibly_urgent;

// Urgent requests nobody has taken yet go first; otherwise newest first, as the server sends.
const sortOpen = (tickets) => [...tickets.filter(isUrgentWaiting), ...tickets.filter((t) => !isUrgentWaiting(t))];

function updateTitle() {
  const unclaimed = state.openTickets.filter((t) => UNCLAIMED.includes(t.status)).length;
  setTitle(unclaimed ? '(' + unclaimed + ') 待认领 · ' + BASE_TITLE : BASE_TITLE);
  $('open-count').textContent = state.openTickets.length ? String(state.openTickets.length) : '';
}

const tag = (text, className) => el('span', 'tag ' + className, text);

const isSecretary = () => !!(state.me && state.me.role === 'secretary');
const isMine = (t) => !!(t.assignee && state.me && t.assignee.id === state.me.id);
const isOpen = (t) => t.status === 'claimed' || UNCLAIMED.includes(t.status);
const isDone = (t) => DONE.includes(t.status);

// Who has the ticket, in words a volunteer reads at a glance.
function assigneeText(t) {
  if (!t.assignee) {
    if (isDone(t)) return '';
    return nobodyText(t);
  }
  const who = isMine(t) ? '我' : t.assignee.name;
  if (t.status === 'claimed') return '处理人：' + who;
  if (isDone(t)) return '办理人：' + who;
  return '分派给：' + who + '（还没认领）';
}

// A ticket offered to many at once (紧急, or the whole branch) has no one named.
function nobodyText(t) {
  if (isUnsure(t)) return '已请网格在岗同事先看一眼，是不是紧急';
  if (t.broadcast) return '已通知全支部，谁有空谁认领';
  if (t.category === 'urgent' && UNCLAIMED.includes(t.status)) return '已通知在岗同事和书记，谁先到谁认领';
  return '还没有分派给人';
}

// "还剩5分钟": how long until an unclaimed ticket goes on to the next person.
// After the secretary (level 2) the next step is the whole branch; after that (level 3) an
// urgent request calls the whole branch again. 可能紧急 nobody decided on counts as urgent.
const NEXT_STEP = ['转给下一位同事', '转给下一位同事', '通知全支部', '再次呼叫全支部'];
const nextStep = (t) =>
  isUnsure(t) ? '按紧急通知书记和全网格' : NEXT_STEP[Math.min(t.escalation_level || 0, NEXT_STEP.length - 1)];

function deadlineText(deadline, long, next) {
  const ms = new Date(deadline).getTime() - Date.now();
  if (isNaN(ms)) return '';
  if (ms <= 0) return long ? '认领时间到了，正在' + next + '。' : '正在' + next;
  const minutes = Math.ceil(ms / 60000);
  return long ? '还剩' + minutes + '分钟，没人认领就会' + next + '。' : '还剩' + minutes + '分钟认领';
}

function countdown(t, className, long) {
  if (!UNCLAIMED.includes(t.status) || !t.claim_deadline) return null;
  const node = el('span', 'countdown ' + className, deadlineText(t.claim_deadline, long, nextStep(t)));
  node.dataset.deadline = t.claim_deadline;
  node.dataset.next = nextStep(t);
  if (long) node.dataset.long = '1';
  return node;
}

// Refresh the countdown texts in place between reloads (urgent ones run in a minute).
setInterval(() => {
  for (const node of document.querySelectorAll('.countdown[data-deadline]')) {
    node.textContent = deadlineText(node.dataset.deadline, node.dataset.long === '1', node.dataset.next);
  }
}, 15000);

const RATING_CLASS = { 满意: 'rate-good', 一般: 'rate-ok', 不满意: 'rate-bad' };
const ratingTag = (rating, short) => tag((short ? '' : '居民评价：') + rating, RATING_CLASS[rating] || 'rate-ok');

function statusTags(t) {
  const top = el('div', 'card-top');
  // Whether it is an emergency is the very question: 可能紧急 stands in for 紧急 until answered.
  const category = isUnsure(t) ? tag('可能紧急', 'tag-unsure') : tag(t.category_label, 'cat-' + t.category);
  top.append(category, tag(t.status_label, 'st-' + t.status));
  if (t.broadcast && UNCLAIMED.includes(t.status)) top.append(tag('全支部可认领', 'tag-broadcast'));
  return top;
}

function cardTags(t) {
  const top = statusTags(t);
  if (state.newIds.has(t.id)) top.append(tag('新', 'tag-new'));
  if (state.unreadIds.has(t.id)) top.append(tag('居民有新消息', 'tag-unread'));
  if (t.rating) top.append(ratingTag(t.rating));
  if (t.visit) top.append(tag('已上门', 'tag-visit'));
  top.append(el('span', 'card-ago', timeAgo(t.created_at)));
  return top;
}

function renderList() {
  updateTitle();
  const list = $('ticket-list');
  list.replaceChildren();
  for (const t of state.shownTickets) {
    const card = el('a', 'ticket-card' + (state.newIds.has(t.id) ? ' is-new' : '') +
      (state.unreadIds.has(t.id) ? ' is-unread' : '') + (t.category === 'urgent' && isOpen(t) ? ' is-urgent' : ''));
    card.href = '#t=' + t.id;
    const resident = t.resident || {};
    const who = [resident.name, t.grid, resident.phone].filter(Boolean).join(' · ');
    card.append(cardTags(t), el('div', 'card-who', who), el('div', 'card-text', excerpt(t.text, 40)));
    const holder = assigneeText(t);
    if (holder) card.append(el('div', 'card-assignee' + (isMine(t) ? ' is-mine' : ''), holder));
    const left = countdown(t, 'card-deadline', false);
    if (left) card.append(left);
    const item = el('li');
    item.append(card);
    list.append(item);
  }
  const empty = $('list-empty');
  if (filtering()) empty.textContent = '没有找到符合条件的工单。';
  else empty.textContent = state.tab === 'open' ? '暂时没有待处理的事，辛苦了！' : '还没有办完的工单。';
  empty.hidden = state.shownTickets.length > 0;
}

for (const tab of document.querySelectorAll('.tab[data-status]')) {
  tab.addEventListener('click', () => {
    state.tab = tab.dataset.status;
    tabChanged(state.tab);
    for (const other of document.querySelectorAll('.tab[data-status]')) other.classList.toggle('is-active', other === tab);
    const ready = state.tab === 'open' && !filtering();
    state.shownTickets = ready ? sortOpen(state.openTickets) : [];
    renderList();
    if (!ready) { $('list-empty').textContent = '正在加载…'; $('list-empty').hidden = false; }
    refreshList();
  });
}

// Keep "3分钟前" fresh, and catch changes nobody tells us about (a colleague claiming a
// ticket of our grid sends us no event, as we may no longer see it).
setInterval(() => {
  if (!state.token) return;
  if (!views.list.hidden) { renderList(); refreshList(); }
  if (!views.ticket.hidden && state.currentId) loadTicket(state.currentId);
}, 60000);
document.addEventListener('visibilitychange', () => {
  if (document.hidden || !state.token) return;
  refreshList();
  if (!views.ticket.hidden && state.currentId) loadTicket(state.currentId);
});

export {
  assigneeText, countdown, isDone, isMine, isOpen, isSecretary, isUnsure, nobodyText, ratingTag,
  refreshList, renderList, ringsWhenNew, scheduleRefresh, statusTags, tag
};
