// Console: the "群里可能有人需要帮忙" cards above the ticket list.

import { $, el, formatTime, showError, showOk, state } from './console-core.js';
import { scheduleRefresh } from './console-list.js';
import { api } from './console-session.js';

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

export { onPossibleFrame, renderPossible };
