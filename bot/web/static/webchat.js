// Webchat for residents: a small WeChat-like stand-in. See docs/api.md.
'use strict';

(function () {
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

  // ---------- identity (an HttpOnly cookie the server sets) ----------

  function setName(name) {
    state.name = name;
    localStorage.setItem(KEY_NAME, name);
  }

  async function loadSession() {
    let result;
    try {
      result = await call('GET', '/webchat/api/session');
    } catch (err) {
      result = null;
    }
    if (result && result.status === 200 && result.data.name) {
      setName(result.data.name);
      afterSession();
    } else if (result && result.status === 401) {
      state.name = null;
      route();  // asks the name
    } else {
      showBanner('网络不太好，正在重新连接…', 'info');
      setTimeout(loadSession, 3000);
    }
  }

  // Known to the server: join the poster's room if the page came with one, else go on.
  function afterSession() {
    if (state.invite !== null) joinInvite();
    else route();
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
    $('name-input').value = state.name || localStorage.getItem(KEY_NAME) || '';
    $('name-cancel').hidden = !state.name;
    showView('name');
    $('name-input').focus();
  }

  $('name-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    // Count characters, not UTF-16 units, so an emoji is never cut in half.
    const name = Array.from($('name-input').value.trim()).slice(0, 20).join('');
    if (!name) {
      showNameError('请先写上您的称呼，比如：张阿姨');
      $('name-input').focus();
      return;
    }
    showNameError('');
    const submit = $('name-form').querySelector('[type="submit"]');
    submit.disabled = true;
    let result;
    try {
      result = await call('POST', '/webchat/api/session', { name });
    } catch (err) {
      showNameError('网络不太好，请稍后再试。');
      return;
    } finally {
      submit.disabled = false;
    }
    if (result.status !== 200) {  // e.g. a name only staff may use, or too many tries
      showNameError(result.data.message || '没能保存，请稍后再试。');
      $('name-input').focus();
      return;
    }
    setName(result.data.name || name);
    afterSession();
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

  function buildBubble(text, own, name, time, extraClass, badge) {
    const row = el('div', 'msg ' + (own ? 'msg-own' : 'msg-other') + (extraClass ? ' ' + extraClass : ''));
    if (name) {
      const label = el('div', 'msg-name', name);
      if (badge) label.append(' ', el('span', 'badge-verified', badge));
      row.append(label);
    }
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
    appendServerRow(buildBubble(msg.text, own, showName ? senderLabel(msg) : '', formatTime(msg.created_at), '',
      verifiedBadge(msg)));
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
    const item = { id: messageId(), text, el: row, sentAt: Date.now() };
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
      state.retryTimer = setTimeout(() => { if (gen === state.wsGen) connect(); }, state.retryDelay);
      state.retryDelay = Math.min(state.retryDelay * 2, 10000);
    });
  }

  // ---------- routing ----------

  function route() {
    if (!state.name) { askName(); return; }
    const match = location.hash.match(/^#chat=(.+)$/);
    const chatId = match ? decodeURIComponent(match[1]) : '';
    if (chatId === 'private' || INVITE.test(chatId)) {
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
  }

  window.addEventListener('hashchange', route);

  localStorage.removeItem('webchat.user_id');  // the old self-made identity: the server issues one now
  state.invite = new URLSearchParams(location.search).get('room');
  loadRooms();
  loadSession();
})();
