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
  train: { running: '正在训练…', succeeded: '训练好了', failed: '训练失败', stalled: '训练中断了' },
  evaluate: { running: '正在评估…', succeeded: '评估好了', failed: '评估失败', stalled: '评估中断了' },
};
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
  modelsKey: '',             // what the model list was last drawn from
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


const percent = (x) => (x * 100).toFixed(1) + '%';
const score = (x) => Number(x).toFixed(3);

export {
  $, EVAL_WAIT_MS, FAST_POLL_MS, INTENT_LABELS, JOB_START_MS, KEY_TOKEN, LABELS, MODEL_EVENTS, PAGE,
  REQUEST_INTENTS, RUN_STATUS, SHOWN_EVENTS, SLOW_POLL_MS, button, el, formatTime, intentName, percent,
  score, showError, showOk, showView, state, tag, views
};
