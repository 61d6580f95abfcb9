// Console for party members: live ticket list and ticket handling. See docs/api.md.
'use strict';

(function () {
  const KEY_TOKEN = 'console.token';
  const BOT_NAME = '社区小助手';
  const UNCLAIMED = ['new', 'assigned'];
  const BASE_TITLE = '社区工单';

  const $ = (id) => document.getElementById(id);
  const views = { login: $('view-login'), list: $('view-list'), ticket: $('view-ticket') };

  const state = {
    token: localStorage.getItem(KEY_TOKEN),
    me: null,
    tab: 'open',               // 'open' | 'resolved'
    openTickets: [],           // always loaded: drives the title count
    shownTickets: [],          // the tickets of the current tab
    knownIds: null,            // ids seen so far; null until the first load
    newIds: new Set(),         // ids to highlight until opened
    unreadIds: new Set(),      // tickets where the resident wrote since the member last looked
    currentId: null, current: null, enteredFromList: false,
    ws: null, wsGen: 0, retryDelay: 1000, retryTimer: null, refreshTimer: null,
  };

  // ---------- helpers ----------
  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = text;
    return node;
  }

  const showView = (name) => { for (const key in views) views[key].hidden = key !== name; };

  function showError(text) {
    $('error-text').textContent = text;
    $('error-banner').hidden = !text;
  }
  $('error-close').addEventListener('click', () => showError(''));

  const timeFmt = new Intl.DateTimeFormat('zh-CN', {
    timeZone: 'Asia/Shanghai', month: 'numeric', day: 'numeric',
    hour: '2-digit', minute: '2-digit', hourCycle: 'h23',
  });

  const formatTime = (iso) => (isNaN(new Date(iso)) ? '' : timeFmt.format(new Date(iso)));

  function timeAgo(iso) {
    const minutes = Math.floor((Date.now() - new Date(iso).getTime()) / 60000);
    if (isNaN(minutes)) return '';
    if (minutes < 1) return '刚刚';
    if (minutes < 60) return minutes + '分钟前';
    if (minutes < 60 * 24) return Math.floor(minutes / 60) + '小时前';
    if (minutes < 60 * 24 * 7) return Math.floor(minutes / 1440) + '天前';
    return formatTime(iso);
  }

  function excerpt(text, max) {
    const chars = Array.from(text || '');
    return chars.length > max ? chars.slice(0, max).join('') + '…' : chars.join('');
  }

  // ---------- API ----------
  const FALLBACK_ERRORS = {
    400: '内容有误，请检查一下。', 403: '您没有权限查看这个工单。',
    404: '没有找到这个工单。', 409: '已被其他人认领，或者已经解决了。',
  };

  async function api(method, path, body) {
    const headers = { Accept: 'application/json' };
    if (state.token) headers.Authorization = 'Bearer ' + state.token;
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    const resp = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) })
      .catch(() => { throw new Error('网络不太好，请稍后再试。'); });
    const data = await resp.json().catch(() => null);
    if (resp.status === 401 && path !== '/api/login') { logout(); throw new Error('请重新登录。'); }
    if (!resp.ok) {
      const error = new Error((data && data.message) || FALLBACK_ERRORS[resp.status] || '操作没成功，请稍后再试。');
      error.status = resp.status;
      throw error;
    }
    return data;
  }

  // ---------- login ----------
  $('login-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    const name = $('login-name').value.trim();
    const password = $('login-password').value;
    if (!name) { showError('请填写您的姓名。'); $('login-name').focus(); return; }
    if (!password) { showError('请填写密码。'); $('login-password').focus(); return; }
    $('login-submit').disabled = true;
    $('login-submit').textContent = '正在登录…';
    try {
      const data = await api('POST', '/api/login', { name, password });
      state.token = data.token;
      localStorage.setItem(KEY_TOKEN, data.token);
      state.me = data.member;
      $('login-password').value = '';
      showError('');
      startApp();
    } catch (err) {
      showError(err.status === 401 ? '姓名或密码不对，请再试一次。' : err.message);
    } finally {
      $('login-submit').disabled = false;
      $('login-submit').textContent = '登录';
    }
  });

  function logout() {
    state.token = state.me = state.knownIds = null;
    state.newIds.clear();
    state.unreadIds.clear();
    localStorage.removeItem(KEY_TOKEN);
    closeSocket();
    document.title = BASE_TITLE;
    showView('login');
  }
  $('logout').addEventListener('click', () => {
    if (!window.confirm('确定要退出登录吗？退出后就收不到新工单提醒了。')) return;
    showError('');
    logout();
  });

  // ---------- ticket list ----------
  function scheduleRefresh() {  // coalesce bursts of live events into one reload
    clearTimeout(state.refreshTimer);
    state.refreshTimer = setTimeout(refreshList, 300);
  }

  async function refreshList() {
    if (!state.token) return;
    try {
      const open = await api('GET', '/api/tickets?status=open');
      state.openTickets = open.tickets || [];
      const firstLoad = !state.knownIds;
      state.knownIds = state.knownIds || new Set();
      for (const t of state.openTickets) {
        if (!firstLoad && !state.knownIds.has(t.id)) state.newIds.add(t.id);
        state.knownIds.add(t.id);
      }
      state.shownTickets = state.tab === 'open' ? state.openTickets
        : (await api('GET', '/api/tickets?status=resolved')).tickets || [];
      renderList();
    } catch (err) {
      if (state.token) showError(err.message);
    }
  }

  function updateTitle() {
    const unclaimed = state.openTickets.filter((t) => UNCLAIMED.includes(t.status)).length;
    document.title = unclaimed ? '(' + unclaimed + ') 待认领 · ' + BASE_TITLE : BASE_TITLE;
    $('open-count').textContent = state.openTickets.length ? String(state.openTickets.length) : '';
  }

  const tag = (text, className) => el('span', 'tag ' + className, text);

  const isSecretary = () => !!(state.me && state.me.role === 'secretary');
  const isMine = (t) => !!(t.assignee && state.me && t.assignee.id === state.me.id);

  // Who has the ticket, in words a volunteer reads at a glance.
  function assigneeText(t) {
    if (!t.assignee) return t.status === 'resolved' ? '' : '还没有分派给人';
    const who = isMine(t) ? '我' : t.assignee.name;
    if (t.status === 'claimed') return '处理人：' + who;
    if (t.status === 'resolved') return '办理人：' + who;
    return '分派给：' + who + '（还没认领）';
  }

  function renderList() {
    updateTitle();
    const list = $('ticket-list');
    list.replaceChildren();
    for (const t of state.shownTickets) {
      const card = el('a', 'ticket-card' + (state.newIds.has(t.id) ? ' is-new' : '') +
        (state.unreadIds.has(t.id) ? ' is-unread' : ''));
      card.href = '#t=' + t.id;
      const top = el('div', 'card-top');
      top.append(tag(t.category_label, 'cat-' + t.category), tag(t.status_label, 'st-' + t.status));
      if (state.newIds.has(t.id)) top.append(tag('新', 'tag-new'));
      if (state.unreadIds.has(t.id)) top.append(tag('居民有新消息', 'tag-unread'));
      top.append(el('span', 'card-ago', timeAgo(t.created_at)));
      const resident = t.resident || {};
      const who = [resident.name, t.grid, resident.phone].filter(Boolean).join(' · ');
      card.append(top, el('div', 'card-who', who), el('div', 'card-text', excerpt(t.text, 40)));
      const holder = assigneeText(t);
      if (holder) card.append(el('div', 'card-assignee' + (isMine(t) ? ' is-mine' : ''), holder));
      const item = el('li');
      item.append(card);
      list.append(item);
    }
    const empty = $('list-empty');
    empty.textContent = state.tab === 'open' ? '暂时没有待处理的事，辛苦了！' : '还没有已解决的工单。';
    empty.hidden = state.shownTickets.length > 0;
  }

  for (const tab of document.querySelectorAll('.tab')) {
    tab.addEventListener('click', () => {
      state.tab = tab.dataset.status;
      for (const other of document.querySelectorAll('.tab')) other.classList.toggle('is-active', other === tab);
      state.shownTickets = state.tab === 'open' ? state.openTickets : [];
      renderList();
      if (state.tab !== 'open') $('list-empty').textContent = '正在加载…';
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
      : '这张工单已经由其他人接手处理了（或者不归您管），您不用再管它了。';
    $('ticket-gone').hidden = false;
  }
  $('gone-back').addEventListener('click', () => { location.hash = ''; });

  function infoRow(label, value) {
    const row = el('div', 'info-row');
    row.append(el('span', 'info-label', label), el('span', 'info-value', value));
    return row;
  }

  function renderTicket(t) {
    $('ticket-title').textContent = '工单 #' + t.id;
    const info = $('ticket-info');
    info.replaceChildren();
    const tags = el('div', 'card-top');
    tags.append(tag(t.category_label, 'cat-' + t.category), tag(t.status_label, 'st-' + t.status),
      el('span', 'card-ago', timeAgo(t.created_at)));
    info.append(tags, el('blockquote', 'ticket-text', t.text));
    const resident = t.resident || {};
    const entities = t.entities || {};
    info.append(infoRow('居民', [resident.name, resident.phone].filter(Boolean).join(' ') || '未知'));
    info.append(infoRow('网格', (t.grid || '未知') + (t.chat_type === 'group' ? '（群里说的）' : '（私聊）')));
    for (const [key, label] of [['address', '地址'], ['phone', '电话'], ['time', '时间']]) {
      if (entities[key]) info.append(infoRow(label, String(entities[key])));
    }
    const holder = t.assignee ? (isMine(t) ? t.assignee.name + '（我）' : t.assignee.name) : '还没有分派';
    const holderLabel = t.status === 'claimed' || t.status === 'resolved' ? '处理人' : '分派给';
    info.append(infoRow(holderLabel, holder + (UNCLAIMED.includes(t.status) && t.assignee ? '，还没认领' : '')));
    const resolvedEvent = (t.events || []).filter((e) => e.kind === 'resolve').pop();
    if (resolvedEvent && resolvedEvent.reason) info.append(infoRow('处理说明', resolvedEvent.reason));
    $('ticket-gone').hidden = true;
    info.hidden = false;
    $('ticket-body').hidden = false;
    renderMessages(t.messages || []);
    renderEvents(t.events || []);
    const resolved = t.status === 'resolved';
    // Only the ticket's holder (or the secretary) may reply or resolve: the server says 403 otherwise.
    const mayAct = !state.me || isSecretary() || isMine(t);
    $('claim').hidden = !UNCLAIMED.includes(t.status);
    $('reply-form').hidden = resolved || !mayAct;
    const mayResolve = mayAct && (t.status === 'assigned' || t.status === 'claimed');
    $('resolve-open').hidden = !mayResolve || !$('resolve-form').hidden;
    if (!mayResolve) $('resolve-form').hidden = true;
    const note = $('not-mine');
    note.hidden = resolved || mayAct;
    note.textContent = '先点上面的“认领”，认领后就能回复居民了。';
    if (resident.name) $('reply-text').placeholder = '例如：' + resident.name + '，我下午三点上门看看。';
  }

  const EVENT_LABELS = { created: '居民求助', assign: '分派', claim: '认领', resolve: '办好了' };

  function renderEvents(events) {
    const list = $('ticket-events');
    list.replaceChildren();
    for (const e of events) {
      const item = el('li', 'event');
      const actor = e.actor === 'system' ? '系统' : (e.actor || '');
      item.append(el('span', 'event-time', formatTime(e.created_at)),
        el('span', 'event-what', [actor, EVENT_LABELS[e.kind] || e.kind].filter(Boolean).join(' ')));
      if (e.reason && e.reason !== EVENT_LABELS[e.kind]) item.append(el('span', 'event-reason', e.reason));
      list.append(item);
    }
  }

  // What a resident sent besides words: a photo, a voice clip, a place.
  function bubble(m) {
    const box = el('div', 'bubble');
    const media = m.media || {};
    if (m.kind === 'image') {
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
      if (m.kind === 'voice' && m.media && m.media.media_id) row.append(el('div', 'msg-note', '语音编号 ' + m.media.media_id));
      if (UNDELIVERED[m.delivery]) row.append(el('div', 'msg-undelivered', UNDELIVERED[m.delivery]));
      row.append(el('div', 'msg-time', formatTime(m.created_at)));
      box.append(row);
    }
  }

  // A reply the resident's WeChat would not take: the member has to call instead.
  function showCallNotice(frame) {
    $('call-text').textContent = '工单 #' + frame.ticket.id + '：' + frame.notice;
    const link = $('call-link');
    link.hidden = !frame.phone;
    if (frame.phone) link.href = 'tel:' + String(frame.phone).replace(/[^0-9+]/g, '');
    $('call-banner').hidden = false;
  }
  $('call-close').addEventListener('click', () => { $('call-banner').hidden = true; });

  async function act(button, path, body, after) {
    const id = state.currentId;
    button.disabled = true;
    try {
      await api('POST', '/api/tickets/' + id + path, body);
      showError('');
      if (after) after();
    } catch (err) {
      showError(err.message);
    } finally {
      button.disabled = false;
      if (state.currentId === id) loadTicket(id);
      scheduleRefresh();
    }
  }

  $('claim').addEventListener('click', () => act($('claim'), '/claim', undefined, () => {
    // Next step is usually a reply: bring the box into view once the page has re-rendered.
    setTimeout(() => $('reply-form').scrollIntoView({ block: 'center', behavior: 'smooth' }), 400);
  }));

  $('reply-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const text = $('reply-text').value.trim();
    if (!text) { $('reply-text').focus(); return; }
    act($('reply-submit'), '/reply', { text }, () => { $('reply-text').value = ''; });
  });

  $('resolve-open').addEventListener('click', () => {
    $('resolve-form').hidden = false;
    $('resolve-open').hidden = true;
    $('resolve-note').focus();
  });

  function closeResolveBox() {
    $('resolve-form').hidden = true;
    $('resolve-note').value = '';
    $('resolve-open').hidden = !!(state.current && state.current.status === 'resolved');
  }
  $('resolve-cancel').addEventListener('click', closeResolveBox);

  $('resolve-form').addEventListener('submit', (e) => {
    e.preventDefault();
    act($('resolve-submit'), '/resolve', { note: $('resolve-note').value.trim() }, closeResolveBox);
  });

  $('back').addEventListener('click', () => {
    if (state.enteredFromList) history.back(); else location.hash = '';
  });

  // ---------- live updates ----------
  function closeSocket() {
    state.wsGen += 1;
    clearTimeout(state.retryTimer);
    if (state.ws) state.ws.close();
    state.ws = null;
    $('conn-banner').hidden = true;
  }

  function connect() {
    closeSocket();
    if (!state.token) return;
    const gen = state.wsGen;
    const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
    const ws = new WebSocket(proto + '//' + location.host + '/api/ws?token=' + encodeURIComponent(state.token));
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
      if (!frame.ticket || !/^ticket\./.test(frame.type || '')) return;
      if (frame.type === 'ticket.created') state.newIds.add(frame.ticket.id);
      const fromResident = frame.type === 'ticket.message' && frame.message && frame.message.sender_kind === 'resident';
      if (fromResident && (frame.ticket.id !== state.currentId || views.ticket.hidden)) {
        state.unreadIds.add(frame.ticket.id);
      }
      scheduleRefresh();
      if (frame.ticket.id === state.currentId) loadTicket(state.currentId);
    });

    ws.addEventListener('close', () => {
      if (gen !== state.wsGen) return;
      $('conn-banner').hidden = false;
      api('GET', '/api/me').catch(() => {});  // a 401 here sends us back to login
      state.retryTimer = setTimeout(() => { if (gen === state.wsGen) connect(); }, state.retryDelay);
      state.retryDelay = Math.min(state.retryDelay * 2, 10000);
    });
  }

  // ---------- routing ----------
  function route() {
    if (!state.token) { showView('login'); return; }
    const match = location.hash.match(/^#t=(\d+)$/);
    if (match) {
      const id = Number(match[1]);
      if (state.currentId !== id || views.ticket.hidden) {
        state.enteredFromList = !views.list.hidden;
        state.currentId = id;
        state.current = null;
        state.newIds.delete(id);
        state.unreadIds.delete(id);
        $('ticket-title').textContent = '工单 #' + id;
        $('ticket-info').replaceChildren(el('p', 'list-note', '正在打开…'));
        $('ticket-info').hidden = false;
        $('ticket-gone').hidden = true;
        $('ticket-body').hidden = true;
        $('ticket-messages').replaceChildren();
        $('ticket-events').replaceChildren();
        $('reply-text').value = '';
        closeResolveBox();
        $('claim').hidden = true;
        showView('ticket');
        loadTicket(id);
      }
      return;
    }
    state.currentId = state.current = null;
    showView('list');
    renderList();
    scheduleRefresh();
  }

  function startApp() {
    $('me-name').textContent = state.me ? state.me.name : '';
    route();
    connect();
  }

  async function start() {
    if (!state.token) { showView('login'); return; }
    state.me = await api('GET', '/api/me').catch((err) => { showError(err.message); return null; });
    if (state.token) startApp();  // after a 401 we are already back at login
  }

  window.addEventListener('hashchange', () => { showError(''); route(); });
  start();
})();
