// Console: talking to the server. API calls with the login token, login and logout, and the
// live updates over the WebSocket.

import {
  $, BASE_TITLE, KEY_TOKEN, UNCLAIMED, showError, showOk, showView, state, views
} from './console-core.js';
import { announceUrgent, clearUrgent, setTitle, showAlertsBox, showCallNotice } from './console-alerts.js';
import { refreshList, ringsWhenNew, scheduleRefresh } from './console-list.js';
import { onPossibleFrame, renderPossible } from './console-possible.js';
import { loadTicket } from './console-ticket.js';
import { startApp } from './console.js';

// ---------- API ----------
const FALLBACK_ERRORS = {
  400: '内容有误，请检查一下。', 403: '您没有权限查看这个工单。',
  404: '没有找到这个工单。', 409: '已被其他人认领，或者已经解决了。',
};

function loggedOutElsewhere(token) {
  if (token && token === state.token) logout(true);  // not when we logged out meanwhile
}

async function api(method, path, body) {
  const resp = await window.Page.send(method, path, body, state.token, loggedOutElsewhere);
  const data = await resp.json().catch(() => null);
  if (!resp.ok) {
    const error = new Error((data && data.message) || FALLBACK_ERRORS[resp.status] || '操作没成功，请稍后再试。');
    error.status = resp.status;
    throw error;
  }
  return data;
}

// A photo or voice clip a resident sent through the webchat: served only with the login, so
// fetched here and shown from memory (one object URL per file for the page's life).
const mediaUrls = new Map();

function mediaUrl(path) {
  if (!mediaUrls.has(path)) {
    const loading = window.Page.send('GET', path, undefined, state.token, loggedOutElsewhere).then(async (resp) => {
      if (!resp.ok) throw new Error('打不开');
      return URL.createObjectURL(await resp.blob());
    });
    loading.catch(() => mediaUrls.delete(path));  // another try next time
    mediaUrls.set(path, loading);
  }
  return mediaUrls.get(path);
}

// ---------- login ----------
window.Page.bindLogin(api, KEY_TOKEN, (data) => {
  state.token = data.token;
  state.me = data.member;
  startApp();
}, (err) => showError(err.message));

// `expired`: the server no longer takes the token (it ran out, or was logged out elsewhere).
function logout(expired) {
  window.Page.showLoginNote(expired ? '登录已过期，请重新登录。' : '');
  state.token = state.me = state.knownIds = state.revealed = state.lastEventId = null;
  state.seenIds.clear();
  // The next login may see fewer tickets: nothing fetched under this one stays.
  for (const loading of mediaUrls.values()) loading.then(URL.revokeObjectURL, () => {});
  mediaUrls.clear();
  state.possible = [];
  renderPossible();
  state.newIds.clear();
  state.unreadIds.clear();
  state.alertedIds.clear();
  clearUrgent();
  showAlertsBox();
  localStorage.removeItem(KEY_TOKEN);
  closeSocket();
  setTitle(BASE_TITLE);
  showView('login');
}
$('logout').addEventListener('click', async () => {
  if (!window.confirm('确定要退出登录吗？退出后就收不到新工单提醒了。')) return;
  showError('');
  closeSocket();  // no reconnect while the server drops the token
  $('logout').disabled = true;
  await window.Page.serverLogout(state.token);
  $('logout').disabled = false;
  logout();
});

// ---------- live updates ----------
// Honest about the connection: "连接中…" shows whenever the socket is down, also when it only
// looks open (a ping unanswered, the phone offline). Every event carries an id; reconnecting,
// the console asks for what came after the last id it saw, and the server sends it first
// (whichever worker it reaches), then "ready".
const PING_AFTER_QUIET_MS = 25000;
const PONG_WITHIN_MS = 10000;

function closeSocket() {
  state.wsGen += 1;
  clearTimeout(state.retryTimer);
  if (state.ws) state.ws.close();
  state.ws = null;
  $('conn-banner').hidden = true;
}

function retryLater(gen) {
  $('conn-banner').hidden = false;
  state.retryTimer = setTimeout(() => { if (gen === state.wsGen) connect(); }, state.retryDelay);
  state.retryDelay = Math.min(state.retryDelay * 2, 10000);
}

// The socket is dead or only looks alive: drop it at once (a browser may take minutes to
// notice) and connect again.
function reconnectSoon() {
  if (!state.ws) return;
  const dead = state.ws;
  state.wsGen += 1;
  state.ws = null;
  dead.close();
  retryLater(state.wsGen);
}

