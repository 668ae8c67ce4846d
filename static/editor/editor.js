// The editor page: a plain-text view of a shared rich-text document. Typing
// sends inserts and deletes only, so formatting other clients (Quill) set is
// kept. Other users' carets and selections are drawn over the text.
//
// ?doc=collection/id picks the document (default examples/richtext);
// ?name= sets the name shown to others.

import { diffText, documentText, transformPosition } from './delta.js';
import { ShareDoc } from './sharedb.js';

const params = new URLSearchParams(location.search);
const [collection, id] = (params.get('doc') ?? 'examples/richtext').split('/', 2);
const text = document.getElementById('text');
const cursors = document.getElementById('cursors');
const people = document.getElementById('people');
const statusEl = document.getElementById('status');
const errorEl = document.getElementById('error');
const nameInput = document.getElementById('name');
document.getElementById('doc-name').textContent = `${collection}/${id}`;

let name = params.get('name') ?? localStorage.getItem('rt-editor-name') ?? `guest-${Math.floor(Math.random() * 1000)}`;
nameInput.value = name;

// What the textarea shows: the document without Quill's final newline, with
// embeds as U+FFFC and carriage returns as U+240D (a textarea would turn a
// CR into a line feed). Every character keeps its length, so positions in
// the textarea are positions in the document.
function visible(ops) {
  const t = documentText(ops).replace(/\r/g, '\u240d');
  return t.endsWith('\n') ? t.slice(0, -1) : t;
}

let shown = '';

const doc = new ShareDoc(`${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/`, collection, id, {
  onStatus: (s) => {
    statusEl.textContent = s;
    text.dataset.status = s;
  },
  onSnapshot: (ops) => {
    shown = visible(ops);
    text.value = shown;
    text.disabled = doc.data === null;
    if (doc.data === null) statusEl.textContent = 'this document does not exist';
    render();
  },
  onRemoteOp: (op) => {
    const start = transformPosition(op, text.selectionStart, true);
    const end = transformPosition(op, text.selectionEnd, true);
    const scroll = text.scrollTop;
    shown = visible(doc.data);
    text.value = shown;
    text.setSelectionRange(start, end);
    text.scrollTop = scroll;
    text.dataset.version = doc.version;
  },
  onPresence: () => render(),
  onError: (message) => {
    errorEl.textContent = message;
  },
});

text.addEventListener('input', () => {
  if (doc.data === null) {
    text.value = shown;
    return;
  }
  const op = diffText(shown, text.value);
  shown = text.value;
  doc.submit(op);
  sendSelection();
});

let lastSelection = null;
function sendSelection() {
  const range = { index: text.selectionStart, length: text.selectionEnd - text.selectionStart, name };
  const key = JSON.stringify(range);
  if (key === lastSelection) return;
  lastSelection = key;
  doc.setPresence(range);
  render();
}
for (const ev of ['select', 'keyup', 'mouseup', 'focus']) text.addEventListener(ev, sendSelection);
document.addEventListener('selectionchange', () => {
  if (document.activeElement === text) sendSelection();
});
text.addEventListener('scroll', () => {
  cursors.scrollTop = text.scrollTop;
});
nameInput.addEventListener('change', () => {
  name = nameInput.value.trim() || name;
  localStorage.setItem('rt-editor-name', name);
  lastSelection = null;
  sendSelection();
});

function colorOf(key) {
  let h = 0;
  for (const ch of key) h = (h * 31 + ch.codePointAt(0)) % 360;
  return `hsl(${h} 70% 42%)`;
}

/** Draws the other users' carets and selections, and the list of names. */
function render() {
  const ranges = doc
    .remoteRanges()
    .map((r) => ({
      ...r,
      index: Math.max(0, Math.min(r.index, shown.length)),
      end: Math.max(0, Math.min(r.index + (r.length || 0), shown.length)),
    }))
    .sort((a, b) => a.index - b.index);
  const frag = document.createDocumentFragment();
  let at = 0;
  for (const r of ranges) {
    if (r.index < at) continue;
    frag.append(shown.slice(at, r.index));
    const color = colorOf(r.id);
    const caret = document.createElement('span');
    caret.className = 'caret';
    caret.dataset.name = String(r.name ?? 'someone');
    caret.dataset.id = r.id;
    caret.style.setProperty('--c', color);
    frag.append(caret);
    if (r.end > r.index) {
      const mark = document.createElement('mark');
      mark.style.setProperty('--c', color);
      mark.textContent = shown.slice(r.index, r.end);
      frag.append(mark);
    }
    at = Math.max(r.index, r.end);
  }
  // A trailing newline needs something after it to take up a line.
  frag.append(shown.slice(at) + '\u200b');
  cursors.replaceChildren(frag);
  cursors.scrollTop = text.scrollTop;
  people.replaceChildren(
    ...ranges.map((r) => {
      const li = document.createElement('li');
      li.textContent = String(r.name ?? 'someone');
      li.style.setProperty('--c', colorOf(r.id));
      return li;
    }),
  );
}

// For tests and debugging.
window.rtEditor = { doc, text };
