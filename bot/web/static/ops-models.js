// Operators' pages: the models (/ops/models). Training, evaluation, reports, activation.

import {
  $, EVAL_WAIT_MS, FAST_POLL_MS, JOB_START_MS, MODEL_EVENTS, PAGE, RUN_STATUS, SHOWN_EVENTS, SLOW_POLL_MS,
  METRICS, STEP_MARKS, STEP_NAMES, STEP_STATUS, button, duration, el, formatTime, intentName, score, showError,
  showOk, state, tag, views
} from './ops-core.js';
import { api, imageUrl, showFailure } from './ops.js';

// ---------- models: loading and polling ----------
async function loadModels() {
  const seq = ++state.loadSeq;
  try {
    const data = await api('GET', '/api/ops/models');
    if (seq !== state.loadSeq) return;  // a newer load is on its way
    state.data = data;
    state.dataAt = Date.now();
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
const activeModel = () => state.data.models.find((m) => m.active) || null;

function forgetFinishedEvaluations() {
  for (const [name, since] of Object.entries(state.evaluating)) {
    const model = modelNamed(name);
    if (Date.now() - since > EVAL_WAIT_MS || (model && model.metrics)) delete state.evaluating[name];
  }
}

// Models being scored now: started here with 评估, until their metrics appear.
function evaluatingNames() {
  const names = new Set(Object.keys(state.evaluating));
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
  renderTrainBox(state.data.waiting_examples);
  renderRun(latestRun());
  const evaluating = evaluatingNames();
  const key = JSON.stringify([state.data.models, [...evaluating]]);
  if (key !== state.modelsKey) {  // redraw only on change: keeps focus and open charts steady
    state.modelsKey = key;
    renderModelList();
  }
  renderModelEvents(state.data.events);
}

// ---------- models: the one button, from accepted corrections to a scored candidate ----------
function renderTrainBox(waiting) {
  $('train-waiting').textContent = waiting > 0
    ? '有 ' + waiting + ' 条已采纳的例句还没用来训练。点「训练新模型」：先把它们加进训练数据，再训练、打分，一共要几分钟。'
    : '没有新采纳的例句。也可以用现有的训练数据重新训练、打分，一共要几分钟。';
}

// ---------- models: the latest run, step by step ----------
function renderRun(run) {
  clearInterval(state.tickTimer);
  $('run-none').hidden = !!run;
  for (const id of ['run-head', 'run-steps']) $(id).hidden = !run;
  if (!run) { $('run-result').hidden = true; state.resultKey = ''; return; }
  $('run-title').textContent = run.kind === 'evaluate' ? '最近一次评估' : '最近一次训练';
  const head = $('run-head');
  const label = (RUN_STATUS[run.kind] || {})[run.status] || run.status;
  head.replaceChildren(tag(label, 'run-' + run.status));
  const when = formatTime(run.started_at) + ' ' + (run.started_by || '') + ' 开始' +
    (run.finished_at ? '，' + formatTime(run.finished_at) + ' 结束' : '');
  head.append(el('span', 'run-when', when), el('span', 'run-elapsed', ''));
  $('run-steps').replaceChildren(...run.steps.map((step, i) => runStep(step, i, run)));
  renderRunResult(run);
  tick(run);
  if (run.status === 'running') state.tickTimer = setInterval(() => tick(run), 1000);
}

// Seconds so far, counted on in the page between two polls.
function secondsNow(seconds, running) {
  return seconds + (running ? (Date.now() - state.dataAt) / 1000 : 0);
}

function tick(run) {
  const running = run.status === 'running';
  $('run-head').querySelector('.run-elapsed').textContent =
    (running ? '已用 ' : '共用 ') + duration(secondsNow(run.seconds, running));
  for (const step of run.steps) {
    const node = $('run-step-' + step.name);
    if (node && step.seconds !== null) {
      node.querySelector('.run-step-time').textContent =
        (step.status === 'running' ? '已用 ' : '用了 ') + duration(secondsNow(step.seconds, step.status === 'running'));
    }
  }
}

function runStep(step, index, run) {
  const node = el('li', 'run-step is-' + step.status);
  node.id = 'run-step-' + step.name;
  const status = STEP_STATUS[step.status] || step.status;
  node.setAttribute('aria-label', (index + 1) + '. ' + (STEP_NAMES[step.name] || step.name) + '：' + status);
  const mark = el('span', 'run-step-mark', STEP_MARKS[step.status] || '');
  mark.setAttribute('aria-hidden', 'true');
  const body = el('div', 'run-step-body');
  body.append(el('span', 'run-step-name', (index + 1) + '. ' + (STEP_NAMES[step.name] || step.name)));
  const line = el('span', 'run-step-status', status);
  line.append(' ', el('span', 'run-step-time', ''));
  body.append(line);
  const note = stepNote(step, run);
  if (note) body.append(el('span', 'run-step-note', note));
  node.append(mark, body);
  return node;
}

// What a step found, or how long it usually takes.
function stepNote(step, run) {
  if (step.name === 'export' && step.status === 'succeeded') {
    const written = Object.entries(step.detail.written || {});
    const total = written.reduce((sum, [, n]) => sum + n, 0);
    const known = step.detail.already_known ? '；' + step.detail.already_known + ' 条训练数据里原本就有' : '';
    if (!total) return '没有新例句要加' + known;
    return '加了 ' + total + ' 条新例句（' + written.map(([intent, n]) => intentName(intent) + ' ' + n).join('、') + '）' + known;
  }
  if (step.name === 'train' && step.status === 'running') {
    const last = lastTrainingSeconds(run);
    return last ? '上次训练用了 ' + duration(last) + '。训练时居民的消息照常回复。' : '训练时居民的消息照常回复。';
  }
  return '';
}

function lastTrainingSeconds(current) {
  for (const run of state.data.runs) {
    if (run.id === current.id) continue;
    const train = run.steps.find((s) => s.name === 'train' && s.status === 'succeeded');
    if (train) return train.seconds;
  }
  return null;
}

// The run's outcome: the new model's scores beside the running one's, and what to do next.
function renderRunResult(run) {
  const model = run.model && modelNamed(run.model);
  const active = activeModel();
  const key = JSON.stringify([run.id, run.status, model, active && active.name, state.refused[run.model]]);
  if (key === state.resultKey) return;  // redraw only on change: keeps the focus on its buttons
  state.resultKey = key;
  const box = $('run-result');
  box.replaceChildren();
  box.hidden = run.status === 'running';
  if (run.status === 'failed') {
    box.append(el('p', 'form-error', '没成功。请把「运行编号 #' + run.id + '」告诉技术人员，他们能在服务器上查到原因。'));
  } else if (run.status === 'stalled') {
    box.append(el('p', 'form-error', '中断了：服务重启了，或者进程被停掉了。可以再点一次「训练新模型」。'));
  } else if (run.status === 'succeeded' && run.model) {
    box.append(resultFor(model, run));
  } else {
    box.hidden = true;
  }
}

function resultFor(model, run) {
  const wrap = el('div', 'run-outcome');
  if (!model) {
    wrap.append(el('p', 'ops-intro', '这个模型已经清理掉了。'));
    return wrap;
  }
  const active = activeModel();
  wrap.append(el('p', 'run-outcome-title', (run.kind === 'train' ? '新模型：' : '模型：') + model.name));
  if (!model.metrics) {
    wrap.append(el('p', 'ops-intro', '还没打分。'));
    return wrap;
  }
  wrap.append(metricGrid(model.metrics, active && !model.active ? active.metrics : null, true));
  const actions = el('div', 'btn-row');
  if (!model.active) actions.append(button('启用这个模型', 'btn-primary', (b) => activateModel(model.name, b)));
  else wrap.append(el('p', 'ops-intro', '这就是正在使用的模型。'));
  actions.append(button('查看完整报告', 'btn-plain', () => showReport(model.name)));
  wrap.append(actions);
  return wrap;
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
  card.id = 'model-' + model.name;
  card.setAttribute('aria-label', '模型 ' + model.name + (model.active ? '（正在使用）' : ''));
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

// The figures `metrics` holds (a model's summary, or a whole report): with `compared` (the
// running model's) each shows that one's too and which is better; `explained` adds what each
// figure means for a resident.
function metricGrid(metrics, compared, explained) {
  const grid = el('div', 'metric-grid' + (explained ? ' is-explained' : ''));
  for (const metric of METRICS) {
    if (metrics[metric.key] === undefined) continue;
    const cell = el('div', 'metric metric-' + metric.key);
    cell.append(el('span', 'metric-value', metric.shown(metrics[metric.key])), el('span', 'metric-label', metric.label));
    if (compared && compared[metric.key] !== undefined) {
      cell.append(el('span', 'metric-compared',
        '正在用的：' + metric.shown(compared[metric.key]) + verdict(metric, metrics[metric.key], compared[metric.key])));
    }
    if (explained) cell.append(el('span', 'metric-explain', metric.explain));
    grid.append(cell);
  }
  return grid;
}

function verdict(metric, value, running) {
  if (Math.abs(value - running) < 0.0005) return '，一样';
  return (value > running) === (metric.better === 'higher') ? '，这个更好' : '，这个差一些';
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
      api('GET', path + '/report'), imageUrl(path + '/confusion.svg'), imageUrl(path + '/f1.svg'),
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
  const card = document.getElementById('model-' + name);
  if (card) card.scrollIntoView({ block: 'start' });
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
  box.id = 'report-' + shown.name;
  box.setAttribute('aria-label', '评估报告');
  if (shown.error) { box.append(el('p', 'form-error', shown.error)); return box; }
  if (!shown.report) { box.append(el('p', 'list-note', '正在加载报告…')); return box; }
  const report = shown.report;
  box.append(el('p', 'ops-intro', '用 ' + report.examples + ' 道测试题打分：都是居民的原话，训练时模型没见过。'),
    metricGrid(report, null, true));
  const charts = el('div', 'report-charts');
  for (const [kind, label] of [
    ['confusion', '认对和认错的测试题：每行是正确的类别，每列是模型的判断，对角线上的是认对的'],
    ['f1', '各类求助认得准不准（F1）：1 表示这一类全部认对，也没有把别的认成这一类'],
  ]) {
    const figure = el('figure', 'report-chart');
    figure.id = 'report-chart-' + kind;
    const link = el('a');
    link.href = shown.charts[kind];
    link.target = '_blank';
    link.setAttribute('aria-label', '看大图：' + label);
    const img = el('img');
    img.src = shown.charts[kind];
    img.alt = label;
    link.append(img);
    figure.append(link, el('figcaption', '', label + '（点图可看大图）'));
    charts.append(figure);
  }
  box.append(charts, intentTable(report.per_intent || {}),
    el('p', 'ops-intro', '精确率：模型说是这一类时，真是这一类的比例；召回率：真是这一类的，被认出来的比例；F1：两者合起来的分数。'));
  return box;
}

function intentTable(perIntent) {
  const wrap = el('div', 'report-table-wrap');
  const table = el('table', 'report-table');
  table.setAttribute('aria-label', '各类求助的得分');
  const head = el('tr');
  for (const title of ['类别', '精确率', '召回率', 'F1', '测试题']) head.append(el('th', '', title));
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
