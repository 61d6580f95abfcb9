// Console: the urgent banner with the flashing tab title, and the "please call" banner.

import { $, UNCLAIMED, excerpt, state, views } from './console-core.js';
import { digits } from './console-ticket.js';

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

// A reply the resident's WeChat would not take: the member has to call instead.
function showCallNotice(frame) {
  $('call-text').textContent = '工单 #' + frame.ticket.id + '：' + frame.notice;
  const link = $('call-link');
  link.hidden = !frame.phone;
  if (frame.phone) link.href = 'tel:' + digits(frame.phone);
  $('call-banner').hidden = false;
}
$('call-close').addEventListener('click', () => { $('call-banner').hidden = true; });

export { announceUrgent, clearUrgent, setTitle, showCallNotice };
