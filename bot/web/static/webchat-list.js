// Webchat: the chat list, and the neighbourhood rooms joined from a poster's QR code.

import {
  $, BAD_INVITE, BOT_NAME, INVITE, KEY_ROOMS, call, el, showBanner, state, views
} from './webchat-core.js';
import { askName } from './webchat-name.js';
import { route } from './webchat.js';

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
  $('rooms-status').textContent = '扫描楼道海报上的二维码，就能加入邻里群。';
  $('rooms-status').hidden = state.rooms.length > 0;
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

// ---------- rooms (joined from a poster's QR code) ----------

function validRoom(room) {
  return !!room && typeof room.id === 'string' && INVITE.test(room.id) && typeof room.name === 'string';
}

function loadRooms() {
  let rooms;
  try { rooms = JSON.parse(localStorage.getItem(KEY_ROOMS) || '[]'); } catch (err) { rooms = []; }
  state.rooms = Array.isArray(rooms) ? rooms.filter(validRoom) : [];
}

function saveRooms() {
  localStorage.setItem(KEY_ROOMS, JSON.stringify(state.rooms));
}

function rememberRoom(room) {
  const entry = { id: room.id, name: room.name, grid: room.grid || '' };
  const idx = state.rooms.findIndex((r) => r.id === room.id);
  if (idx >= 0) state.rooms[idx] = entry; else state.rooms.push(entry);
  saveRooms();
  state.checkedRooms.add(room.id);
}

function forgetRoom(id) {
  state.rooms = state.rooms.filter((r) => r.id !== id);
  saveRooms();
}

// The page came from a poster (?room=…): look the room up, remember it and open it.
async function joinInvite() {
  const invite = state.invite;
  state.invite = null;
  let result = { status: 404, data: {} };
  if (INVITE.test(invite)) {
    try {
      result = await call('GET', '/webchat/api/rooms/' + encodeURIComponent(invite));
    } catch (err) {
      result = null;
    }
  }
  if (result && result.status === 200 && validRoom(result.data)) {
    rememberRoom(result.data);
    history.replaceState(null, '', location.pathname + '#chat=' + encodeURIComponent(result.data.id));
    route();
    return;
  }
  if (result && result.status === 401) {  // the cookie went away meanwhile
    state.invite = invite;
    state.name = null;
    route();
    return;
  }
  // A wrong code is dropped from the address; otherwise reloading the page tries again.
  if (result && result.status === 404) history.replaceState(null, '', location.pathname + location.hash);
  route();
  showBanner(result && result.status === 404 ? BAD_INVITE : '网络不太好，没能加入邻里群，请稍后刷新一下。', 'error');
}

// A remembered room may have been renamed, or its poster replaced: check once per visit.
async function checkRoom(id) {
  let result;
  try {
    result = await call('GET', '/webchat/api/rooms/' + encodeURIComponent(id));
  } catch (err) {
    return;
  }
  const open = state.chat && state.chat.id === id && !views.chat.hidden;
  if (result.status === 200 && validRoom(result.data)) {
    rememberRoom(result.data);
    if (open) $('chat-title').textContent = state.chat.title = result.data.name;
  } else if (result.status === 404) {
    forgetRoom(id);
    if (open) {
      history.replaceState(null, '', location.pathname);
      route();
    } else if (!views.list.hidden) {
      renderList();
    }
    showBanner('这个群的二维码换新了，请扫楼道海报上的新二维码。', 'error');
  }
}

// The socket would not open a few times in a row: the server answers 401 before upgrading
// when the identity cookie is gone, and refuses a room whose invite was replaced.
async function recheck() {
  let result;
  try {
    result = await call('GET', '/webchat/api/session');
  } catch (err) {
    return;
  }
  if (result.status === 401) {
    state.name = null;
    askName();
  } else if (state.chat && state.chat.isRoom) {
    checkRoom(state.chat.id);
  }
}

export { chatEntries, checkRoom, joinInvite, loadRooms, recheck, renderList };
