// The Q&A board page: one EventSource on /login for everything the server
// pushes, and fetch POSTs for the actions. Every piece of user text is put
// into the page with textContent, never parsed as HTML.
import { Board } from './board.js';

const $ = (id) => document.getElementById(id);
const board = new Board();
let userId = null;
let order = 'new';
let source = null;

function connect() {
  // The server sets a cookie at login, so the browser's own reconnects
  // (with Last-Event-ID) keep this identity and get what they missed.
  source = new EventSource('/login');
  setStatus('connecting', 'Connecting…');
  source.addEventListener('open', () => setStatus('live', 'Live'));
  source.addEventListener('error', () => {
    if (source.readyState === EventSource.CLOSED) {
      // A refused stream is not retried by the browser: start over later.
      setStatus('offline', 'Offline — retrying');
      setTimeout(connect, 3000);
    } else {
      setStatus('reconnecting', 'Reconnecting…');
    }
  });
  source.addEventListener('login', (e) => {
    userId = JSON.parse(e.data);
    setStatus('live', 'Live');
  });
  source.addEventListener('unavailable', (e) => {
    // The server cannot serve the board right now; the stream ends and the
    // browser reconnects by itself (keeping Last-Event-ID).
    let why = '';
    try { why = JSON.parse(e.data).error; } catch { /* keep the plain status */ }
    setStatus('reconnecting', why ? `Unavailable (${why}) — retrying` : 'Unavailable — retrying');
  });
  source.addEventListener('reset', () => board.reset());
  source.addEventListener('meta', (e) => {
    board.meta(JSON.parse(e.data));
    render();
  });
  source.addEventListener('message', (e) => {
    const msg = JSON.parse(e.data);
    if (msg.type === 'questions') board.questions(msg);
    else if (msg.type === 'answers') board.answers(msg);
    else if (msg.type === 'notification') notify(msg.message);
    render();
  });
}

function setStatus(state, text) {
  const el = $('status');
  el.dataset.state = state;
  el.textContent = text;
}

let noticeTimer = 0;
function notify(text) {
  const el = $('notice');
  el.textContent = text;
  el.hidden = false;
  clearTimeout(noticeTimer);
  noticeTimer = setTimeout(() => { el.hidden = true; }, 5000);
}

async function act(kind, text) {
  if (!userId) {
    notify('Not connected yet; try again in a moment.');
    return null;
  }
  let res;
  try {
    res = await fetch(`/${kind}/${encodeURIComponent(text)}`, {
      method: 'POST',
      headers: { _sse_user_id_: userId },
    });
  } catch {
    notify('The server cannot be reached.');
    return null;
  }
  // 4xx refusals that concern the board arrive as notifications on the
  // stream; the others are shown from the response.
  if (res.status === 401 || res.status >= 500) {
    const body = await res.json().catch(() => ({ error: res.statusText }));
    notify(body.error);
  }
  return res;
}

function render() {
  const list = $('questions');
  const items = board.ordered(order);
  $('empty-questions').hidden = items.length > 0;
  list.replaceChildren(...items.map(questionItem));
  const followed = board.followed;
  $('followed').textContent = followed ?? 'Select a question to follow its answers.';
  $('followed').classList.toggle('chosen', followed !== null);
  const answers = followed === null ? [] : board.answersOf(followed);
  $('answers').replaceChildren(...answers.map(answerItem));
}

function questionItem(q) {
  const li = document.createElement('li');
  li.className = 'question';
  li.dataset.question = q.text;
  if (q.text === board.followed) li.classList.add('selected');
  const open = document.createElement('button');
  open.type = 'button';
  open.className = 'question-text';
  open.textContent = q.text;
  open.setAttribute('aria-pressed', String(q.text === board.followed));
  open.addEventListener('click', () => {
    board.follow(q.text);
    render();
    act('selectquestion', q.text);
  });
  const info = document.createElement('span');
  info.className = 'question-meta';
  const parts = [];
  if (q.author) parts.push(`by ${q.author}`);
  if (q.time) parts.push(new Date(q.time).toLocaleTimeString());
  parts.push(`${q.answers} answer${q.answers === 1 ? '' : 's'}`);
  info.textContent = parts.join(' · ');
  const vote = document.createElement('button');
  vote.type = 'button';
  vote.className = 'vote quiet';
  vote.setAttribute('aria-pressed', String(board.voted.has(q.text)));
  vote.setAttribute('aria-label', `Upvote (${q.votes} votes)`);
  vote.textContent = `▲ ${q.votes}`;
  vote.addEventListener('click', async () => {
    const res = await act('vote', q.text);
    if (res?.ok) {
      const reply = await res.json();
      board.setVoted(reply.question, reply.voted);
      render();
    }
  });
  li.append(vote, open, info);
  return li;
}

function answerItem(a) {
  const li = document.createElement('li');
  li.className = 'answer';
  const text = document.createElement('p');
  text.textContent = a.text;
  li.append(text);
  if (a.author) {
    const by = document.createElement('span');
    by.className = 'answer-meta';
    by.textContent = `${a.author} · ${new Date(a.time).toLocaleTimeString()}`;
    li.append(by);
  }
  return li;
}

function setOrder(next) {
  order = next;
  $('sort-new').setAttribute('aria-pressed', String(order === 'new'));
  $('sort-top').setAttribute('aria-pressed', String(order === 'top'));
  render();
}

$('sort-new').addEventListener('click', () => setOrder('new'));
$('sort-top').addEventListener('click', () => setOrder('top'));
$('ask-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  const input = $('ask-input');
  const text = input.value.trim();
  if (!text) return;
  const res = await act('askquestion', text);
  if (res?.ok) input.value = '';
});
$('answer-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  const input = $('answer-input');
  const text = input.value.trim();
  if (!text) return;
  if (board.followed === null) {
    notify('Please select a question to answer');
    return;
  }
  const res = await act('addanswer', text);
  if (res?.ok) input.value = '';
});

render();
connect();
