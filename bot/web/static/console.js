// Console for party members: live ticket list and ticket handling. See docs/api.md.
'use strict';

(function () {
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

  // ---------- API ----------
  const FALLBACK_ERRORS = {
    400: '内容有误，请检查一下。', 403: '您没有权限查看这个工单。',
    404: '没有找到这个工单。', 409: '已被其他人认领，或者已经解决了。',
  };

  async function api(method, path, body) {
    const headers = { Accept: 'application/json' };
    const token = state.token;
    if (token) headers.Authorization = 'Bearer ' + token;
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    const resp = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) })
      .catch(() => { throw new Error('网络不太好，请稍后再试。'); });
    const data = await resp.json().catch(() => null);
    if (resp.status === 401 && path !== '/api/login') {
      if (token && token === state.token) logout(true);  // not when we logged out meanwhile
      throw new Error('请重新登录。');
    }
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

  // ---------- urgent requests ----------
  function setTitle(text) {
    state.titleText = text;
    if (!state.flashTimer) document.title = text;
  }

  // A new 紧急 request: a red banner with a button to open it, and a flashing tab title.
  function announceUrgent(t) {
    if (state.alertedIds.has(t.id) || !UNCLAIMED.includes(t.status)) return;
    state.alertedIds.add(t.id);
    if (state.currentId === t.id && !views.ticket.hidden) return;  // already looking at it
    state.urgent = t;
    const resident = t.resident || {};
    $('urgent-text').textContent = '紧急求助！' +
      [t.grid, resident.name].filter(Boolean).join(' · ') + '：' + excerpt(t.text, 30);
    $('urgent-open').href = '#t=' + t.id;
    $('urgent-banner').hidden = false;
    clearInterval(state.flashTimer);
    state.flashTimer = setInterval(() => {
      state.flashOn = !state.flashOn;
      document.title = state.flashOn ? '【紧急求助】' + state.titleText : state.titleText;
    }, 1000);
    try { if (navigator.vibrate) navigator.vibrate([400, 200, 400]); } catch (err) { /* not on this device */ }
  }

  function clearUrgent() {
    state.urgent = null;
    clearInterval(state.flashTimer);
    state.flashTimer = null;
    $('urgent-banner').hidden = true;
    document.title = state.titleText;
  }
  $('urgent-close').addEventListener('click', clearUrgent);

  // ---------- ticket list ----------
  function scheduleRefresh() {  // coalesce bursts of live events into one reload
    clearTimeout(state.refreshTimer);
    state.refreshTimer = setTimeout(refreshList, 300);
  }

  const byNewest = (a, b) => b.id - a.id;

  async function loadDone() {
    const [resolved, closed] = await Promise.all(DONE.map((s) => api('GET', '/api/tickets?status=' + s)));
    return [...(resolved.tickets || []), ...(closed.tickets || [])].sort(byNewest);
  }

  async function refreshList() {
    if (!state.token) return;
    try {
      const [open, possible] = await Promise.all([
        api('GET', '/api/tickets?status=open'), api('GET', '/api/possible-requests'),
      ]);
      state.openTickets = open.tickets || [];
      state.possible = possible.possible_requests || [];
      renderPossible();
      const firstLoad = !state.knownIds;
      state.knownIds = state.knownIds || new Set();
      for (const t of state.openTickets) {
        if (!firstLoad && !state.knownIds.has(t.id)) {
          state.newIds.add(t.id);
          if (t.category === 'urgent') announceUrgent(t);  // e.g. arrived while we were offline
        }
        state.knownIds.add(t.id);
      }
      // Someone took the urgent request: no need to keep shouting.
      if (state.urgent && !state.openTickets.some((t) => t.id === state.urgent.id && UNCLAIMED.includes(t.status))) {
        clearUrgent();
      }
      state.shownTickets = state.tab === 'open' ? sortOpen(state.openTickets) : await loadDone();
      renderList();
    } catch (err) {
      if (state.token) showError(err.message);
    }
  }

  const isUrgentWaiting = (t) => t.category === 'urgent' && UNCLAIMED.includes(t.status);

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
    if (t.broadcast) return '已通知全支部，谁有空谁认领';
    if (t.category === 'urgent' && UNCLAIMED.includes(t.status)) return '已通知在岗同事和书记，谁先到谁认领';
    return '还没有分派给人';
  }

  // "还剩5分钟": how long until an unclaimed ticket goes on to the next person.
  // After the secretary (level 2) the next step is the whole branch.
  function deadlineText(deadline, long, level) {
    const ms = new Date(deadline).getTime() - Date.now();
    if (isNaN(ms)) return '';
    const next = level >= 2 ? '通知全支部' : '转给下一位同事';
    if (ms <= 0) return long ? '认领时间到了，正在' + next + '。' : '正在' + next;
    const minutes = Math.ceil(ms / 60000);
    return long ? '还剩' + minutes + '分钟，没人认领就会' + next + '。' : '还剩' + minutes + '分钟认领';
  }

  function countdown(t, className, long) {
    if (!UNCLAIMED.includes(t.status) || !t.claim_deadline) return null;
    const level = t.escalation_level || 0;
    const node = el('span', 'countdown ' + className, deadlineText(t.claim_deadline, long, level));
    node.dataset.deadline = t.claim_deadline;
    node.dataset.level = String(level);
    if (long) node.dataset.long = '1';
    return node;
  }

  // Refresh the countdown texts in place between reloads (urgent ones run in a minute).
  setInterval(() => {
    for (const node of document.querySelectorAll('.countdown[data-deadline]')) {
      node.textContent = deadlineText(node.dataset.deadline, node.dataset.long === '1', Number(node.dataset.level));
    }
  }, 15000);

  const RATING_CLASS = { 满意: 'rate-good', 一般: 'rate-ok', 不满意: 'rate-bad' };
  const ratingTag = (rating, short) => tag((short ? '' : '居民评价：') + rating, RATING_CLASS[rating] || 'rate-ok');

  function statusTags(t) {
    const top = el('div', 'card-top');
    top.append(tag(t.category_label, 'cat-' + t.category), tag(t.status_label, 'st-' + t.status));
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
    empty.textContent = state.tab === 'open' ? '暂时没有待处理的事，辛苦了！' : '还没有办完的工单。';
    empty.hidden = state.shownTickets.length > 0;
  }

  // ---------- possible requests ----------
  // The model read these as chatter, yet something in them sounds like a request: a member
  // of the grid says which with one tap (bot/handoff/possible.py).
  function whereSaid(p) {
    if (p.chat_type !== 'group') return '私聊';
    return p.grid ? p.grid + '的群' : '居民群';
  }

  function possibleCard(p) {
    const card = el('li', 'possible-card');
    const title = p.chat_type === 'group' ? '群里可能有人需要帮忙' : '可能有人需要帮忙';
    const who = [(p.resident || {}).name || '居民', whereSaid(p), formatTime(p.created_at)];
    card.append(el('h2', 'possible-title', title), el('blockquote', 'possible-text', p.text),
      el('div', 'possible-meta', who.join(' · ')));
    const yes = el('button', 'btn btn-primary btn-possible', '是求助');
    const no = el('button', 'btn btn-plain btn-possible', '不是');
    yes.type = no.type = 'button';
    yes.addEventListener('click', () => decidePossible(p, 'confirm', [yes, no]));
    no.addEventListener('click', () => decidePossible(p, 'dismiss', [yes, no]));
    const row = el('div', 'btn-row');
    row.append(yes, no);
    card.append(row);
    return card;
  }

  function renderPossible() {
    $('possible-list').replaceChildren(...state.possible.map(possibleCard));
    $('possible-box').hidden = !state.possible.length;
  }

  function dropPossible(id) {
    state.possible = state.possible.filter((p) => p.id !== id);
    renderPossible();
  }

  const DECIDED_TEXT = {
    confirm: '已转成求助，居民会收到谁来帮忙。',
    dismiss: '好的，记下了：这是闲聊。',
  };

  async function decidePossible(p, decision, buttons) {
    for (const button of buttons) button.disabled = true;
    try {
      await api('POST', '/api/possible-requests/' + p.id + '/' + decision);
      showError('');
      showOk(DECIDED_TEXT[decision]);
      dropPossible(p.id);
    } catch (err) {
      showError(err.message);
      // A colleague decided first, or it is not ours to decide: the card has nothing left to do.
      if ([403, 404, 409].includes(err.status)) dropPossible(p.id);
      else for (const button of buttons) button.disabled = false;
    }
    scheduleRefresh();
  }

  function onPossibleFrame(frame) {
    const p = frame.possible_request;
    if (frame.type === 'possible_request.decided') { dropPossible(p.id); return; }
    if (state.possible.some((q) => q.id === p.id)) return;
    state.possible = [p, ...state.possible];
    renderPossible();
    try { if (navigator.vibrate) navigator.vibrate(300); } catch (err) { /* not on this device */ }
  }

  for (const tab of document.querySelectorAll('.tab[data-status]')) {
    tab.addEventListener('click', () => {
      state.tab = tab.dataset.status;
      for (const other of document.querySelectorAll('.tab[data-status]')) other.classList.toggle('is-active', other === tab);
      state.shownTickets = state.tab === 'open' ? sortOpen(state.openTickets) : [];
      renderList();
      if (state.tab !== 'open') { $('list-empty').textContent = '正在加载…'; $('list-empty').hidden = false; }
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

  // ---------- security record (the secretary's) ----------
  const AUDIT_ACTIONS = {
    login: '登录', login_failed: '登录失败', logout: '退出', phone_revealed: '查看电话',
    privacy_export: '导出个人信息', privacy_erase: '删除个人信息', password_changed: '修改密码',
    member_removed: '移除成员', role_changed: '角色变更', retention: '到期清理',
  };

  async function loadAudit() {
    const empty = $('audit-empty');
    empty.textContent = '正在加载…';
    empty.hidden = false;
    try {
      const data = await api('GET', '/api/audit');
      if (!views.audit.hidden) renderAudit(data.entries || []);
    } catch (err) {
      if (!state.token) return;
      $('audit-list').replaceChildren();
      empty.textContent = err.status === 403 ? '只有书记能看安全记录。' : err.message;
    }
  }

  // Newest first, as the server sends: when, who did what, and to whom or what.
  function renderAudit(entries) {
    const list = $('audit-list');
    list.replaceChildren();
    for (const e of entries) {
      const item = el('li', 'event audit-' + String(e.action).replace(/[^a-z_]/g, ''));
      item.append(el('span', 'event-time', formatTime(e.at)),
        el('span', 'event-what', [e.actor, AUDIT_ACTIONS[e.action] || e.action].filter(Boolean).join(' ')));
      const about = [e.target, e.detail].filter(Boolean).join(' · ');
      if (about) item.append(el('span', 'event-reason', about));
      list.append(item);
    }
    $('audit-empty').textContent = '还没有记录。';
    $('audit-empty').hidden = entries.length > 0;
  }

  $('audit-back').addEventListener('click', () => {
    if (state.auditFromList) history.back(); else location.hash = '';
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

  // What a request can really be (bot/handoff/categories.py); 未分类 is never a choice.
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
      pick.addEventListener('click', () => act(pick, '/category', { category }, () => {
        state.fixingCategory = null;
        showOk('已改成“' + label + '”，谢谢您！');
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
    if (t.category === 'urgent' && isOpen(t)) info.append(el('p', 'urgent-strip', '紧急求助：请尽快联系居民！'));
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
    if (!mayPass) $('transfer-form').hidden = $('handback-form').hidden = true;
    const panelOpen = !$('resolve-form').hidden || !$('transfer-form').hidden || !$('handback-form').hidden;
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
    category_corrected: '更正分类', confirmed: '确认是求助',
  };
  // Kinds the resident or the clock caused: "系统" in front would only confuse.
  const NO_ACTOR = ['created', 'rate', 'expire', 'escalate', 'waiting', 'unassigned'];

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
    if (frame.phone) link.href = 'tel:' + digits(frame.phone);
    $('call-banner').hidden = false;
  }
  $('call-close').addEventListener('click', () => { $('call-banner').hidden = true; });

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

  $('claim').addEventListener('click', () => act($('claim'), '/claim', undefined, () => {
    showOk('认领好了，请尽快联系居民。');
    if (state.urgent && state.urgent.id === state.currentId) clearUrgent();
    // Next step is usually a reply: bring the box into view once the page has re-rendered.
    setTimeout(() => $('reply-form').scrollIntoView({ block: 'center', behavior: 'smooth' }), 400);
  }));

  $('reply-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const text = $('reply-text').value.trim();
    if (!text) { $('reply-text').focus(); return; }
    const all = !$('reply-all-row').hidden && $('reply-all').checked;
    act($('reply-submit'), '/reply', { text, all }, () => { $('reply-text').value = ''; });
  });

  // The same thing a neighbour already reported: join this report to their ticket.
  $('merge-open').addEventListener('click', () => {
    const answer = window.prompt('和哪张工单是同一件事？请输入工单号（#后面的数字）');
    const into = Number((answer || '').replace(/[^0-9]/g, ''));
    if (!into) return;
    act($('merge-open'), '/merge', { into }, () => showOk('已并入工单 #' + into + '。'));
  });

  // ---------- resolve, transfer, hand back: one box open at a time ----------
  const PANELS = ['resolve', 'transfer', 'handback'];

  function formError(name, text, field) {
    const box = $(name + '-error');
    box.textContent = text;
    box.hidden = !text;
    for (const input of $(name + '-form').querySelectorAll('[aria-invalid]')) input.removeAttribute('aria-invalid');
    if (field) { field.setAttribute('aria-invalid', 'true'); field.focus(); }
  }

  function openPanel(name) {
    for (const other of PANELS) if (other !== name) closePanel(other);
    formError(name, '');
    $(name + '-form').hidden = false;
    $('resolve-open').hidden = true;
    $('holder-actions').hidden = true;
    $(name + '-form').scrollIntoView({ block: 'start', behavior: 'smooth' });
  }

  function closePanel(name) {
    $(name + '-form').hidden = true;
    formError(name, '');
    for (const field of $(name + '-form').querySelectorAll('textarea, input[type="text"]')) field.value = '';
    if (name === 'resolve') { $('visit-on').checked = false; $('visit-fields').hidden = true; }
  }

  // Close every box and show the buttons again (as far as this ticket allows).
  function closePanels() {
    for (const name of PANELS) closePanel(name);
    if (state.current) renderTicket(state.current);
    else { $('resolve-open').hidden = false; $('holder-actions').hidden = true; }
  }

  for (const name of PANELS) $(name + '-cancel').addEventListener('click', closePanels);

  // Common reasons as big buttons: one tap instead of typing.
  for (const chips of document.querySelectorAll('.chips')) {
    for (const chip of chips.querySelectorAll('.chip')) {
      chip.addEventListener('click', () => {
        const field = $(chips.dataset.for);
        field.value = chip.textContent;
        field.removeAttribute('aria-invalid');
        field.focus();
      });
    }
  }

  $('resolve-open').addEventListener('click', () => {
    openPanel('resolve');
    $('resolve-note').focus();
  });

  $('visit-on').addEventListener('change', () => {
    const on = $('visit-on').checked;
    $('visit-fields').hidden = !on;
    if (on) {
      if (!$('visit-at').value) $('visit-at').value = beijingNowLocal();
      $('visit-outcome').focus();
    }
  });

  $('resolve-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const body = { note: $('resolve-note').value.trim() };
    if ($('visit-on').checked) {
      const at = $('visit-at').value;
      if (!at) { formError('resolve', '请填上走访时间。', $('visit-at')); return; }
      body.visit = { at, outcome: $('visit-outcome').value.trim() };
    }
    act($('resolve-submit'), '/resolve', body, () => {
      showOk('已标记为已解决，辛苦了！系统会请居民评价。');
      closePanels();
    });
  });

  // ---------- transfer to a colleague ----------
  const dutyText = (m) => (m.paused ? '暂停接单' : (m.on_duty ? '在岗' : '不在岗'));

  function memberOption(m, grid) {
    const label = el('label', 'member-option' + (m.on_duty ? '' : ' is-off'));
    const radio = el('input');
    radio.type = 'radio';
    radio.name = 'transfer-to';
    radio.value = String(m.id);
    const body = el('span', 'member-body');
    const head = el('span', 'member-head');
    head.append(el('span', 'member-name', m.name + (m.role === 'secretary' ? '（书记）' : '')),
      tag(dutyText(m), m.on_duty ? 'duty-on' : 'duty-off'));
    if (grid && (m.grids || []).includes(grid)) head.append(tag('本网格', 'tag-plain'));
    const details = [(m.grids || []).join('、') || '没有网格', (m.skills || []).join('、') || ''];
    body.append(head, el('span', 'member-meta', details.filter(Boolean).join(' · ')));
    if (m.hours) body.append(el('span', 'member-meta', '值班：' + m.hours));
    label.append(radio, body);
    return label;
  }

  async function loadColleagues(t) {
    const box = $('transfer-members');
    box.replaceChildren(el('p', 'list-note', '正在加载同事名单…'));
    try {
      const data = await api('GET', '/api/members');
      if (state.currentId !== t.id) return;
      const rank = (m) => (m.on_duty ? 0 : 2) + ((m.grids || []).includes(t.grid) ? 0 : 1);
      const others = (data.members || [])
        .filter((m) => m.holds_tickets)
        .filter((m) => !(state.me && m.id === state.me.id) && !(t.assignee && m.id === t.assignee.id))
        .sort((a, b) => rank(a) - rank(b) || a.id - b.id);
      box.replaceChildren();
      for (const m of others) box.append(memberOption(m, t.grid));
      if (!others.length) box.append(el('p', 'list-note', '没有可以转交的同事。'));
    } catch (err) {
      box.replaceChildren(el('p', 'form-error', err.message));
    }
  }

  $('transfer-open').addEventListener('click', () => {
    if (!state.current) return;
    openPanel('transfer');
    loadColleagues(state.current);
  });

  $('transfer-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const chosen = $('transfer-form').querySelector('input[name="transfer-to"]:checked');
    const reason = $('transfer-reason').value.trim();
    if (!chosen) { formError('transfer', '请先选一位同事。'); return; }
    if (!reason) { formError('transfer', '请写一句原因，方便同事了解情况。', $('transfer-reason')); return; }
    const name = chosen.closest('label').querySelector('.member-name').textContent;
    act($('transfer-submit'), '/transfer', { to: Number(chosen.value), reason }, () => {
      closePanels();
      leaveTicket('已转交给' + name + '，谢谢您！');
    });
  });

  // ---------- hand back ----------
  $('handback-open').addEventListener('click', () => {
    openPanel('handback');
    $('handback-reason').focus();
  });

  $('handback-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const reason = $('handback-reason').value.trim();
    if (!reason) { formError('handback', '请写一句原因，方便下一位同事了解情况。', $('handback-reason')); return; }
    act($('handback-submit'), '/hand-back', { reason }, () => {
      closePanels();
      leaveTicket('已退回，系统正在请下一位同事。没关系，谢谢您！');
    });
  });

  // Passed on: the ticket is someone else's now, so go back to the list.
  function leaveTicket(message) {
    showOk(message);
    goBack();
  }

  function goBack() {
    if (state.enteredInApp) history.back(); else location.hash = '';
  }
  $('back').addEventListener('click', goBack);

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
        if (frame.ticket.category === 'urgent') announceUrgent(frame.ticket);
      }
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

  // ---------- routing ----------
  function route() {
    if (!state.token) { showView('login'); return; }
    if (location.hash === '#audit') {
      if (!isSecretary()) { location.hash = ''; return; }
      if (views.audit.hidden) {
        state.auditFromList = !views.list.hidden;
        state.currentId = state.current = state.revealed = state.fixingCategory = null;
        $('audit-list').replaceChildren();
        showView('audit');
        window.scrollTo(0, 0);
        loadAudit();
      }
      return;
    }
    const match = location.hash.match(/^#t=(\d+)$/);
    if (match) {
      const id = Number(match[1]);
      if (state.currentId !== id || views.ticket.hidden) {
        // From the list or another ticket (以前的求助), "‹" goes back there.
        state.enteredInApp = !views.list.hidden || !views.ticket.hidden;
        state.currentId = id;
        state.current = null;
        state.revealed = state.fixingCategory = null;
        state.newIds.delete(id);
        state.unreadIds.delete(id);
        if (state.urgent && state.urgent.id === id) clearUrgent();
        $('ticket-title').textContent = '工单 #' + id;
        $('ticket-info').replaceChildren(el('p', 'list-note', '正在打开…'));
        $('ticket-info').classList.remove('is-urgent');
        $('ticket-info').hidden = false;
        $('ticket-gone').hidden = true;
        $('ticket-body').hidden = true;
        $('ticket-messages').replaceChildren();
        $('ticket-events').replaceChildren();
        $('earlier-list').replaceChildren();
        $('reply-text').value = '';
        for (const name of PANELS) closePanel(name);
        $('claim').hidden = true;
        showView('ticket');
        window.scrollTo(0, 0);
        loadTicket(id);
      }
      return;
    }
    state.currentId = state.current = state.revealed = state.fixingCategory = null;
    showView('list');
    renderList();
    scheduleRefresh();
  }

  function startApp() {
    // Operators and admins hold no tickets: their pages are the model's (same login).
    if (state.me && !state.me.holds_tickets) { location.replace('/ops/review'); return; }
    $('me-name').textContent = state.me ? state.me.name : '';
    $('audit-link').hidden = !isSecretary();
    route();
    connect();
  }

  async function start() {
    if (!state.token) { showView('login'); return; }
    state.me = await api('GET', '/api/me').catch((err) => { if (state.token) showError(err.message); return null; });
    if (state.token) startApp();  // after a 401 we are already back at login
  }

  window.addEventListener('hashchange', () => { showError(''); route(); });
  start();
})();
