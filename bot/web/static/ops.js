// Operators' pages: the review queue (/ops/review) and the models (/ops/models). See docs/api.md.
// Plain ES modules, no build step: this one talks to the server, logs in and starts the page.
// Top-level code in a module may use only ops-core.js (it imports nothing, so it always runs
// first) and its own names; anything else only inside functions.

import { $, KEY_TOKEN, PAGE, showError, showView, state } from './ops-core.js';
import { closeReport, loadModels } from './ops-models.js';
import { loadReview } from './ops-review.js';

// ---------- API ----------
function request(method, path, body) {
  return window.Page.send(method, path, body, state.token, (token) => {
    if (token && token === state.token) logout(true);  // not when we logged out meanwhile
  });
}

// A refusal as an Error: `message` for people, `detail` and `data` (e.g. the gate's reasons).
async function failure(resp) {
  const data = await resp.json().catch(() => null);
  const error = new Error((data && data.message) || '操作没成功，请稍后再试。');
  error.status = resp.status;
  error.detail = (data && data.detail) || '';
  error.data = data;
  return error;
}

async function api(method, path, body) {
  const resp = await request(method, path, body);
  if (!resp.ok) throw await failure(resp);
  return resp.json();
}

// A chart needs the Bearer header, so an <img src> cannot fetch it itself.
async function imageUrl(path) {
  const resp = await request('GET', path);
  if (!resp.ok) throw await failure(resp);
  return URL.createObjectURL(await resp.blob());
}

// The server's texts for 403/404/409 speak of tickets; say what went wrong here instead.
function showFailure(err, ownTexts) {
  showError((ownTexts && ownTexts[err.status]) || err.message, err.detail);
}

// ---------- login ----------
window.Page.bindLogin(api, KEY_TOKEN, (data) => {
  state.token = data.token;
  enter(data.member);
}, (err) => showFailure(err));

// `expired`: the server no longer takes the token (it ran out, or was logged out elsewhere).
function logout(expired) {
  window.Page.showLoginNote(expired ? '登录已过期，请重新登录。' : '');
  state.token = null;
  localStorage.removeItem(KEY_TOKEN);
  clearTimeout(state.pollTimer);
  clearInterval(state.tickTimer);
  closeReport();
  showView('login');
}
async function logoutPressed(pressed) {
  showError('');
  pressed.disabled = true;
  await window.Page.serverLogout(state.token);
  pressed.disabled = false;
  logout();
}
$('logout').addEventListener('click', () => logoutPressed($('logout')));
$('denied-logout').addEventListener('click', () => logoutPressed($('denied-logout')));

function enter(member) {
  // The roles with the review queue and the models (bot/handoff/roles.py).
  if (!member || !['operator', 'admin'].includes(member.role)) { showView('denied'); return; }
  $('me-name').textContent = member.name;
  showView('ops');
  if (PAGE === 'models') loadModels(); else loadReview();
}

async function start() {
  document.title = (PAGE === 'models' ? '模型' : '待复核') + ' · 模型运营';
  $('review-page').hidden = PAGE !== 'review';
  $('models-page').hidden = PAGE !== 'models';
  const current = $(PAGE === 'models' ? 'nav-models' : 'nav-review');
  current.classList.add('is-active');
  current.setAttribute('aria-current', 'page');
  if (!state.token) { showView('login'); return; }
  try {
    enter(await api('GET', '/api/me'));
  } catch (err) {
    if (state.token) showFailure(err);  // after a 401 we are already back at login
  }
}

start();

export { api, imageUrl, showFailure };
