// What the console and the operators' pages share: DOM helpers, the banners, Beijing time,
// and the login form. Loaded before each page's own script.
'use strict';

window.Page = (function () {
  const $ = (id) => document.getElementById(id);

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = text;
    return node;
  }

  // The red banner; `detail` is the server's technical reason, shown small where the page has room.
  function showError(text, detail) {
    $('error-text').textContent = text || '';
    const small = $('error-detail');
    if (small) {
      small.textContent = detail || '';
      small.hidden = !detail;
    }
    $('error-banner').hidden = !text;
  }

  // A short "done" line that goes away by itself.
  let okTimer = null;
  function showOk(text) {
    clearTimeout(okTimer);
    $('ok-banner').textContent = text;
    $('ok-banner').hidden = !text;
    if (text) okTimer = setTimeout(() => { $('ok-banner').hidden = true; }, 5000);
  }

  // The banners (done, error, urgent, connection) stack in one strip pinned to the top, and the
  // top bar is pinned right below it, so a banner never covers the bar's back button. The strip's
  // height changes as banners come and go.
  function pinBelowBanners() {
    const strip = document.querySelector('.banners');
    if (!strip) return;
    new ResizeObserver(() => {
      document.documentElement.style.setProperty('--banners-height', strip.offsetHeight + 'px');
    }).observe(strip);
  }
  pinBelowBanners();

  const timeFmt = new Intl.DateTimeFormat('zh-CN', {
    timeZone: 'Asia/Shanghai', month: 'numeric', day: 'numeric',
    hour: '2-digit', minute: '2-digit', hourCycle: 'h23',
  });
  const formatTime = (iso) => (iso && !isNaN(new Date(iso)) ? timeFmt.format(new Date(iso)) : '');

  // A quiet line above the login form, e.g. why the member has to log in again.
  function showLoginNote(text) {
    $('login-note').textContent = text || '';
    $('login-note').hidden = !text;
  }

  // Tell the server to forget the token (204). Never blocks logging out for long: the caller
  // forgets the token whatever happens here.
  async function serverLogout(token) {
    if (!token) return;
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(), 5000);
    try {
      await fetch('/api/logout', { method: 'POST', headers: { Authorization: 'Bearer ' + token }, signal: abort.signal });
    } catch (err) {
      // offline or slow: the token runs out by itself
    } finally {
      clearTimeout(timer);
    }
  }

  // A call to the server with the login token. A 401 on anything but the login itself means
  // the login has ended: `onExpired` hears of it with the token the call was made with.
  async function send(method, path, body, token, onExpired) {
    const headers = { Accept: 'application/json' };
    if (token) headers.Authorization = 'Bearer ' + token;
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    const resp = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) })
      .catch(() => { throw new Error('网络不太好，请稍后再试。'); });
    if (resp.status === 401 && path !== '/api/login') {
      onExpired(token);
      throw new Error('请重新登录。');
    }
    return resp;
  }

  // The login form: checks the fields, logs in with `api`, keeps the token, then `onLogin(data)`.
  function bindLogin(api, tokenKey, onLogin, onFailure) {
    $('login-form').addEventListener('submit', async (e) => {
      e.preventDefault();
      const name = $('login-name').value.trim();
      const password = $('login-password').value;
      if (!name) { showError('请填写您的姓名。'); $('login-name').focus(); return; }
      if (!password) { showError('请填写密码。'); $('login-password').focus(); return; }
      $('login-submit').disabled = true;
      $('login-submit').textContent = '正在登录…';
      try {
        const data = await api('POST', '/api/login', { name, password });
        localStorage.setItem(tokenKey, data.token);
        $('login-password').value = '';
        showError('');
        showLoginNote('');
        onLogin(data);
      } catch (err) {
        if (err.status === 401) showError('姓名或密码不对，请再试一次。');
        else if (err.status === 429) showError(err.message);  // "尝试次数太多了，请 5 分钟后再试。"
        else onFailure(err);
      } finally {
        $('login-submit').disabled = false;
        $('login-submit').textContent = '登录';
      }
    });
    $('error-close').addEventListener('click', () => showError(''));
  }

  return { $, el, showError, showOk, formatTime, showLoginNote, serverLogout, send, bindLogin };
}());
