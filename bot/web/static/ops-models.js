// Operators' pages: the models (/ops/models). Training, evaluation, reports, activation.

import {
  $, EVAL_WAIT_MS, FAST_POLL_MS, JOB_START_MS, MODEL_EVENTS, PAGE, RUN_STATUS, SHOWN_EVENTS, SLOW_POLL_MS,
  button, el, formatTime, intentName, percent, score, showError, showOk, state, tag, views
} from './ops-core.js';
import { api, imageUrl, showFailure } from './ops.js';

// ---------- models: loading and polling ----------
async function loadModels() {
  const seq = ++state.loadSeq;
  try {
    const data = await api('GET', '/api/ops/models');
    if (seq !== state.loadSeq) return;  // a newer load is on its way
    state.data = data;
    forgetFinishedEvaluations();
    renderModelsPage();
  } catch (err) {
    if (state.token && seq === state.loadSeq) showFailure(err);
  }
  if (!state.token || seq !== state.loadSeq) return;
  clearTimeout(state.pollTimer);
  state.pollTimer = setTimeout(loadModels, busy() ? FAST_POLL_MS : SLOW_POLL_MS);
}

const latestRun = () => (state.data && state.data.runs[0]) || null;
const modelNamed = (name) => state.data.models.find((m) => m.name === name);

function forgetFinishedEvaluations() {
  for (const [name, since] of Object.entries(state.evaluating)) {
    const model = modelNamed(name);
    if (Date.now() - since > EVAL_WAIT_MS || (model && model.metrics)) delete state.evaluating[name];
  }
}

// Models being scored now: started here, or right after a training (`ops train` scores the
// new model once its training has succeeded); each is done once its metrics appear.
function evaluatingNames() {
  const names = new Set(Object.keys(state.evaluating));
  const run = latestRun();
  if (run && run.status === 'succeeded' && run.model && Date.now() - Date.parse(run.finished_at) < EVAL_WAIT_MS) {
    names.add(run.model);
  }
  for (const name of names) {
    const model = modelNamed(name);
    if (model && model.metrics) names.delete(name);
  }
  return names;
}

function busy() {
  const run = latestRun();
  return (run && run.status === 'running') || Date.now() - state.trainStartedAt < JOB_START_MS ||
    evaluatingNames().size > 0;
}

function renderModelsPage() {
  renderRun(latestRun());
  const evaluating = evaluatingNames();
  const key = JSON.stringify([state.data.models, [...evaluating]]);
  if (key !== state.modelsKey) {  // redraw only on change: keeps focus and open charts steady
    state.modelsKey = key;
    renderModelList();
  }
  renderModelEvents(state.data.events);
}

// ---------- models: the latest training ----------
function renderRun(run) {
  $('run-none').hidden = !!run;
  $('run-head').hidden = $('run-output').hidden = !run;
  if (!run) return;
  const head = $('run-head');
  const label = (RUN_STATUS[run.kind] || {})[run.status] || run.status;
  head.replaceChildren(tag(label, 'run-' + run.status));
  const when = formatTime(run.started_at) + ' ' + (run.started_by || '') + ' 开始' +
    (run.finished_at ? '，' + formatTime(run.finished_at) + ' 结束' : '');
  head.append(el('span', 'run-when', when));
  if (run.model) head.append(el('span', 'run-model', (run.kind === 'train' ? '新模型：' : '模型：') + run.model));
  const output = $('run-output');
  if (output.textContent === run.output) return;
  const atBottom = output.scrollHeight - output.scrollTop - output.clientHeight < 40;
  output.textContent = run.output || '（还没有输出）';
  if (atBottom || run.status === 'running') output.scrollTop = output.scrollHeight;
}

// Always usable: the server itself refuses (409) while a job really runs.
$('train').addEventListener('click', async () => {
  $('train').disabled = true;
  try {
    await api('POST', '/api/ops/models/train');
    state.trainStartedAt = Date.now();
    showError('');
    showOk('开始训练了，要几分钟。下面能看到进度。');
  } catch (err) {
    showFailure(err, { 409: '已经有训练或评估在进行，请等它结束再来。' });
  } finally {
    $('train').disabled = false;
    loadModels();
  }
});

$('rollback').addEventListener('click', async () => {
  if (!window.confirm('回滚到上一个用过的模型？几秒后居民的消息就由它来理解。')) return;
  $('rollback').disabled = true;
  try {
    const model = await api('POST', '/api/ops/models/rollback');
    showError('');
    showOk('已回滚到 ' + model.name + '，几秒内生效。');
  } catch (err) {
    showFailure(err, { 409: '没有更早的模型可以回滚。' });
  } finally {
    $('rollback').disabled = false;
    loadModels();
  }
});

