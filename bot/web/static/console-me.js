// Console: the member's own settings. For now one choice: whether a resident gets the
// member's phone number when the member takes their request (PUT /api/me/phone).

import { $, showError, showOk, state } from './console-core.js';
import { api } from './console-session.js';

function renderMyPhone() {
  const me = state.me;
  $('my-phone-box').hidden = !(me && me.holds_tickets);
  if (!me) return;
  $('my-phone').value = me.phone || '';
  $('my-phone-share').checked = !!me.share_phone;
  showPhoneError('');
}

function showPhoneError(text) {
  $('my-phone-error').textContent = text;
  $('my-phone-error').hidden = !text;
  $('my-phone').setAttribute('aria-invalid', text ? 'true' : 'false');
}

$('my-phone-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  const phone = $('my-phone').value.trim();
  const share = $('my-phone-share').checked;
  if (share && !phone) {
    showPhoneError('要告诉居民，先填上您的手机号。');
    $('my-phone').focus();
    return;
  }
  $('my-phone-save').disabled = true;
  try {
    state.me = await api('PUT', '/api/me/phone', { phone, share });
    renderMyPhone();
    showError('');
    showOk(share ? '好的，接单时会把您的电话告诉居民。' : '好的，不会把您的电话告诉居民。');
  } catch (err) {
    showPhoneError(err.status === 400 ? '这个号码不对，请写手机号或带区号的座机号。' : err.message);
  } finally {
    $('my-phone-save').disabled = false;
  }
});

export { renderMyPhone };
