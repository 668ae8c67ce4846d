// Differential cases for the Rust rich-text Delta type, computed by the real
// npm packages (rich-text 4.1.0 over quill-delta 4.2.2).
//
// Usage: node tests/node/gen/delta-cases.mjs [--seed N] [--count N]
// Prints one JSON object per line: the inputs of a random case and what the
// JavaScript implementation returns for compose, transform (both
// priorities), transformPosition (both priorities), invert and rich-text's
// transformPresence (rich-text's apply and transform are checked here against
// compose and transform). Deterministic for a given seed.
//
// Two kinds of cases:
// - "doc": a random document with emoji, CJK, combining marks, embeds and
//   attributes (null values included), and ops made against it whose
//   boundaries never split a surrogate pair (the Rust type stores text as
//   UTF-8 and replaces split halves by U+FFFD, see protocol/src/delta/utf16.rs).
// - "wild": ops not tied to any document (retains past the end, non-normal
//   sequences, zero-length ops), with text from the Basic Multilingual Plane
//   only, so no surrogate pair can be split.

import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const Delta = require('quill-delta');
const richText = require('rich-text');

const deltaVersion = require('quill-delta/package.json').version;
const richTextVersion = require('rich-text/package.json').version;
if (deltaVersion !== '4.2.2' || richTextVersion !== '4.1.0') {
  throw new Error(`expected quill-delta 4.2.2 and rich-text 4.1.0, found ${deltaVersion} and ${richTextVersion}`);
}
if (richText.Delta !== Delta) {
  throw new Error('rich-text does not use the top-level quill-delta');
}
const type = richText.type;

function arg(name, fallback) {
  const i = process.argv.indexOf(name);
  if (i < 0) return fallback;
  const value = Number(process.argv[i + 1]);
  if (!Number.isSafeInteger(value) || value < 0) throw new Error(`${name} needs a non-negative integer`);
  return value;
}
const seed = arg('--seed', 1);
const count = arg('--count', 10000);

