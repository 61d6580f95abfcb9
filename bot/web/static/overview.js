// The secretary's overview (/console/overview): the figures residents feel, the server's SVG
// charts, the tables behind them, and the CSV download. See docs/overview.md and docs/api.md.
// One plain ES module, no build step; it uses the console's login (the same saved token).

const KEY_TOKEN = 'console.token';
const { $, el, showError, showOk, formatTime } = window.Page;
const views = { login: $('view-login'), denied: $('view-denied'), overview: $('view-overview') };
// The roles with the overview (bot/handoff/roles.py).
const READERS = ['secretary', 'district'];

const state = { token: localStorage.getItem(KEY_TOKEN), days: 30, community: '', loadSeq: 0 };

const showView = (name) => { for (const key in views) views[key].hidden = key !== name; };

// ---------- talking to the server ----------
function request(method, path, body) {
  return window.Page.send(method, path, body, state.token, (token) => {
    if (token && token === state.token) loginEnded();
  });
}

async function api(method, path, body) {
  const resp = await request(method, path, body);
  const data = await resp.json().catch(() => null);
  if (!resp.ok) {
    const error = new Error((data && data.message) || '没能加载，请稍后再试。');
    error.status = resp.status;
    throw error;
  }
  return data;
}

function query() {
  const params = new URLSearchParams({ days: String(state.days) });
  if (state.community) params.set('community', state.community);
  return params.toString();
}

// ---------- words for numbers ----------
function duration(seconds) {
  if (seconds === null || seconds === undefined) return '—';
  const minutes = Math.round(seconds / 60);
  if (minutes < 1) return '不到1分钟';
  if (minutes < 60) return minutes + '分钟';
  const hours = Math.floor(minutes / 60);
  if (hours < 48) return hours + '小时' + (minutes % 60 ? (minutes % 60) + '分' : '');
  return Math.round(hours / 24) + '天';
}

const percent = (share) => (share === null || share === undefined ? '—' : Math.round(share * 100) + '%');

function figure(value, label, note, warn) {
  const box = el('div', 'figure' + (warn ? ' is-warn' : ''));
  box.append(el('span', 'figure-value', value), el('span', 'figure-label', label));
  if (note) box.append(el('span', 'figure-note', note));
  return box;
}

// ---------- drawing the page ----------
function renderFigures(data) {
  const reply = data.first_reply;
  const [day, threeDays] = data.resolved;
  const rating = data.satisfaction;
  const box = $('overview-figures');
  box.replaceChildren(
    figure(duration(reply.median_s), '第一次有人回复（中位数）',
      reply.answered ? '一半的求助在这么久之内有人回复；九成在' + duration(reply.p90_s) + '之内。'
        : '这段时间还没有回复过的求助。'),
    figure(percent(day.share), '24小时内办好',
      day.due ? '满一天的' + day.due + '件求助里，' + day.resolved + '件一天内办好。' : '还没有满一天的求助。'),
    figure(percent(threeDays.share), '72小时内办好',
      threeDays.due ? '满三天的' + threeDays.due + '件求助里，' + threeDays.resolved + '件三天内办好。' : '还没有满三天的求助。'),
    figure(percent(rating.satisfied_share), '居民满意',
      rating.rated ? rating.rated + '位居民评价：满意' + rating.counts['满意'] + '，一般' + rating.counts['一般'] +
        '，不满意' + rating.counts['不满意'] + '。' : '这段时间还没有居民评价。'),
    figure(String(data.open_now), '现在在办',
      data.overdue_now + '件超过' + data.overdue_after_hours + '小时还没办完；' + reply.waiting + '件还在等第一次回复。',
      data.overdue_now > 0),
    figure(String(data.unseen.total), '“可能需要帮忙”没人看', '群里或私聊里可能是求助、还没人确认的消息。',
      data.unseen.total > 0),
  );
}

// A server-made chart: parsed as SVG and put in the page (not an <img>), so its title and its
// description with every number reach a screen reader.
function renderChart(id, markup) {
  const holder = $(id);
  const doc = new DOMParser().parseFromString(markup || '', 'image/svg+xml');
  holder.replaceChildren();
  if (doc.querySelector('parsererror') || doc.documentElement.nodeName !== 'svg') {
    holder.append(el('p', 'list-note', '图表没能显示，请看下面的表格或下载表格。'));
    return;
  }
  holder.append(document.importNode(doc.documentElement, true));
}

function table(node, head, rows) {
  const thead = el('thead');
  const top = el('tr');
  for (const name of head) {
    const th = el('th', '', name);
    th.scope = 'col';
    top.append(th);
  }
  thead.append(top);
  const body = el('tbody');
  for (const row of rows) {
    const tr = el('tr');
    row.forEach((cell, i) => {
      const td = el(i ? 'td' : 'th', '', String(cell));
      if (!i) td.scope = 'row';
      tr.append(td);
    });
    body.append(tr);
  }
  node.replaceChildren(thead, body);
}

function duty(m) {
  if (m.paused) return '暂停接单';
  return m.on_duty ? '在岗' : '不在岗';
}

