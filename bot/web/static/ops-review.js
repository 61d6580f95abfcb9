// Operators' pages: the review queue (/ops/review).

import {
  $, INTENT_LABELS, LABELS, REQUEST_INTENTS, UNDO_MS, button, el, formatTime, intentName, showError, showOk,
  state, tag
} from './ops-core.js';
import { api, showFailure } from './ops.js';

// ---------- review queue ----------
async function loadReview() {
  $('review-groups').replaceChildren(el('p', 'list-note', '正在加载…'));
  try {
    renderReview(await api('GET', '/api/ops/review'));
  } catch (err) {
    $('review-groups').replaceChildren();
    if (state.token) showFailure(err);
  }
}

function renderReview(data) {
  $('review-intro').textContent = '模型把握不到 ' + Math.round(data.below * 100) +
    '% 的消息，和党员改过分类的消息（模型很有把握却被改了的排在最前面）。看一眼，点一下就好，点错了可以撤销。';
  const box = $('review-groups');
  box.replaceChildren();
  for (const group of data.groups) box.append(reviewGroup(group));
  $('review-empty').hidden = data.groups.length > 0;
}

function groupTitle(group) {
  const predicted = '模型认为：' + intentName(group.predicted);
  return group.corrected ? predicted + ' → 党员更正为：' + intentName(group.corrected) : predicted + '（把握不大）';
}

function reviewGroup(group) {
  const section = el('section', 'review-group');
  const title = el('h2', 'group-title', groupTitle(group));
  const count = el('span', 'group-count');
  title.append(' ', count);
  const list = el('ul', 'review-items');
  for (const item of group.items) list.append(reviewItem(item));
  section.append(title, list);
  updateCount(section);
  return section;
}

function updateCount(section) {
  section.querySelector('.group-count').textContent = section.querySelectorAll('.review-item').length + '条';
}

// The label "采纳" gives the item; null when there is nothing sensible to accept.
function acceptLabel(item) {
  const label = item.corrected_intent || item.intent;
  return LABELS.includes(label) ? label : null;
}

function reviewItem(item) {
  const node = el('li', 'review-item' + (item.confident_miss ? ' is-confident-miss' : ''));
  node.id = 'review-item-' + item.id;
  if (item.confident_miss) {
    node.append(tag('模型很有把握，党员却改了：请先看', 'tag-confident-miss'));
  }
  const meta = el('p', 'review-meta');
  meta.append(el('span', '', '把握 ' + Math.round(item.confidence * 100) + '%'),
    el('span', '', formatTime(item.created_at)));
  if (item.ticket_id) meta.append(el('span', '', '工单 #' + item.ticket_id));
  node.append(el('blockquote', 'review-text', item.text), meta);

  const accepted = acceptLabel(item);
  const actions = el('div', 'review-actions');
  if (accepted) {
    actions.append(button('采纳：' + intentName(accepted), 'btn-primary btn-accept',
      (b) => decide(item, node, b, { action: 'accept' })));
  }
  const relabel = el('div', 'relabel-row');
  relabel.append(el('span', 'relabel-label', accepted ? '其实是：' : '应该是：'));
  for (const intent of REQUEST_INTENTS) {
    if (intent === accepted) continue;
    relabel.append(button(INTENT_LABELS[intent], 'btn-plain',
      (b) => decide(item, node, b, { action: 'relabel', intent })));
  }
  const rest = el('div', 'btn-row');
  rest.append(button('不是求助', 'btn-plain', (b) => decide(item, node, b, { action: 'not_request' })),
    button('跳过', 'btn-plain btn-skip', (b) => decide(item, node, b, { action: 'skip' })));
  actions.append(relabel, rest);
  node.append(actions);
  return node;
}

async function decide(item, node, pressed, body) {
  const buttons = node.querySelectorAll('button');
  for (const b of buttons) b.disabled = true;
  pressed.textContent += '…';
  try {
    const decided = await api('POST', '/api/ops/review/' + item.id, body);
    showError('');
    removeItem(node);
    offerUndo(decided, body.action);
  } catch (err) {
    if (!state.token) return;
    showFailure(err, { 404: '这条消息已经不在了，可能别人处理过。' });
    for (const b of buttons) b.disabled = false;
    pressed.textContent = pressed.textContent.replace(/…$/, '');
  }
}

// What was just decided, in words, with a way back for a while.
function decidedText(decided, action) {
  if (action === 'skip') return '已跳过';
  if (action === 'not_request') return '已标为 不是求助';
  return (action === 'relabel' ? '已改为 ' : '已采纳：') + intentName(decided.label);
}

function offerUndo(decided, action) {
  clearTimeout(state.undoTimer);
  state.undoable = decided.id;
  $('review-toast-text').textContent = decidedText(decided, action) + ' · ';
  $('review-undo').disabled = false;
  $('review-toast').hidden = false;
  state.undoTimer = setTimeout(hideUndo, UNDO_MS);
}

function hideUndo() {
  clearTimeout(state.undoTimer);
  state.undoable = null;
  $('review-toast').hidden = true;
}

$('review-undo').addEventListener('click', async () => {
  const id = state.undoable;
  if (id === null) return;
  $('review-undo').disabled = true;
  try {
    await api('POST', '/api/ops/review/' + id + '/undo');
    hideUndo();
    showError('');
    showOk('已撤销，这条消息回到了待复核里。');
    await loadReview();
    const back = $('review-item-' + id);
    if (back) {
      back.scrollIntoView({ block: 'center' });
      back.querySelector('button').focus({ preventScroll: true });
    }
  } catch (err) {
    hideUndo();
    if (state.token) showFailure(err, { 409: '来不及撤销了：这条已经加进了训练数据。', 404: '这条消息已经不在了。' });
  }
});

// Drop a decided item; the keyboard focus goes on to the next one.
function removeItem(node) {
  const section = node.closest('.review-group');
  const following = section.nextElementSibling;
  const next = node.nextElementSibling || (following && following.querySelector('.review-item'));
  node.remove();
  if (section.querySelector('.review-item')) updateCount(section);
  else section.remove();
  $('review-empty').hidden = !!$('review-groups').querySelector('.review-group');
  if (next) next.querySelector('button').focus({ preventScroll: true });
}

export { loadReview };