// ---------- models: the list ----------
function renderModelList() {
  const list = $('model-list');
  const evaluating = evaluatingNames();
  list.replaceChildren();
  for (const model of state.data.models) list.append(modelCard(model, evaluating.has(model.name)));
  $('models-empty').hidden = state.data.models.length > 0;
}

function infoLine(label, value) {
  const row = el('div', 'info-row');
  const content = el('span', 'info-value');
  content.append(value);
  row.append(el('span', 'info-label', label), content);
  return row;
}

function modelCard(model, evaluating) {
  const card = el('li', 'model-card' + (model.active ? ' is-active' : ''));
  const head = el('div', 'model-head');
  head.append(el('h3', 'model-name', model.name));
  if (model.active) head.append(tag('正在使用', 'tag-active'));
  card.append(head, infoLine('训练于', formatTime(model.created_at) || '不明'), infoLine('数据', dataSummary(model)));
  if (model.activated_by) {
    card.append(infoLine(model.active ? '启用' : '上次启用', model.activated_by + '，' + formatTime(model.activated_at)));
  }
  card.append(model.metrics ? metricGrid(model.metrics) : el('p', 'model-unscored', evaluating ? '正在评估…' : '还没评估'));
  if (state.refused[model.name]) card.append(gateBox(model.name, state.refused[model.name]));
  if (state.report && state.report.name === model.name) card.append(reportBox(state.report));

  const actions = el('div', 'btn-row model-actions');
  if (!model.metrics && !evaluating) actions.append(button('评估', 'btn-plain', (b) => evaluateModel(model.name, b)));
  if (!model.active) actions.append(button('启用', 'btn-primary', (b) => activateModel(model.name, b)));
  if (model.metrics) {
    const open = state.report && state.report.name === model.name;
    actions.append(button(open ? '收起报告' : '查看报告', 'btn-plain', () => (open ? hideReport() : showReport(model.name))));
  }
  if (actions.childElementCount) card.append(actions);
  return card;
}

function dataSummary(model) {
  const counts = Object.entries(model.example_counts || {});
  const hash = model.data_hash ? '数据 ' + model.data_hash : '数据来源不明';
  if (!counts.length) return hash;
  const details = el('details', 'example-counts');
  details.append(el('summary', '', '例句 ' + model.examples + ' 条 · ' + hash),
    el('p', 'example-list', counts.map(([intent, n]) => intentName(intent) + ' ' + n).join(' · ')));
  return details;
}

function metricGrid(metrics) {
  const grid = el('div', 'metric-grid');
  for (const [label, value] of [
    ['macro-F1', score(metrics.macro_f1)],
    ['紧急召回率', score(metrics.urgent_recall)],
    ['分错类', percent(metrics.misroute)],
    ['闲聊变工单', percent(metrics.chatter_to_ticket)],
  ]) {
    const cell = el('div', 'metric');
    cell.append(el('span', 'metric-value', value), el('span', 'metric-label', label));
    grid.append(cell);
  }
  return grid;
}

async function evaluateModel(name, pressed) {
  pressed.disabled = true;
  try {
    await api('POST', '/api/ops/models/' + encodeURIComponent(name) + '/evaluate');
    state.evaluating[name] = Date.now();
    showError('');
    showOk('开始评估了，一两分钟后这里会出成绩。');
  } catch (err) {
    pressed.disabled = false;
    showFailure(err, { 404: '没有找到这个模型文件。', 409: '已经有训练或评估在进行，请等它结束再来。' });
  } finally {
    loadModels();
  }
}

async function activateModel(name, pressed, reason) {
  const forced = reason !== undefined;
  if (!forced && !window.confirm('启用 ' + name + '？几秒后居民的消息就由它来理解。')) return;
  pressed.disabled = true;
  try {
    await api('POST', '/api/ops/models/' + encodeURIComponent(name) + '/activate', forced ? { force: true, reason } : {});
    delete state.refused[name];
    showError('');
    showOk('已启用 ' + name + '，几秒内生效。');
  } catch (err) {
    pressed.disabled = false;
    if (err.data && err.data.error === 'gate_refused') {
      state.refused[name] = err.data.reasons || [];
      showError('');
      renderModelList();
      const force = $('model-list').querySelector('.gate-box .btn');
      if (force) force.focus();
    } else {
      showFailure(err, { 404: '没有找到这个模型文件。' });
    }
  } finally {
    loadModels();
  }
}