function renderTables(data) {
  const many = data.scope.district;
  table($('grid-table'), ['网格', '在办', '超时', '这段时间\n的求助', '升级'],
    data.grids.map((g) => [(many ? g.community + ' ' : '') + g.grid, g.open, g.overdue, g.requests, g.escalated]));
  table($('member-table'), ['党员', '在岗', '在办', '超时', '这段时间\n办结'],
    data.members.map((m) => [(many ? m.community + ' ' : '') + m.name + (m.role === 'secretary' ? '（书记）' : ''),
      duty(m), m.open, m.overdue, m.resolved]));
}

function renderEscalations(data) {
  const e = data.escalations;
  const lines = [
    [e.escalated, '件没人及时认领，转给了下一位、书记或全支部'],
    [e.handed_back, '件被接单的党员退回'],
    [e.unanswered_by_branch, '件全支部都通知了，仍没人认领'],
    [e.reopened, '件重新打开（居民说没修好，或不满意）'],
  ];
  $('escalation-list').replaceChildren(...lines.map(([n, text]) => {
    const item = el('li', 'overview-item' + (n > 0 ? ' is-warn' : ''));
    item.append(el('strong', 'overview-count', String(n)), text);
    return item;
  }));
}

function renderUnseen(data) {
  const { total, oldest } = data.unseen;
  $('unseen-note').textContent = total
    ? '共' + total + '条还没人确认是不是求助' + (total > oldest.length ? '，下面是最早的' + oldest.length + '条' : '') + '。请到工单页确认。'
    : '都有人看过了。';
  $('unseen-list').replaceChildren(...oldest.map((u) => {
    const item = el('li', 'overview-item');
    item.append(el('span', 'overview-when', formatTime(u.created_at) + ' · ' + (u.grid || '网格不明')),
      el('span', 'overview-text', u.text));
    return item;
  }));
}

function renderCommunities(data) {
  const select = $('overview-community');
  $('overview-community-row').hidden = data.communities.length < 2;
  if (select.options.length) return;
  if (data.scope.district) select.append(new Option('全街道（所有社区）', ''));
  for (const c of data.communities) select.append(new Option(c.name, c.code));
  select.value = state.community;
}

function render(data) {
  const since = formatTime(data.period.since);
  $('overview-scope').textContent = data.scope.name + ' · 近' + data.period.days + '天（' + since + '起），共' +
    data.requests + '件求助';
  renderCommunities(data);
  renderFigures(data);
  renderChart('chart-grids', data.charts.grids);
  renderChart('chart-weeks', data.charts.weeks);
  renderChart('chart-satisfaction', data.charts.satisfaction);
  renderTables(data);
  renderEscalations(data);
  renderUnseen(data);
}

async function load() {
  const seq = ++state.loadSeq;
  $('overview-scope').textContent = '正在加载…';
  try {
    const data = await api('GET', '/api/overview?' + query());
    if (seq === state.loadSeq) { showError(''); render(data); }
  } catch (err) {
    if (seq !== state.loadSeq || !state.token) return;
    if (err.status === 403) { showView('denied'); return; }
    showError(err.message);
  }
}

// ---------- controls ----------
for (const button of $('overview-period').querySelectorAll('[data-days]')) {
  button.addEventListener('click', () => {
    state.days = Number(button.dataset.days);
    for (const other of $('overview-period').querySelectorAll('[data-days]')) {
      other.setAttribute('aria-pressed', String(other === button));
    }
    load();
  });
}

$('overview-community').addEventListener('change', () => {
  state.community = $('overview-community').value;
  load();
});

// The download needs the login header, so a plain link cannot fetch it: fetch, then save.
$('overview-csv').addEventListener('click', async () => {
  const button = $('overview-csv');
  button.disabled = true;
  try {
    const resp = await request('GET', '/api/overview.csv?' + query());
    if (!resp.ok) throw new Error('表格没能下载，请稍后再试。');
    const match = /filename="([^"]+)"/.exec(resp.headers.get('Content-Disposition') || '');
    const link = el('a');
    link.href = URL.createObjectURL(await resp.blob());
    link.download = match ? match[1] : 'overview.csv';
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(link.href), 10000);
    showOk('表格已下载，用 Excel 或 WPS 打开就行。');
  } catch (err) {
    if (state.token) showError(err.message);
  } finally {
    button.disabled = false;
  }
});

// ---------- login: the console's ----------
// The server no longer takes the saved login (it ran out, or was ended elsewhere).
function loginEnded() {
  state.token = null;
  localStorage.removeItem(KEY_TOKEN);
  $('login-note').textContent = '登录已过期。请在社区工单重新登录，再点“概况”回到这里。';
  showView('login');
}

$('error-close').addEventListener('click', () => showError(''));

function enter(member) {
  if (!member || !READERS.includes(member.role)) { showView('denied'); return; }
  $('me-name').textContent = member.name;
  showView('overview');
  load();
}

async function start() {
  if (!state.token) { showView('login'); return; }
  try {
    enter(await api('GET', '/api/me'));
  } catch (err) {
    if (state.token) showError(err.message);
  }
}

start();
