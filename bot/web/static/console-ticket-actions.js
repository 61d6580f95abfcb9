// Console: what a member does on one ticket. Claim, say whether it is urgent, reply, merge,
// resolve, transfer, hand back.

import { $, beijingNowLocal, el, excerpt, showOk, state, timeAgo } from './console-core.js';
import { urgentHandled } from './console-alerts.js';
import { assigneeText, tag } from './console-list.js';
import { api } from './console-session.js';
import { act, renderTicket } from './console-ticket.js';

$('claim').addEventListener('click', () => act($('claim'), '/claim', undefined, () => {
  showOk('认领好了，请尽快联系居民。');
  urgentHandled(state.currentId);
  // Next step is usually a reply: bring the box into view once the page has re-rendered.
  setTimeout(() => $('reply-form').scrollIntoView({ block: 'center', behavior: 'smooth' }), 400);
}));

// 可能紧急: the member's word on whether it is an emergency (bot/handoff/urgency.py).
$('urgent-confirm').addEventListener('click', () => act($('urgent-confirm'), '/urgent', undefined, () => {
  showOk('已确认是紧急情况：书记和网格在岗同事都收到了提醒。');
  urgentHandled(state.currentId);
}));
$('urgent-deny').addEventListener('click', () => act($('urgent-deny'), '/not-urgent', undefined, () => {
  showOk('好的，按普通求助办，已派给一位同事。');
  urgentHandled(state.currentId);
}));

$('reply-form').addEventListener('submit', (e) => {
  e.preventDefault();
  const text = $('reply-text').value.trim();
  if (!text) { $('reply-text').focus(); return; }
  const all = !$('reply-all-row').hidden && $('reply-all').checked;
  act($('reply-submit'), '/reply', { text, all }, () => { $('reply-text').value = ''; });
});

// ---------- resolve, transfer, hand back, merge: one box open at a time ----------
const PANELS = ['resolve', 'transfer', 'handback', 'merge'];

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

// A choice in a picking box: a big radio row with a head line and details under it.
function pickOption(name, value, head, details) {
  const label = el('label', 'member-option');
  const radio = el('input');
  radio.type = 'radio';
  radio.name = name;
  radio.value = String(value);
  const body = el('span', 'member-body');
  body.append(head, ...details.filter(Boolean).map((text) => el('span', 'member-meta', text)));
  label.append(radio, body);
  return label;
}

// Open a picking panel and fill its box from the server, or say why there is nothing to pick.
async function openPicker(name, box, path, key, option, none) {
  const t = state.current;
  if (!t) return;
  openPanel(name);
  box.replaceChildren(el('p', 'list-note', '正在加载…'));
  try {
    const items = (await api('GET', '/api/tickets/' + t.id + path))[key] || [];
    if (state.currentId !== t.id) return;
    box.replaceChildren(...items.map((item) => option(item, t)));
    if (!items.length) box.append(el('p', 'list-note', none));
  } catch (err) {
    box.replaceChildren(el('p', 'form-error', err.message));
  }
}

// ---------- transfer to a colleague ----------
const dutyText = (m) => (m.paused ? '暂停接单' : (m.on_duty ? '在岗' : '不在岗'));

// The server lists only colleagues who take tickets, on duty and of the ticket's grid first.
function memberOption(m, t) {
  const head = el('span', 'member-head');
  head.append(el('span', 'member-name', m.name + (m.role === 'secretary' ? '（书记）' : '')),
    tag(dutyText(m), m.on_duty ? 'duty-on' : 'duty-off'),
    tag(m.open_tickets ? '手上' + m.open_tickets + '件' : '手上没有事', 'tag-plain'));
  if (t.grid && (m.grids || []).includes(t.grid)) head.append(tag('本网格', 'tag-plain'));
  const details = [(m.grids || []).join('、') || '没有网格', (m.skills || []).join('、') || ''];
  const option = pickOption('transfer-to', m.id, head,
    [details.filter(Boolean).join(' · '), m.hours ? '值班：' + m.hours : '']);
  option.classList.toggle('is-off', !m.on_duty);
  return option;
}

$('transfer-open').addEventListener('click', () => openPicker('transfer', $('transfer-members'),
  '/transfer-targets', 'members', memberOption, '没有可以转交的同事。'));

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

// ---------- merge: the same thing a neighbour already reported ----------
// Open tickets of the same community, the same grid and category first (server's order).
function mergeOption(other, t) {
  const head = el('span', 'member-head');
  head.append(el('span', 'member-name', '工单 #' + other.id), tag(other.category_label, 'cat-' + other.category));
  if (other.grid === t.grid && other.category === t.category) head.append(tag('同网格同类', 'tag-plain'));
  const who = [(other.resident || {}).name, other.grid, timeAgo(other.created_at)].filter(Boolean).join(' · ');
  return pickOption('merge-into', other.id, head, [excerpt(other.text, 40), who, assigneeText(other)]);
}

$('merge-open').addEventListener('click', () => openPicker('merge', $('merge-tickets'),
  '/merge-candidates', 'tickets', mergeOption, '没有可以合并的工单：只能并进您在办的、还没办完的工单。'));

$('merge-form').addEventListener('submit', (e) => {
  e.preventDefault();
  const chosen = $('merge-form').querySelector('input[name="merge-into"]:checked');
  if (!chosen) { formError('merge', '请先选一张工单。'); return; }
  const into = Number(chosen.value);
  act($('merge-submit'), '/merge', { into }, () => {
    closePanels();
    showOk('已并入工单 #' + into + '，由同一位同事一起办。');
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

export { PANELS, closePanel };