// The promotion gate said no: its reasons, and a way past it that is recorded with a reason.
function gateBox(name, refusals) {
  const box = el('div', 'gate-box');
  const reasons = el('ul', 'gate-reasons');
  for (const reason of refusals) reasons.append(el('li', '', reason));
  const actions = el('div', 'btn-row');
  actions.append(
    button('仍然启用', 'btn-danger', (b) => {
      const reason = (window.prompt('为什么仍然启用？（会记录下来）') || '').trim();
      if (reason) activateModel(name, b, reason);
    }),
    button('算了', 'btn-plain', () => { delete state.refused[name]; renderModelList(); }));
  box.append(el('p', 'gate-title', '没通过启用前的把关：'), reasons, actions);
  return box;
}

// ---------- models: one model's report ----------
async function showReport(name) {
  closeReport();
  state.report = { name };
  renderModelList();
  const path = '/api/ops/models/' + encodeURIComponent(name);
  try {
    const [report, confusion, f1] = await Promise.all([
      api('GET', path + '/report'), imageUrl(path + '/confusion.png'), imageUrl(path + '/f1.png'),
    ]);
    if (!state.report || state.report.name !== name) {
      URL.revokeObjectURL(confusion);
      URL.revokeObjectURL(f1);
      return;
    }
    state.report = { name, report, charts: { confusion, f1 } };
  } catch (err) {
    if (!state.report || state.report.name !== name) return;
    state.report = { name, error: err.status === 404 ? '还没有评估报告。' : err.message };
  }
  renderModelList();
}

function closeReport() {
  if (state.report && state.report.charts) {
    for (const url of Object.values(state.report.charts)) URL.revokeObjectURL(url);
  }
  state.report = null;
}

function hideReport() {
  closeReport();
  renderModelList();
}

function reportBox(shown) {
  const box = el('div', 'report-box');
  if (shown.error) { box.append(el('p', 'form-error', shown.error)); return box; }
  if (!shown.report) { box.append(el('p', 'list-note', '正在加载报告…')); return box; }
  const report = shown.report;
  box.append(el('p', 'ops-intro', '在 ' + report.examples + ' 条留出的例句上评估（点图可看大图）。'));
  const charts = el('div', 'report-charts');
  for (const [kind, label] of [['confusion', '混淆矩阵：每行是正确意图，每列是模型的判断'], ['f1', '各意图的 F1']]) {
    const figure = el('figure', 'report-chart');
    const link = el('a');
    link.href = shown.charts[kind];
    link.target = '_blank';
    const img = el('img');
    img.src = shown.charts[kind];
    img.alt = label;
    link.append(img);
    figure.append(link, el('figcaption', '', label));
    charts.append(figure);
  }
  box.append(charts, intentTable(report.per_intent || {}));
  return box;
}

function intentTable(perIntent) {
  const wrap = el('div', 'report-table-wrap');
  const table = el('table', 'report-table');
  const head = el('tr');
  for (const title of ['意图', '精确率', '召回率', 'F1', '例句数']) head.append(el('th', '', title));
  const thead = el('thead');
  thead.append(head);
  const body = el('tbody');
  for (const [intent, s] of Object.entries(perIntent)) {
    const row = el('tr');
    row.append(el('th', '', intentName(intent)), el('td', '', score(s.precision)), el('td', '', score(s.recall)),
      el('td', '', score(s.f1)), el('td', '', String(s.support)));
    body.append(row);
  }
  table.append(thead, body);
  wrap.append(table);
  return wrap;
}

// ---------- models: recent events ----------
function renderModelEvents(events) {
  const list = $('model-events');
  list.replaceChildren();
  for (const e of events.slice(0, SHOWN_EVENTS)) {
    const item = el('li', 'event model-event-' + e.kind.replace(/\s+/g, '-'));
    item.append(el('span', 'event-time', formatTime(e.at)),
      el('span', 'event-what', [e.actor, MODEL_EVENTS[e.kind] || e.kind].filter(Boolean).join(' ')),
      el('span', 'event-model', e.model));
    if (e.reason) item.append(el('span', 'event-reason', e.reason));
    list.append(item);
  }
  $('events-empty').hidden = events.length > 0;
}

document.addEventListener('visibilitychange', () => {
  if (!document.hidden && state.token && PAGE === 'models' && !views.ops.hidden) loadModels();
});

export { closeReport, loadModels };