setInterval(() => {
  const ws = state.ws;
  if (!ws || ws.readyState !== WebSocket.OPEN) return;
  if (state.pingSentAt) {
    if (Date.now() - state.pingSentAt > PONG_WITHIN_MS) reconnectSoon();
  } else if (Date.now() - state.lastHeard > PING_AFTER_QUIET_MS) {
    state.pingSentAt = Date.now();
    ws.send('ping');
  }
}, 5000);
window.addEventListener('offline', reconnectSoon);
window.addEventListener('online', () => {
  if (!state.token || (state.ws && state.ws.readyState === WebSocket.OPEN)) return;
  state.retryDelay = 1000;
  connect();
});

// An event seen live may come again in a catch-up: each id is handled once.
function firstTime(id) {
  if (state.seenIds.has(id)) return false;
  state.seenIds.add(id);
  if (state.seenIds.size > 1000) state.seenIds = new Set([...state.seenIds].slice(-500));
  state.lastEventId = Math.max(state.lastEventId || 0, id);
  return true;
}

// Alarms met while catching up ring only if the request is still waiting once the lists are
// reloaded: a colleague may have claimed it meanwhile.
function alarm(t, again) {
  if (state.catchingUp) state.heldAlarms.push({ id: t.id, again });
  else announceUrgent(t, again);
}

async function caughtUp(frame, reconnected) {
  state.catchingUp = false;
  state.lastEventId = Math.max(state.lastEventId || 0, frame.last_event_id);
  $('conn-banner').hidden = true;
  await refreshList();  // and the lists as they are now
  if (state.currentId) loadTicket(state.currentId);
  const held = state.heldAlarms.splice(0);
  for (const { id, again } of held) {
    const now = state.openTickets.find((t) => t.id === id);
    if (now && UNCLAIMED.includes(now.status)) announceUrgent(now, again);
  }
  if (reconnected) showOk(frame.missed ? '已重新连上，断线时的' + frame.missed + '条新动态已补上。' : '已重新连上。');
}

function onEvent(frame) {
  if (frame.type === 'message.undelivered' && frame.ticket) {
    showCallNotice(frame);
    if (frame.ticket.id === state.currentId) loadTicket(state.currentId);
    return;
  }
  if (frame.possible_request) { onPossibleFrame(frame); return; }
  if (!frame.ticket || !/^ticket\./.test(frame.type || '')) return;
  if (frame.type === 'ticket.created') {
    state.newIds.add(frame.ticket.id);
    if (ringsWhenNew(frame.ticket)) alarm(frame.ticket, false);
  }
  if (frame.type === 'ticket.alarm') alarm(frame.ticket, true);
  const fromResident = frame.type === 'ticket.message' && frame.message && frame.message.sender_kind === 'resident';
  if (fromResident && (frame.ticket.id !== state.currentId || views.ticket.hidden)) {
    state.unreadIds.add(frame.ticket.id);
  }
  if (state.catchingUp) return;  // the lists reload once it is done
  scheduleRefresh();
  if (frame.ticket.id === state.currentId) loadTicket(state.currentId);
}

// The token never goes into a URL: a one-minute ticket, fetched afresh for every connect.
async function connect() {
  closeSocket();
  if (!state.token) return;
  const gen = state.wsGen;
  let ticket;
  try {
    ticket = (await api('POST', '/api/ws-ticket')).ticket;
  } catch (err) {
    if (gen === state.wsGen) retryLater(gen);  // a 401 has logged us out already
    return;
  }
  if (gen !== state.wsGen) return;
  const reconnected = state.lastEventId !== null;
  const params = new URLSearchParams({ ticket });
  if (reconnected) params.set('since', String(state.lastEventId));
  const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
  const ws = new WebSocket(proto + '//' + location.host + '/api/ws?' + params);
  state.ws = ws;
  state.catchingUp = true;
  state.heldAlarms = [];

  ws.addEventListener('open', () => {
    if (gen !== state.wsGen) return;
    state.retryDelay = 1000;
    state.lastHeard = Date.now();
    state.pingSentAt = 0;
  });

  ws.addEventListener('message', (event) => {
    if (gen !== state.wsGen) return;
    state.lastHeard = Date.now();
    state.pingSentAt = 0;
    let frame;
    try { frame = JSON.parse(event.data); } catch (err) { return; }
    if (frame.type === 'ready') { caughtUp(frame, reconnected); return; }
    if (Number.isInteger(frame.id) && !firstTime(frame.id)) return;
    onEvent(frame);
  });

  ws.addEventListener('close', () => {
    if (gen !== state.wsGen) return;
    retryLater(gen);  // the next ticket request also finds out if the login ran out
  });
}

export { api, connect, mediaUrl };
