// Console: what every screen shares. The constants, the state, the views, small text helpers.
// Imports nothing (see console.js).

const KEY_TOKEN = 'console.token';
const BOT_NAME = '社区小助手';
// Waiting for someone to claim them (bot/handoff/states.py); open = these + claimed.
const UNCLAIMED = ['new', 'assigned', 'escalated', 'transferred', 'reopened'];
const DONE = ['resolved', 'closed'];
const BASE_TITLE = '社区工单';

const { $, el, showError, showOk, formatTime } = window.Page;
const views = { login: $('view-login'), list: $('view-list'), ticket: $('view-ticket'), audit: $('view-audit') };

const state = {
  token: localStorage.getItem(KEY_TOKEN),
  me: null,
  tab: 'open',               // 'open' | 'done' (resolved and closed)
  openTickets: [],           // always loaded: drives the title count
  possible: [],              // messages that may be requests, waiting for a member's word
  shownTickets: [],          // the tickets of the current tab
  knownIds: null,            // ids seen so far; null until the first load
  newIds: new Set(),         // ids to highlight until opened
  unreadIds: new Set(),      // tickets where the resident wrote since the member last looked
  alertedIds: new Set(),     // urgent tickets already announced
  urgent: null,              // the urgent ticket the red banner is about
  titleText: BASE_TITLE, flashTimer: null, flashOn: false,
  currentId: null, current: null, enteredInApp: false,
  auditFromList: false,      // the 安全记录 page was opened from the list: "‹" goes back there
  revealed: null,            // {id, phone}: the full number the member asked to see
  fixingCategory: null,      // id of the ticket whose "分错了？" choices are open
  ws: null, wsGen: 0, retryDelay: 1000, retryTimer: null, refreshTimer: null,
  lastEventId: null,         // the newest event id seen: a reconnect asks for what came after
  seenIds: new Set(),        // event ids handled (a catch-up may repeat a live one)
  catchingUp: false,         // between connecting and the server's "ready"
  heldAlarms: [],            // alarms met while catching up, rung if still waiting after it
  lastHeard: 0, pingSentAt: 0,
};

// ---------- helpers ----------

const showView = (name) => { for (const key in views) views[key].hidden = key !== name; };


function timeAgo(iso) {
  const minutes = Math.floor((Date.now() - new Date(iso).getTime()) / 60000);
  if (isNaN(minutes)) return '';
  if (minutes < 1) return '刚刚';
  if (minutes < 60) return minutes + '分钟前';
  if (minutes < 60 * 24) return Math.floor(minutes / 60) + '小时前';
  if (minutes < 60 * 24 * 7) return Math.floor(minutes / 1440) + '天前';
  return formatTime(iso);
}

// "2026-11-27T15:00" in Beijing time, as a datetime-local input wants it.
function beijingNowLocal() {
  const parts = {};
  for (const p of new Intl.DateTimeFormat('en-CA', {
    timeZone: 'Asia/Shanghai', year: 'numeric', month: '2-digit', day: '2-digit',
    hour: '2-digit', minute: '2-digit', hourCycle: 'h23',
  }).formatToParts(new Date())) parts[p.type] = p.value;
  return parts.year + '-' + parts.month + '-' + parts.day + 'T' + parts.hour + ':' + parts.minute;
}

function excerpt(text, max) {
  const chars = Array.from(text || '');
  return chars.length > max ? chars.slice(0, max).join('') + '…' : chars.join('');
}

export {
  $, BASE_TITLE, BOT_NAME, DONE, KEY_TOKEN, UNCLAIMED, beijingNowLocal, el, excerpt, formatTime,
  showError, showOk, showView, state, timeAgo, views
};
