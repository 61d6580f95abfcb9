// Console: the secretary's 安全记录 screen (#audit).

import { $, el, formatTime, state, views } from './console-core.js';
import { api } from './console-session.js';

// ---------- security record (the secretary's) ----------
const AUDIT_ACTIONS = {
  login: '登录', login_failed: '登录失败', logout: '退出', phone_revealed: '查看电话',
  privacy_export: '导出个人信息', privacy_erase: '删除个人信息', password_changed: '修改密码',
  member_removed: '移除成员', role_changed: '角色变更', retention: '到期清理',
  overview_export: '下载概况表格',
};

async function loadAudit() {
  const empty = $('audit-empty');
  empty.textContent = '正在加载…';
  empty.hidden = false;
  try {
    const data = await api('GET', '/api/audit');
    if (!views.audit.hidden) renderAudit(data.entries || []);
  } catch (err) {
    if (!state.token) return;
    $('audit-list').replaceChildren();
    empty.textContent = err.status === 403 ? '只有书记能看安全记录。' : err.message;
  }
}

// Newest first, as the server sends: when, who did what, and to whom or what.
function renderAudit(entries) {
  const list = $('audit-list');
  list.replaceChildren();
  for (const e of entries) {
    const item = el('li', 'event audit-' + String(e.action).replace(/[^a-z_]/g, ''));
    item.append(el('span', 'event-time', formatTime(e.at)),
      el('span', 'event-what', [e.actor, AUDIT_ACTIONS[e.action] || e.action].filter(Boolean).join(' ')));
    const about = [e.target, e.detail].filter(Boolean).join(' · ');
    if (about) item.append(el('span', 'event-reason', about));
    list.append(item);
  }
  $('audit-empty').textContent = '还没有记录。';
  $('audit-empty').hidden = entries.length > 0;
}

$('audit-back').addEventListener('click', () => {
  if (state.auditFromList) history.back(); else location.hash = '';
});

export { loadAudit };
