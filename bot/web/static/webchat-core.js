// Webchat: what every screen shares. The constants, the state, the views, small helpers and
// the JSON calls. Imports nothing (see webchat.js).

const BOT_NAME = '社区小助手';
const KEY_NAME = 'webchat.name';    // only a hint to fill in the name form: the server knows the name
const KEY_ROOMS = 'webchat.rooms';  // rooms joined from a poster: [{id, name, grid}]
const INVITE = /^[A-Za-z0-9_-]{6,40}$/;
const BAD_INVITE = '这个群的邀请码不对，请对照海报再扫一次。';

const $ = (id) => document.getElementById(id);
const views = { name: $('view-name'), list: $('view-list'), chat: $('view-chat') };

const state = {
  name: null,
  rooms: [],
  invite: null,      // ?room=… from a poster, until it is looked up
  checkedRooms: new Set(),  // remembered rooms the server confirmed on this visit
  failedOpens: 0,    // sockets in a row that closed without ever opening
  chat: null,        // {id, title, isRoom}
  ws: null,
  wsGen: 0,          // bumps on every (re)connect so stale sockets are ignored
  retryDelay: 1000,
  retryTimer: null,
  bannerTimer: null,
  enteredFromList: false,
  outbox: [],        // own messages not yet acked: {id, text, el}
  sentLocal: [],     // acked own messages still waiting for their echo: {text, el}
  sentMedia: [],     // own photos and voice clips uploaded, until the chat shows them: {messageId, el}
};

// ---------- helpers ----------

// randomUUID only exists on https; getRandomValues everywhere.
function messageId() {
  if (crypto.randomUUID) return crypto.randomUUID();
  return Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, '0')).join('');
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

// JSON in and out; cookies go along (same origin). Throws only when the network fails.
async function call(method, path, body) {
  const init = { method, headers: { Accept: 'application/json' }, credentials: 'same-origin' };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const resp = await fetch(path, init);
  const data = await resp.json().catch(() => null);
  return { status: resp.status, data: data || {} };
}

export {
  $, BAD_INVITE, BOT_NAME, INVITE, KEY_NAME, KEY_ROOMS, call, el, formatTime, messageId, showBanner,
  showView, state, views
};
