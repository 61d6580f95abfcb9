// Console: what makes a member notice an urgent request, also with the phone in a pocket:
// a red banner, a flashing tab title, an alarm that rings until the request is claimed or the
// member says stop, and a system notification (through the service worker, /console/sw.js,
// so that it shows while the tab is in the background). And the "please call" banner.

import { $, UNCLAIMED, excerpt, showOk, state, views } from './console-core.js';
import { digits } from './console-ticket.js';

const WORKER_URL = '/console/sw.js';
const WORKER_SCOPE = '/console/';
// One ring (six alternating beeps, 1.8 s), then a pause, again and again.
const RING_EVERY_MS = 4000;

// ---------- the alarm sound ----------
// Made with the Web Audio API: there is no sound file to fetch. A browser lets a page make a
// sound only after a tap on it, so the audio starts on the first tap anywhere in the page, or
// on the "开启紧急提醒" button.
const AudioCtx = window.AudioContext || window.webkitAudioContext;
const alarm = { ctx: null, timer: null, ringing: false };

function unlockAudio() {
  if (!AudioCtx) return;
  if (!alarm.ctx) alarm.ctx = new AudioCtx();
  if (alarm.ctx.state === 'suspended') alarm.ctx.resume().then(showAlertsBox, () => {});
  else showAlertsBox();
}

// Without the Web Audio API there is nothing to unlock: the banner and vibration still tell.
const audioReady = () => !AudioCtx || (!!alarm.ctx && alarm.ctx.state === 'running');

function beeps(count, loud) {
  if (!audioReady()) return;
  const ctx = alarm.ctx;
  const start = ctx.currentTime + 0.05;
  for (let i = 0; i < count; i++) {
    const at = start + i * 0.3;
    const tone = ctx.createOscillator();
    const volume = ctx.createGain();
    tone.type = 'square';
    tone.frequency.value = i % 2 ? 660 : 880;
    volume.gain.setValueAtTime(0.0001, at);
    volume.gain.exponentialRampToValueAtTime(loud ? 0.6 : 0.2, at + 0.02);
    volume.gain.exponentialRampToValueAtTime(0.0001, at + 0.26);
    tone.connect(volume).connect(ctx.destination);
    tone.start(at);
    tone.stop(at + 0.28);
  }
}

function ring() {
  beeps(6, true);
  try { if (navigator.vibrate) navigator.vibrate([400, 200, 400, 200, 400]); } catch (err) { /* not on this device */ }
}

function startRinging() {
  $('urgent-banner').dataset.ringing = '1';
  $('urgent-mute').hidden = false;
  if (alarm.ringing) return;
  alarm.ringing = true;
  ring();
  alarm.timer = setInterval(ring, RING_EVERY_MS);
}

function stopRinging() {
  alarm.ringing = false;
  clearInterval(alarm.timer);
  alarm.timer = null;
  $('urgent-banner').dataset.ringing = '0';
  $('urgent-mute').hidden = true;
}

// ---------- system notifications ----------
const notificationsSupported = () =>
  'Notification' in window && 'serviceWorker' in navigator && window.isSecureContext;

function registerWorker() {
  if (!notificationsSupported()) return;
  navigator.serviceWorker.register(WORKER_URL, { scope: WORKER_SCOPE }).catch(() => { /* no notifications, the rest works */ });
  // A tap on a notification opens its ticket in this page.
  navigator.serviceWorker.addEventListener('message', (event) => {
    const data = event.data || {};
    if (data.type === 'open-ticket' && Number.isInteger(data.id)) location.hash = '#t=' + data.id;
  });
}

async function notify(t, title, body) {
  if (!notificationsSupported() || Notification.permission !== 'granted') return;
  try {
    const registration = await navigator.serviceWorker.ready;
    await registration.showNotification(title, {
      body,
      tag: 'urgent-' + t.id,
      renotify: true,
      requireInteraction: true,
      vibrate: [400, 200, 400],
      data: { ticketId: t.id },
    });
  } catch (err) { /* the banner and the sound still tell */ }
}

async function closeNotification(ticketId) {
  if (!notificationsSupported()) return;
  try {
    const registration = await navigator.serviceWorker.getRegistration(WORKER_SCOPE);
    if (!registration) return;
    for (const n of await registration.getNotifications({ tag: 'urgent-' + ticketId })) n.close();
  } catch (err) { /* nothing to close */ }
}

// ---------- "开启紧急提醒" ----------
const ENABLED_TEXT = {
  granted: '紧急提醒已开启：有紧急求助时会响铃并弹出通知。',
  unsupported: '响铃已开启。这个网址弹不出系统通知，请让页面开着。',
  denied: '响铃已开启。浏览器没让弹出通知：请在浏览器设置里允许本网站的通知。',
};
// Asked for with a tap, never on page load: a browser shows its permission question only
// then, and a member should know why they are asked.
function showAlertsBox() {
  const asking = notificationsSupported() && Notification.permission === 'default';
  $('alerts-box').hidden = !state.token || (!asking && audioReady());
}

