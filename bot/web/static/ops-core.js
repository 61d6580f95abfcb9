// Operators' pages: what both share. The constants, the state, the views, small helpers.
// Imports nothing (see ops.js).

const KEY_TOKEN = 'console.token';  // the console's: one login serves both pages
const PAGE = location.pathname.startsWith('/ops/models') ? 'models' : 'review';
const REQUEST_INTENTS = ['repair', 'canteen', 'medical', 'complaint', 'urgent'];
const INTENT_LABELS = {
  repair: '维修', canteen: '助餐', medical: '医疗', complaint: '投诉', urgent: '紧急',
  chitchat: '闲聊/不是求助', nlu_fallback: '未分类',
};
// What an item may be trained as (bot/ops/review.py LABELS).
const LABELS = [...REQUEST_INTENTS, 'chitchat'];
const MODEL_EVENTS = {
  registered: '登记', activated: '启用', refused: '把关未通过', forced: '强制启用', 'rolled back': '回滚',
};
const RUN_STATUS = {
  train: { running: '正在训练…', succeeded: '训练好了', failed: '训练没成功', stalled: '训练中断了' },
  evaluate: { running: '正在评估…', succeeded: '评估好了', failed: '评估没成功', stalled: '评估中断了' },
};
// A run's steps (bot/ops/runs.py), in words an operator reads at a glance.
const STEP_NAMES = {
  export: '把已采纳的例句加进训练数据',
  train: '训练新模型',
  evaluate: '用测试题给新模型打分',
};
const STEP_STATUS = { waiting: '等待', running: '进行中', succeeded: '完成', failed: '没成功', stalled: '中断了' };
const STEP_MARKS = { waiting: '○', running: '…', succeeded: '✓', failed: '✗', stalled: '–' };
const FAST_POLL_MS = 2000;
const SLOW_POLL_MS = 15000;
const JOB_START_MS = 60 * 1000;       // a training just started shows up as a run within this
const EVAL_WAIT_MS = 10 * 60 * 1000;  // an evaluation without a result by then has failed
const SHOWN_EVENTS = 10;

const { $, el, showError, showOk, formatTime } = window.Page;
const views = { login: $('view-login'), denied: $('view-denied'), ops: $('view-ops') };

const state = {
  token: localStorage.getItem(KEY_TOKEN),
  // models page
  data: null,                // the last GET /api/ops/models
  dataAt: 0,                 // when it arrived: running steps count on from their seconds
  tickTimer: null,
  modelsKey: '',             // what the model list was last drawn from
  resultKey: '',             // what the latest run's outcome was last drawn from
  loadSeq: 0, pollTimer: null,
  trainStartedAt: 0,         // when this page started a training
  evaluating: {},            // model name → when this page started scoring it
  refused: {},               // model name → the gate's reasons, until activated or dismissed
  report: null,              // {name, report, charts} | {name, error} | {name}: the open report
};

// ---------- helpers ----------

function button(text, className, onClick) {
  const node = el('button', 'btn ' + className, text);
  node.type = 'button';
  node.addEventListener('click', () => onClick(node));
  return node;
}

const tag = (text, className) => el('span', 'tag ' + className, text);
const showView = (name) => { for (const key in views) views[key].hidden = key !== name; };
const intentName = (intent) => INTENT_LABELS[intent] || intent || '未知';


// 75 → "1分15秒"; how long a step took or has taken so far.
function duration(seconds) {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return s + '秒';
  const m = Math.floor(s / 60);
  if (m < 60) return m + '分' + String(s % 60).padStart(2, '0') + '秒';
  return Math.floor(m / 60) + '小时' + (m % 60) + '分';
}

const percent = (x) => (x * 100).toFixed(1) + '%';
const score = (x) => Number(x).toFixed(3);

export {
  $, EVAL_WAIT_MS, FAST_POLL_MS, INTENT_LABELS, JOB_START_MS, KEY_TOKEN, LABELS, MODEL_EVENTS, PAGE,
  REQUEST_INTENTS, RUN_STATUS, SHOWN_EVENTS, SLOW_POLL_MS, STEP_MARKS, STEP_NAMES, STEP_STATUS, button,
  duration, el, formatTime, intentName, percent, score, showError, showOk, showView, state, tag, views
};
