// Console: talking to the server. API calls with the login token, login and logout, and the
// live updates over the WebSocket.

import { $, BASE_TITLE, KEY_TOKEN, showError, showView, state, views } from './console-core.js';
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

async function api(method, path, body) {
  const resp = await window.Page.send(method, path, body, state.token, (token) => {
    if (token && token === state.token) logout(true);  // not when we logged out meanwhile
  });
  const data = await resp.json().catch(() => null);
  if (!resp.ok) {
    const error = new Error((data && data.message) || FALLBACK_ERRORS[resp.status] || '操作没成功，请稍后再试。');
    error.status = resp.status;
    throw error;
  }
  return data;
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
  state.token = state.me = state.knownIds = state.revealed = null;
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
  const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
  const ws = new WebSocket(proto + '//' + location.host + '/api/ws?ticket=' + encodeURIComponent(ticket));
  state.ws = ws;

  ws.addEventListener('open', () => {
    if (gen !== state.wsGen) return;
    state.retryDelay = 1000;
    $('conn-banner').hidden = true;
    refreshList();  // catch up on anything missed while offline
    if (state.currentId) loadTicket(state.currentId);
  });

  ws.addEventListener('message', (event) => {
    if (gen !== state.wsGen) return;
    let frame;
    try { frame = JSON.parse(event.data); } catch (err) { return; }
    if (frame.type === 'message.undelivered' && frame.ticket) {
      showCallNotice(frame);
      if (frame.ticket.id === state.currentId) loadTicket(state.currentId);
      return;
    }
    if (frame.possible_request) { onPossibleFrame(frame); return; }
    if (!frame.ticket || !/^ticket\./.test(frame.type || '')) return;
    if (frame.type === 'ticket.created') {
      state.newIds.add(frame.ticket.id);
      if (ringsWhenNew(frame.ticket)) announceUrgent(frame.ticket);
    }
    if (frame.type === 'ticket.alarm') announceUrgent(frame.ticket, true);
    const fromResident = frame.type === 'ticket.message' && frame.message && frame.message.sender_kind === 'resident';
    if (fromResident && (frame.ticket.id !== state.currentId || views.ticket.hidden)) {
      state.unreadIds.add(frame.ticket.id);
    }
    scheduleRefresh();
    if (frame.ticket.id === state.currentId) loadTicket(state.currentId);
  });

  ws.addEventListener('close', () => {
    if (gen !== state.wsGen) return;
    retryLater(gen);  // the next ticket request also finds out if the login ran out
  });
}

export { api, connect };