async function enableAlerts() {
  unlockAudio();
  const current = notificationsSupported() ? Notification.permission : 'unsupported';
  // Asked while the tap still counts; the browser's question then waits for the member.
  const asked = current === 'default' ? Notification.requestPermission().catch(() => 'default') : current;
  if (alarm.ctx) await alarm.ctx.resume().catch(() => {});
  beeps(2, false);  // what the member will hear, softly
  const permission = await asked;
  showOk(ENABLED_TEXT[permission] || ENABLED_TEXT.denied);
  showAlertsBox();
}
$('alerts-enable').addEventListener('click', enableAlerts);
// Not on the box itself: with notifications allowed already, unlocking hides the box under
// the finger, and the button's click (the soft beeps, the word that it is on) never comes.
function unlockOnAnyTap(event) {
  if (!$('alerts-box').contains(event.target)) unlockAudio();
}
document.addEventListener('pointerdown', unlockOnAnyTap, { passive: true });
document.addEventListener('keydown', unlockOnAnyTap);
registerWorker();

// ---------- urgent requests ----------
function setTitle(text) {
  state.titleText = text;
  if (!state.flashTimer) document.title = text;
}

function urgentText(t) {
  const resident = t.resident || {};
  const where = [t.grid, resident.name].filter(Boolean).join(' · ');
  return where + '：' + excerpt(t.text, 30);
}

// A new 紧急 request: the red banner with a button to open it, the flashing title, the alarm
// and a notification. `again`: a ticket.alarm (the request went up the chain, was confirmed
// urgent, or is still unclaimed and everyone is called again), so it rings even if the member
// stopped it before; also for 可能紧急, which only the members asked first are sent.
function announceUrgent(t, again) {
  if (!UNCLAIMED.includes(t.status)) return;
  if (state.alertedIds.has(t.id) && !again) return;
  state.alertedIds.add(t.id);
  if (onScreen(t.id)) return;  // already looking at it
  const heading = t.possibly_urgent ? '可能紧急，请看一眼！' : (again ? '紧急求助，还没人认领！' : '紧急求助！');
  showUrgent(t, heading);
  startRinging();
  notify(t, heading, urgentText(t));
}

const onScreen = (id) => state.currentId === id && !views.ticket.hidden;

function showUrgent(t, heading) {
  state.urgent = t;
  $('urgent-text').textContent = heading + urgentText(t);
  $('urgent-open').href = '#t=' + t.id;
  $('urgent-banner').classList.toggle('is-unsure', !!t.possibly_urgent);
  $('urgent-banner').hidden = false;
  if (state.flashTimer) return;
  state.flashTimer = setInterval(() => {
    state.flashOn = !state.flashOn;
    document.title = state.flashOn ? '【紧急求助】' + state.titleText : state.titleText;
  }, 1000);
}

// The banner's request was claimed or opened. An older one this member was alerted to may
// still wait for anyone: the banner turns to it, quietly (it rang when it came), so that it is
// not forgotten once the newer one is taken.
function urgentHandled(id) {
  if (!state.urgent || state.urgent.id !== id) return;
  closeNotification(id);
  stopRinging();
  const waiting = state.openTickets
    .filter((t) => t.id !== id && state.alertedIds.has(t.id) && UNCLAIMED.includes(t.status))
    .filter((t) => !onScreen(t.id))
    .sort((a, b) => a.id - b.id);
  if (!waiting.length) {
    clearUrgent();
    return;
  }
  const oldest = waiting[0];
  showUrgent(oldest, oldest.possibly_urgent ? '可能紧急，请看一眼！' : '紧急求助，还没人认领！');
}

// The member said stop (and has seen the banner), or logged out.
function clearUrgent() {
  if (state.urgent) closeNotification(state.urgent.id);
  state.urgent = null;
  stopRinging();
  clearInterval(state.flashTimer);
  state.flashTimer = null;
  $('urgent-banner').hidden = true;
  document.title = state.titleText;
}
$('urgent-close').addEventListener('click', clearUrgent);
$('urgent-mute').addEventListener('click', stopRinging);

// A reply the resident's WeChat would not take: the member has to call instead.
function showCallNotice(frame) {
  $('call-text').textContent = '工单 #' + frame.ticket.id + '：' + frame.notice;
  const link = $('call-link');
  link.hidden = !frame.phone;
  if (frame.phone) link.href = 'tel:' + digits(frame.phone);
  $('call-banner').hidden = false;
}
$('call-close').addEventListener('click', () => { $('call-banner').hidden = true; });

export { announceUrgent, clearUrgent, setTitle, showAlertsBox, showCallNotice, urgentHandled };
