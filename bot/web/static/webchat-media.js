// Webchat: hold-to-talk voice and photos. A clip goes up as it was recorded, a photo as it was
// taken (made smaller first when it is big); a person listens or looks, as with a WeChat voice
// or image message: it joins the resident's open request or starts one (docs/api.md).

import { $, el, messageId, showBanner, state, views } from './webchat-core.js';
import { addLocalRow, pendingRow, shownText } from './webchat-chat.js';

const MAX_SECONDS = 60;
const MIN_MS = 800;
// What MediaRecorder makes, by browser: WebM (Chrome, Edge), Ogg (Firefox), MP4 (Safari).
const RECORDING_TYPES = ['audio/webm;codecs=opus', 'audio/ogg;codecs=opus', 'audio/mp4'];
// Sent as they are when small and in a format the server keeps; anything else is redrawn as a
// JPEG of at most LONG_SIDE pixels (a phone's photo of several MB takes long on a slow line).
const KEPT_PHOTO_TYPES = ['image/jpeg', 'image/png', 'image/webp'];
const BIG_PHOTO = 1.5 * 1024 * 1024;
const LONG_SIDE = 1600;
// Refusals that sending again cannot fix (too large, not a photo or clip).
const FINAL = [400, 413, 415];

const canRecord = !!(window.MediaRecorder && navigator.mediaDevices && navigator.mediaDevices.getUserMedia);
// The button is held (`pressed`), and the recording under way (`take`: its recorder, stream,
// start and whether to drop it); a take finishes after the next may have begun.
const rec = { pressed: false, take: null, downY: 0, timer: null };

function tell(text, kind) {
  showBanner(text, kind);
  state.bannerTimer = setTimeout(() => showBanner(''), 6000);
}

// ---------- voice: "按住 说话" instead of the text box, as in WeChat ----------

function setVoiceMode(on) {
  const toggle = $('voice-toggle');
  toggle.setAttribute('aria-pressed', on ? 'true' : 'false');
  toggle.setAttribute('aria-label', on ? '改成打字' : '改成说话');
  toggle.textContent = on ? '打字' : '语音';
  $('text-input').hidden = on;
  $('send-button').hidden = on;
  $('voice-hold').hidden = !on;
}

function showOverlay(text) {
  $('voice-overlay').textContent = text;
  $('voice-overlay').hidden = !text;
  $('voice-hold').classList.toggle('is-recording', !!text);
}

function stopTracks(stream) {
  if (stream) for (const track of stream.getTracks()) track.stop();
}

async function press() {
  if (rec.pressed) return;
  rec.pressed = true;
  showOverlay('正在打开话筒…');
  let stream;
  try {
    stream = await navigator.mediaDevices.getUserMedia({ audio: true });
  } catch (err) {
    rec.pressed = false;
    showOverlay('');
    tell('没能打开话筒。请在浏览器里允许用话筒，或者打字、发照片。', 'error');
    return;
  }
  if (!rec.pressed) {  // let go while the browser was asking for the microphone
    stopTracks(stream);
    showOverlay('');
    tell('话筒可以用了。请按住“按住 说话”，说完再松开。', 'info');
    return;
  }
  const type = RECORDING_TYPES.find((t) => MediaRecorder.isTypeSupported(t));
  const recorder = new MediaRecorder(stream, type ? { mimeType: type } : undefined);
  const take = { recorder, stream, chunks: [], startedAt: Date.now(), cancel: false };
  recorder.addEventListener('dataavailable', (e) => { if (e.data.size) take.chunks.push(e.data); });
  recorder.addEventListener('stop', () => finish(take));
  rec.take = take;
  recorder.start();
  tick();
  rec.timer = setInterval(tick, 250);
}

function tick() {
  const take = rec.take;
  const seconds = Math.floor((Date.now() - take.startedAt) / 1000);
  const what = take.cancel ? '松开手指，就不发了' : '正在录音，松开就发出去';
  showOverlay(what + '（' + seconds + '秒）');
  if (seconds >= MAX_SECONDS) release(false);
}

function release(cancel) {
  if (!rec.pressed) return;
  rec.pressed = false;
  clearInterval(rec.timer);
  const take = rec.take;
  rec.take = null;
  if (!take) return;  // still asking for the microphone: press() sees it was let go
  take.cancel = take.cancel || cancel;
  take.recorder.stop();  // then finish(take)
}

function finish(take) {
  stopTracks(take.stream);
  if (!rec.take) showOverlay('');
  if (take.cancel) return;
  if (Date.now() - take.startedAt < MIN_MS) {
    tell('说话时间太短了，请按住多说一会儿。', 'info');
    return;
  }
  upload(new Blob(take.chunks, { type: take.recorder.mimeType || 'audio/webm' }), 'voice');
}