// mulberry32
let state = seed >>> 0;
function rng() {
  state = (state + 0x6d2b79f5) >>> 0;
  let t = state;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
const int = (lo, hi) => lo + Math.floor(rng() * (hi - lo + 1));
const pick = (xs) => xs[Math.floor(rng() * xs.length)];
const chance = (p) => rng() < p;

const ALL_PIECES = ['a', 'b', 'c', ' ', '\n', 'é', '中', '文', 'Ω', 'e\u0301', '😀', '👍🏽', '🇫🇷', '𝒳', 'x'];
const BMP_PIECES = ['a', 'b', 'c', ' ', '\n', 'é', '中', '文', 'Ω', 'e\u0301', 'x'];
const ATTRS = {
  bold: [true, null],
  italic: [true, false, null],
  color: ['#f00', '#0f0', null],
  size: [12, '12px', 1.5, null],
  link: ['https://example.com/', null],
  font: [{ family: 'serif' }, null],
  list: ['ordered', 'bullet', null],
};
const EMBEDS = [{ image: 'a.png' }, { image: 'b.png' }, { formula: 'x^2' }, { video: { src: 'v.mp4' } }];

function randText(pieces, max) {
  let s = '';
  for (let n = int(1, max); n > 0; n--) s += pick(pieces);
  return s;
}

function randAttrs(nulls) {
  if (chance(0.45)) return undefined;
  const out = {};
  for (let n = int(1, 3); n > 0; n--) {
    const key = pick(Object.keys(ATTRS));
    let value = pick(ATTRS[key]);
    if (value === null && !nulls) value = ATTRS[key][0];
    out[key] = value;
  }
  return out;
}

function withAttrs(op, attrs) {
  if (attrs !== undefined) op.attributes = attrs;
  return op;
}

function randDoc(pieces, nulls) {
  const doc = new Delta();
  for (let n = int(0, 6); n > 0; n--) {
    if (chance(0.15)) doc.insert(pick(EMBEDS), randAttrs(nulls));
    else doc.insert(randText(pieces, 6), randAttrs(nulls));
  }
  return doc.ops;
}

// validAt[p]: position p of the delta does not fall inside a surrogate pair.
function validPositions(ops) {
  let units = '';
  for (const op of ops) {
    if (typeof op.insert === 'string') units += op.insert;
    else units += 'x'.repeat(Delta.Op.length(op));
  }
  const valid = [];
  for (let p = 0; p <= units.length; p++) {
    const hi = units.charCodeAt(p - 1);
    const lo = units.charCodeAt(p);
    valid.push(!(hi >= 0xd800 && hi <= 0xdbff && lo >= 0xdc00 && lo <= 0xdfff));
  }
  return valid;
}

function randInsert(pieces) {
  if (chance(0.2)) return withAttrs({ insert: pick(EMBEDS) }, randAttrs(true));
  return withAttrs({ insert: randText(pieces, 4) }, randAttrs(true));
}

// An op made against `base`: retains and deletes end on valid positions.
function randOpOn(base, pieces) {
  const valid = validPositions(base);
  const len = valid.length - 1;
  const normal = chance(0.7);
  const builder = new Delta();
  const raw = [];
  const add = (op) => (normal ? builder.push(op) : raw.push(op));
  let pos = 0;
  for (let steps = int(1, 6); steps > 0; steps--) {
    const roll = rng();
    if (roll < 0.35) {
      add(randInsert(pieces));
      continue;
    }
    const ends = [];
    for (let k = 1; k <= 6 && pos + k <= len; k++) if (valid[pos + k]) ends.push(k);
    if (ends.length === 0) {
      add(randInsert(pieces));
      continue;
    }
    const k = pick(ends);
    if (roll < 0.6) add({ retain: k });
    else if (roll < 0.8) add(withAttrs({ retain: k }, randAttrs(true) ?? { bold: true }));
    else add({ delete: k });
    pos += k;
  }
  if (chance(0.25) && pos < len) add({ retain: len - pos });
  else if (chance(0.05)) add({ retain: len - pos + int(1, 3) });
  const ops = normal ? builder.ops : raw;
  return normal ? new Delta(ops).chop().ops : ops;
}

// Any op sequence at all, BMP text only; may hold zero-length ops.
function randWild(zeroRate) {
  const ops = [];
  for (let n = int(0, 7); n > 0; n--) {
    const roll = rng();
    const zero = chance(zeroRate);
    if (roll < 0.35) {
      ops.push(zero ? { insert: '' } : randInsert(BMP_PIECES));
    } else if (roll < 0.55) {
      ops.push({ retain: zero ? 0 : int(1, 8) });
    } else if (roll < 0.75) {
      ops.push(withAttrs({ retain: zero ? 0 : int(1, 8) }, randAttrs(true) ?? { italic: true }));
    } else {
      ops.push({ delete: zero ? 0 : int(1, 8) });
    }
  }
  return ops;
}

// Inputs reach the algorithms as parsed wire JSON, like on a server: fresh
// objects, no shared references (AttributeMap.invert compares with ===).
const wire = (x) => JSON.parse(JSON.stringify(x));

const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

// `attributes: {}` means the same as none; the Rust type drops it.
function canonical(ops) {
  return ops.map((op) => {
    const out = { ...op };
    if (out.attributes !== undefined && Object.keys(out.attributes).length === 0) delete out.attributes;
    if (typeof out.insert === 'string' && LONE_SURROGATE.test(out.insert)) {
      throw new Error(`case generator split a surrogate pair: ${JSON.stringify(ops)}`);
    }
    return out;
  });
}

const out = [];
for (let i = 0; i < count; i++) {
  const kind = chance(0.75) ? 'doc' : 'wild';
  let doc, a, b, c;
  if (kind === 'doc') {
    doc = randDoc(ALL_PIECES, chance(0.2));
    a = randOpOn(doc, ALL_PIECES);
    b = randOpOn(doc, ALL_PIECES);
    c = randOpOn(new Delta(wire(doc)).compose(new Delta(wire(a))).ops, ALL_PIECES);
  } else {
    const zeroRate = pick([0, 0.05, 0.3]);
    doc = chance(0.5) ? randDoc(BMP_PIECES, true) : randWild(zeroRate);
    a = randWild(zeroRate);
    b = randWild(zeroRate);
    c = randWild(zeroRate);
  }
  const len = new Delta(wire(doc)).length() + 3;
  const positions = [0, int(0, len), int(0, len), len];
  const start = int(0, len);
  const range = { index: start, length: int(0, 3), name: 'ann' };
  const D = (x) => new Delta(wire(x));
  const result = {
    doc_a: canonical(D(doc).compose(D(a)).ops),
    a_c: canonical(D(a).compose(D(c)).ops),
    // Composing two ops made against the same document is meaningless but
    // legal; with astral text it could split a pair, so only wild cases.
    a_b: kind === 'wild' ? canonical(D(a).compose(D(b)).ops) : null,
    b_a: kind === 'wild' ? canonical(D(b).compose(D(a)).ops) : null,
    t_ab_true: canonical(D(a).transform(D(b), true).ops),
    t_ab_false: canonical(D(a).transform(D(b), false).ops),
    t_ba_true: canonical(D(b).transform(D(a), true).ops),
    t_ba_false: canonical(D(b).transform(D(a), false).ops),
    tp: positions.map((p) => [p, D(a).transformPosition(p, true), D(a).transformPosition(p, false)]),
    inv: canonical(D(a).invert(D(doc)).ops),
    presence_own: type.transformPresence(wire(range), D(a), true),
    presence_other: type.transformPresence(wire(range), D(a), false),
  };
  // rich-text's type functions are thin wrappers; check here that they are
  // exactly what the Rust side relies on (apply = compose, transform(a, b,
  // side) = b.transform(a, side == 'left')), so the cases need not carry them.
  const same = (x, y, what) => {
    if (JSON.stringify(x) !== JSON.stringify(y)) throw new Error(`rich-text ${what} differs: case ${i}`);
  };
  same(canonical(type.apply(wire(doc), wire(a)).ops), result.doc_a, 'apply');
  same(canonical(type.transform(wire(a), wire(b), 'left').ops), result.t_ba_true, 'transform left');
  same(canonical(type.transform(wire(a), wire(b), 'right').ops), result.t_ba_false, 'transform right');
  out.push(JSON.stringify({ i, kind, doc, a, b, c, range, result }));
  if (out.length >= 500) {
    process.stdout.write(out.join('\n') + '\n');
    out.length = 0;
  }
}
if (out.length) process.stdout.write(out.join('\n') + '\n');
