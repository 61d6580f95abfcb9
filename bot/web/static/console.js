// Console for party members: live ticket list and ticket handling. See docs/api.md.
// Plain ES modules, no build step: this one routes between the screens (#t=ID, #audit) and
// starts the page. Top-level code in a module may use only console-core.js (it imports nothing,
// so it always runs first) and its own names; anything else only inside functions.

import { $, el, showError, showView, state, views } from './console-core.js';
import { showAlertsBox, urgentHandled } from './console-alerts.js';
import { loadAudit } from './console-audit.js';
import { isSecretary, renderList, scheduleRefresh } from './console-list.js';
import { renderMyPhone } from './console-me.js';
import { api, connect } from './console-session.js';
import { PANELS, closePanel } from './console-ticket-actions.js';
import { loadTicket } from './console-ticket.js';

// The secretary reads her community's audit log and overview, the district every community's.
const readsAudit = () => isSecretary() || !!(state.me && state.me.role === 'district');

// ---------- routing ----------
function route() {
  if (!state.token) { showView('login'); return; }
  if (location.hash === '#audit') {
    if (!readsAudit()) { location.hash = ''; return; }
    if (views.audit.hidden) {
      state.auditFromList = !views.list.hidden;
      state.currentId = state.current = state.revealed = state.fixingCategory = null;
      $('audit-list').replaceChildren();
      showView('audit');
      window.scrollTo(0, 0);
      loadAudit();
    }
    return;
  }
  const match = location.hash.match(/^#t=(\d+)$/);
  if (match) {
    const id = Number(match[1]);
    if (state.currentId !== id || views.ticket.hidden) {
      // From the list or another ticket (以前的求助), "‹" goes back there.
      state.enteredInApp = !views.list.hidden || !views.ticket.hidden;
      state.currentId = id;
      state.current = null;
      state.revealed = state.fixingCategory = null;
      state.newIds.delete(id);
      state.unreadIds.delete(id);
      urgentHandled(id);
      $('ticket-title').textContent = '工单 #' + id;
      $('ticket-info').replaceChildren(el('p', 'list-note', '正在打开…'));
      $('ticket-info').classList.remove('is-urgent');
      $('ticket-info').hidden = false;
      $('ticket-gone').hidden = true;
      $('ticket-body').hidden = true;
      $('ticket-messages').replaceChildren();
      $('ticket-events').replaceChildren();
      $('earlier-list').replaceChildren();
      $('reply-text').value = '';
      for (const name of PANELS) closePanel(name);
      $('claim').hidden = true;
      showView('ticket');
      window.scrollTo(0, 0);
      loadTicket(id);
    }
    return;
  }
  state.currentId = state.current = state.revealed = state.fixingCategory = null;
  showView('list');
  renderList();
  scheduleRefresh();
}

function startApp() {
  // Operators and admins read no tickets: their pages are the model's (same login).
  if (state.me && !state.me.reads_tickets) { location.replace('/ops/review'); return; }
  $('me-name').textContent = state.me ? state.me.name : '';
  $('audit-link').hidden = !readsAudit();
  $('overview-link').hidden = !readsAudit();
  renderMyPhone();
  showAlertsBox();
  route();
  connect();
}

async function start() {
  if (!state.token) { showView('login'); return; }
  state.me = await api('GET', '/api/me').catch((err) => { if (state.token) showError(err.message); return null; });
  if (state.token) startApp();  // after a 401 we are already back at login
}

window.addEventListener('hashchange', () => { showError(''); route(); });
start();

export { startApp };
