// Console: filters and search over the ticket list (状态, 类别, 网格, 办理人, words in the
// request). The server applies them within what the member may see (GET /api/tickets).

import { $, state } from './console-core.js';
import { refreshList } from './console-list.js';
import { api } from './console-session.js';

// Each tab's narrower statuses (bot/handoff/queries.py STATUS_GROUPS and states.py).
const STATUS_CHOICES = {
  open: [['', '全部待处理'], ['unclaimed', '还没人认领'], ['claimed', '处理中']],
  done: [['', '全部已办完'], ['resolved', '已解决，等居民评价'], ['closed', '已关闭']],
};
const CATEGORIES = [
  ['repair', '维修'], ['canteen', '助餐'], ['medical', '医疗'], ['complaint', '投诉'], ['urgent', '紧急'],
  ['unclassified', '未分类'],
];
const FIELDS = ['status', 'category', 'grid', 'member', 'q'];

// What the list is narrowed to now: applied on 查找, not while typing.
let chosen = {};

const filtering = () => Object.keys(chosen).length > 0;

// The query string for the current tab, with the filters chosen.
function ticketQuery(tab) {
  const params = new URLSearchParams({ status: chosen.status || tab });
  for (const field of FIELDS) if (field !== 'status' && chosen[field]) params.set(field, chosen[field]);
  return params.toString();
}

function fillSelect(select, first, choices) {
  const keep = select.value;
  select.replaceChildren(new Option(first, ''));
  for (const [value, label] of choices) select.append(new Option(label, value));
  select.value = choices.some(([value]) => value === keep) ? keep : '';
}

function statusChoices(tab) {
  const [first, ...rest] = STATUS_CHOICES[tab];
  fillSelect($('filter-status'), first[1], rest);
}

// Grids and colleagues come from the members' list (and the grids of tickets on screen);
// a member who sees only their own tickets gets no "办理人" choice.
async function loadChoices() {
  const data = await api('GET', '/api/members').catch(() => ({ members: [] }));
  const members = (data.members || []).filter((m) => m.holds_tickets);
  const grids = new Set(members.flatMap((m) => m.grids || []));
  for (const t of state.openTickets) if (t.grid) grids.add(t.grid);
  fillSelect($('filter-grid'), '全部网格', [...grids].sort().map((g) => [g, g]));
  const seesAll = !!(state.me && ['secretary', 'district'].includes(state.me.role));
  fillSelect($('filter-member'), '所有人', members.map((m) => [String(m.id), m.name]));
  $('filter-member-row').hidden = !seesAll;
}

function showChosen() {
  const count = Object.keys(chosen).length;
  $('filter-count').textContent = count ? String(count) : '';
  $('filter-clear').hidden = !count;
}

function apply() {
  chosen = {};
  for (const field of FIELDS) {
    const value = $('filter-' + field).value.trim();
    if (value) chosen[field] = value;
  }
  showChosen();
  refreshList();
}

// The tabs change the statuses there are to choose from.
function tabChanged(tab) {
  statusChoices(tab);
  delete chosen.status;
  showChosen();
}

$('filter-box').addEventListener('toggle', () => { if ($('filter-box').open) loadChoices(); });
$('filter-form').addEventListener('submit', (e) => { e.preventDefault(); apply(); });
for (const field of ['status', 'category', 'grid', 'member']) $('filter-' + field).addEventListener('change', apply);
$('filter-clear').addEventListener('click', () => {
  for (const field of FIELDS) $('filter-' + field).value = '';
  apply();
  $('filter-q').focus();
});
fillSelect($('filter-category'), '全部类别', CATEGORIES);
statusChoices('open');
showChosen();

export { filtering, tabChanged, ticketQuery };
