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
  pruned: '清理了旧模型',
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
const UNDO_MS = 10 * 1000;            // how long 撤销 is offered after a review decision

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
  // review page
  undoable: null,            // the review item whose decision 撤销 takes back
  undoTimer: null,
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


// The report's figures: what each means for a resident, in one line. `better`: which way is good.
const score = (x) => Number(x).toFixed(3);
const percent = (x) => (x * 100).toFixed(1) + '%';
const METRICS = [
  { key: 'macro_f1', label: '总体得分（macro-F1）', shown: score, better: 'higher',
    explain: '各类求助认得准不准的平均分，1 最好；越高，居民的事越少交错人。' },
  { key: 'urgent_recall', label: '紧急求助认出率', shown: score, better: 'higher',
    explain: '真正紧急的求助里被认出的比例，1 是全部认出；漏掉一个，就可能有人在危险里多等。' },
  { key: 'misroute', label: '交错人', shown: percent, better: 'lower',
    explain: '本该找维修的却交给了医疗志愿者这类：居民要多等一次转交。' },
  { key: 'chatter_to_ticket', label: '闲聊当成求助', shown: percent, better: 'lower',
    explain: '居民只是聊天，却被当成求助，打扰了党员。' },
  { key: 'fallback', label: '未分类', shown: percent, better: 'lower',
    explain: '模型拿不准、先交给书记分派的比例：有人管，但会慢一点。' },
  { key: 'heard', label: '求助被听见', shown: percent, better: 'higher',
    explain: '真正的求助里交到了人手上的比例（哪怕分错了类）。' },
  { key: 'silence_kept', label: '闲聊不打扰', shown: percent, better: 'higher',
    explain: '群里闲聊时，机器人没有插话、也没叫人的比例。' },
  { key: 'parse_ms', label: '每句用时', shown: (x) => Number(x).toFixed(1) + ' 毫秒', better: 'lower',
    explain: '模型读懂一句话要多久；越短，居民越快知道谁来帮忙。' },
];

// 75 → "1分15秒"; how long a step took or has taken so far.
function duration(seconds) {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return s + '秒';
  const m = Math.floor(s / 60);
  if (m < 60) return m + '分' + String(s % 60).padStart(2, '0') + '秒';
  return Math.floor(m / 60) + '小时' + (m % 60) + '分';
}

export {
  $, EVAL_WAIT_MS, FAST_POLL_MS, INTENT_LABELS, JOB_START_MS, KEY_TOKEN, LABELS, METRICS, MODEL_EVENTS, PAGE,
  REQUEST_INTENTS, RUN_STATUS, SHOWN_EVENTS, SLOW_POLL_MS, STEP_MARKS, STEP_NAMES, STEP_STATUS, UNDO_MS, button,
  duration, el, formatTime, intentName, score, showError, showOk, showView, state, tag, views
};
