// Webchat: who the resident is (an HttpOnly cookie the server sets) and the name screen.

import { $, KEY_NAME, call, showBanner, showView, state } from './webchat-core.js';
import { closeSocket } from './webchat-chat.js';
import { joinInvite } from './webchat-list.js';
import { route } from './webchat.js';

// ---------- identity (an HttpOnly cookie the server sets) ----------

function setName(name) {
  state.name = name;
  localStorage.setItem(KEY_NAME, name);
}

async function loadSession() {
  let result;
  try {
    result = await call('GET', '/webchat/api/session');
  } catch (err) {
    result = null;
  }
  if (result && result.status === 200 && result.data.name) {
    setName(result.data.name);
    afterSession();
  } else if (result && result.status === 401) {
    state.name = null;
    route();  // asks the name
  } else {
    showBanner('网络不太好，正在重新连接…', 'info');
    setTimeout(loadSession, 3000);
  }
}

// Known to the server: join the poster's room if the page came with one, else go on.
function afterSession() {
  if (state.invite !== null) joinInvite();
  else route();
}

function showNameError(text) {
  const box = $('name-error');
  box.textContent = text || '';
  box.hidden = !text;
  $('name-input').setAttribute('aria-invalid', text ? 'true' : 'false');
}

function askName() {
  closeSocket();
  showNameError('');
  $('name-input').value = state.name || localStorage.getItem(KEY_NAME) || '';
  $('name-cancel').hidden = !state.name;
  showView('name');
  $('name-input').focus();
}

$('name-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  // Count characters, not UTF-16 units, so an emoji is never cut in half.
  const name = Array.from($('name-input').value.trim()).slice(0, 20).join('');
  if (!name) {
    showNameError('请先写上您的称呼，比如：张阿姨');
    $('name-input').focus();
    return;
  }
  showNameError('');
  const submit = $('name-form').querySelector('[type="submit"]');
  submit.disabled = true;
  let result;
  try {
    result = await call('POST', '/webchat/api/session', { name });
  } catch (err) {
    showNameError('网络不太好，请稍后再试。');
    return;
  } finally {
    submit.disabled = false;
  }
  if (result.status !== 200) {  // e.g. a name only staff may use, or too many tries
    showNameError(result.data.message || '没能保存，请稍后再试。');
    $('name-input').focus();
    return;
  }
  setName(result.data.name || name);
  afterSession();
});
$('name-input').addEventListener('input', () => showNameError(''));
$('name-cancel').addEventListener('click', route);
$('change-name').addEventListener('click', (e) => { e.preventDefault(); askName(); });

export { askName, loadSession };