const hold = $('voice-hold');
hold.addEventListener('pointerdown', (e) => {
  e.preventDefault();
  hold.setPointerCapture(e.pointerId);
  rec.downY = e.clientY;
  press();
});
// Sliding the finger up, as in WeChat, means "don't send".
hold.addEventListener('pointermove', (e) => { if (rec.take) rec.take.cancel = rec.downY - e.clientY > 80; });
hold.addEventListener('pointerup', () => release(false));
hold.addEventListener('pointercancel', () => release(true));
hold.addEventListener('contextmenu', (e) => e.preventDefault());
// From a keyboard: hold the space bar (or Enter) down while speaking.
hold.addEventListener('keydown', (e) => {
  if ((e.key === ' ' || e.key === 'Enter') && !e.repeat) { e.preventDefault(); press(); }
});
hold.addEventListener('keyup', (e) => {
  if (e.key === ' ' || e.key === 'Enter') { e.preventDefault(); release(false); }
});
document.addEventListener('visibilitychange', () => { if (document.hidden) release(true); });

// Leaving the chat while speaking: nothing is sent.
function cancelRecording() {
  release(true);
}

$('voice-toggle').hidden = !canRecord;
$('voice-toggle').addEventListener('click', () => {
  const on = $('voice-hold').hidden;
  setVoiceMode(on);
  (on ? $('voice-hold') : $('text-input')).focus();
});

// ---------- photos ----------

async function smaller(file) {
  if (KEPT_PHOTO_TYPES.includes(file.type) && file.size <= BIG_PHOTO) return file;
  try {
    const bitmap = await createImageBitmap(file, { imageOrientation: 'from-image' });
    const scale = Math.min(1, LONG_SIDE / Math.max(bitmap.width, bitmap.height));
    const canvas = document.createElement('canvas');
    canvas.width = Math.round(bitmap.width * scale);
    canvas.height = Math.round(bitmap.height * scale);
    canvas.getContext('2d').drawImage(bitmap, 0, 0, canvas.width, canvas.height);
    const jpeg = await new Promise((resolve) => canvas.toBlob(resolve, 'image/jpeg', 0.85));
    return jpeg || file;
  } catch (err) {
    return file;  // the browser cannot redraw it: sent as it is, the server decides
  }
}

$('photo-input').addEventListener('change', async () => {
  const file = $('photo-input').files[0];
  $('photo-input').value = '';
  if (file) upload(await smaller(file), 'image');
});

// ---------- upload ----------

function upload(blob, kind) {
  if (!state.chat) return;  // left the chat meanwhile
  const item = { id: messageId(), chat: state.chat.id, blob, el: pendingRow(shownText({ kind, text: '' })) };
  addLocalRow(item.el);
  send(item);
}

async function send(item) {
  const params = new URLSearchParams({ chat: item.chat, id: item.id });
  let resp;
  try {
    resp = await fetch('/webchat/api/media?' + params, {
      method: 'POST', body: item.blob, credentials: 'same-origin',
      headers: { 'Content-Type': item.blob.type || 'application/octet-stream' },
    });
  } catch (err) {
    failed(item, '网络不好，没发出去。', true);
    return;
  }
  const data = (await resp.json().catch(() => null)) || {};
  if (!resp.ok) {
    failed(item, data.message || '没发出去。', !FINAL.includes(resp.status));
    return;
  }
  // Stored: the chat shows it back (perhaps already has); until then this row stands for it.
  const shown = !data.message_id || $('messages').querySelector('.msg[data-id="' + data.message_id + '"]');
  if (shown || !state.chat || state.chat.id !== item.chat || views.chat.hidden) {
    item.el.remove();
    return;
  }
  item.el.classList.remove('msg-pending');
  item.el.querySelector('.msg-time').remove();
  state.sentMedia.push({ messageId: data.message_id, el: item.el });
}

function failed(item, text, again) {
  item.el.classList.replace('msg-pending', 'msg-failed');
  const marker = item.el.querySelector('.msg-time, .msg-retry, .msg-undelivered');
  if (!again) {
    marker.replaceWith(el('div', 'msg-undelivered', text));
    return;
  }
  const retry = el('button', 'msg-retry', text + '点这里重发');
  retry.type = 'button';
  retry.addEventListener('click', () => {
    // Same id: if the server did keep it after all, sending again stores nothing twice.
    item.el.classList.replace('msg-failed', 'msg-pending');
    retry.replaceWith(el('div', 'msg-time', '发送中…'));
    send(item);
  });
  marker.replaceWith(retry);
}

export { cancelRecording };
