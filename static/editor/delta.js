// Quill Delta operations (the rich-text OT type), as plain functions over op
// arrays. They follow quill-delta 4.2.2 step by step so that this page and
// the real npm clients transform identically. Lengths are JavaScript string
// lengths: UTF-16 code units, as on the wire.

/** Length of one op in UTF-16 units (an embed counts 1). */
export function opLength(op) {
  if (typeof op.delete === 'number') return op.delete;
  if (typeof op.retain === 'number') return op.retain;
  return typeof op.insert === 'string' ? op.insert.length : 1;
}

function isObject(v) {
  return v !== null && typeof v === 'object';
}

/** Deep equality of JSON values (attribute maps, embeds, ops). */
export function isEqual(a, b) {
  if (a === b) return true;
  if (!isObject(a) || !isObject(b)) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  if (ka.length !== kb.length) return false;
  return ka.every((k) => Object.prototype.hasOwnProperty.call(b, k) && isEqual(a[k], b[k]));
}

/** Appends `newOp` to `ops` in normal form (quill-delta `push`). */
export function push(ops, newOp) {
  let index = ops.length;
  let lastOp = ops[index - 1];
  newOp = { ...newOp };
  if (isObject(lastOp)) {
    if (typeof newOp.delete === 'number' && typeof lastOp.delete === 'number') {
      ops[index - 1] = { delete: lastOp.delete + newOp.delete };
      return ops;
    }
    // An insert never follows a delete: it goes in front of it.
    if (typeof lastOp.delete === 'number' && newOp.insert != null) {
      index -= 1;
      lastOp = ops[index - 1];
      if (!isObject(lastOp)) {
        ops.unshift(newOp);
        return ops;
      }
    }
    if (isEqual(newOp.attributes, lastOp.attributes)) {
      if (typeof newOp.insert === 'string' && typeof lastOp.insert === 'string') {
        ops[index - 1] = { insert: lastOp.insert + newOp.insert };
        if (isObject(newOp.attributes)) ops[index - 1].attributes = newOp.attributes;
        return ops;
      }
      if (typeof newOp.retain === 'number' && typeof lastOp.retain === 'number') {
        ops[index - 1] = { retain: lastOp.retain + newOp.retain };
        if (isObject(newOp.attributes)) ops[index - 1].attributes = newOp.attributes;
        return ops;
      }
    }
  }
  if (index === ops.length) ops.push(newOp);
  else ops.splice(index, 0, newOp);
  return ops;
}

/** A builder for ops, dropping empty pieces like quill-delta's. */
export class Builder {
  constructor() {
    this.ops = [];
  }
  insert(value, attributes) {
    if (typeof value === 'string' && value.length === 0) return this;
    const op = { insert: value };
    if (isObject(attributes) && Object.keys(attributes).length > 0) op.attributes = attributes;
    push(this.ops, op);
    return this;
  }
  retain(n, attributes) {
    if (n <= 0) return this;
    const op = { retain: n };
    if (isObject(attributes) && Object.keys(attributes).length > 0) op.attributes = attributes;
    push(this.ops, op);
    return this;
  }
  delete(n) {
    if (n <= 0) return this;
    push(this.ops, { delete: n });
    return this;
  }
  chop() {
    chop(this.ops);
    return this.ops;
  }
}

/** Removes a final plain retain. */
export function chop(ops) {
  const last = ops[ops.length - 1];
  if (last && typeof last.retain === 'number' && !last.attributes) ops.pop();
  return ops;
}

class Iterator {
  constructor(ops) {
    this.ops = ops;
    this.index = 0;
    this.offset = 0;
  }
  hasNext() {
    return this.peekLength() < Infinity;
  }
  next(length = Infinity) {
    const nextOp = this.ops[this.index];
    if (!nextOp) return { retain: Infinity };
    const offset = this.offset;
    const opLen = opLength(nextOp);
    if (length >= opLen - offset) {
      length = opLen - offset;
      this.index += 1;
      this.offset = 0;
    } else {
      this.offset += length;
    }
    if (typeof nextOp.delete === 'number') return { delete: length };
    const out = {};
    if (nextOp.attributes) out.attributes = nextOp.attributes;
    if (typeof nextOp.retain === 'number') out.retain = length;
    else if (typeof nextOp.insert === 'string') out.insert = nextOp.insert.substr(offset, length);
    else out.insert = nextOp.insert;
    return out;
  }
  peek() {
    return this.ops[this.index];
  }
  peekLength() {
    const op = this.ops[this.index];
    return op ? opLength(op) - this.offset : Infinity;
  }
  peekType() {
    const op = this.ops[this.index];
    if (!op) return 'retain';
    if (typeof op.delete === 'number') return 'delete';
    if (typeof op.retain === 'number') return 'retain';
    return 'insert';
  }
  rest() {
    if (!this.hasNext()) return [];
    if (this.offset === 0) return this.ops.slice(this.index);
    const { offset, index } = this;
    const next = this.next();
    const rest = this.ops.slice(this.index);
    this.offset = offset;
    this.index = index;
    return [next].concat(rest);
  }
}

function composeAttributes(a, b, keepNull) {
  if (!isObject(a)) a = {};
  if (!isObject(b)) b = {};
  let attributes = JSON.parse(JSON.stringify(b));
  if (!keepNull) {
    attributes = Object.keys(attributes).reduce((copy, key) => {
      if (attributes[key] != null) copy[key] = attributes[key];
      return copy;
    }, {});
  }
  for (const key in a) {
    if (a[key] !== undefined && b[key] === undefined) attributes[key] = a[key];
  }
  return Object.keys(attributes).length > 0 ? attributes : undefined;
}

function transformAttributes(a, b, priority) {
  if (!isObject(a)) return b;
  if (!isObject(b)) return undefined;
  if (!priority) return b;
  const attributes = Object.keys(b).reduce((attrs, key) => {
    if (a[key] === undefined) attrs[key] = b[key];
    return attrs;
  }, {});
  return Object.keys(attributes).length > 0 ? attributes : undefined;
}

/** `a` then `b` as one op (quill-delta `a.compose(b)`). */
export function compose(a, b) {
  const thisIter = new Iterator(a);
  const otherIter = new Iterator(b);
  const ops = [];
  const firstOther = otherIter.peek();
  if (firstOther != null && typeof firstOther.retain === 'number' && firstOther.attributes == null) {
    let firstLeft = firstOther.retain;
    while (thisIter.peekType() === 'insert' && thisIter.peekLength() <= firstLeft) {
      firstLeft -= thisIter.peekLength();
      ops.push(thisIter.next());
    }
    if (firstOther.retain - firstLeft > 0) otherIter.next(firstOther.retain - firstLeft);
  }
  while (thisIter.hasNext() || otherIter.hasNext()) {
    if (otherIter.peekType() === 'insert') {
      push(ops, otherIter.next());
    } else if (thisIter.peekType() === 'delete') {
      push(ops, thisIter.next());
    } else {
      const length = Math.min(thisIter.peekLength(), otherIter.peekLength());
      const thisOp = thisIter.next(length);
      const otherOp = otherIter.next(length);
      if (typeof otherOp.retain === 'number') {
        const newOp = {};
        if (typeof thisOp.retain === 'number') newOp.retain = length;
        else newOp.insert = thisOp.insert;
        const attributes = composeAttributes(
          thisOp.attributes,
          otherOp.attributes,
          typeof thisOp.retain === 'number',
        );
        if (attributes) newOp.attributes = attributes;
        push(ops, newOp);
        if (!otherIter.hasNext() && isEqual(ops[ops.length - 1], newOp)) {
          const rest = thisIter.rest();
          if (rest.length > 0) {
            push(ops, rest[0]);
            ops.push(...rest.slice(1));
          }
          return chop(ops);
        }
      } else if (typeof otherOp.delete === 'number' && typeof thisOp.retain === 'number') {
        push(ops, otherOp);
      }
    }
  }
  return chop(ops);
}

/**
 * `b` rebased onto `a` (quill-delta `a.transform(b, priority)`): with
 * priority, `a` came first at an insert–insert tie.
 */
export function transform(a, b, priority) {
  const thisIter = new Iterator(a);
  const otherIter = new Iterator(b);
  const out = new Builder();
  while (thisIter.hasNext() || otherIter.hasNext()) {
    if (thisIter.peekType() === 'insert' && (priority || otherIter.peekType() !== 'insert')) {
      out.retain(opLength(thisIter.next()));
    } else if (otherIter.peekType() === 'insert') {
      push(out.ops, otherIter.next());
    } else {
      const length = Math.min(thisIter.peekLength(), otherIter.peekLength());
      const thisOp = thisIter.next(length);
      const otherOp = otherIter.next(length);
      if (thisOp.delete) continue;
      if (otherOp.delete) push(out.ops, otherOp);
      else out.retain(length, transformAttributes(thisOp.attributes, otherOp.attributes, priority));
    }
  }
  return out.chop();
}

/** Where `index` moves to over `ops` (quill-delta `transformPosition`). */
export function transformPosition(ops, index, priority = false) {
  const iter = new Iterator(ops);
  let offset = 0;
  while (iter.hasNext() && offset <= index) {
    const length = iter.peekLength();
    const type = iter.peekType();
    iter.next();
    if (type === 'delete') {
      index -= Math.min(length, index - offset);
      continue;
    } else if (type === 'insert' && (offset < index || !priority)) {
      index += length;
    }
    offset += length;
  }
  return index;
}

/** The text of a document, with each embed shown as U+FFFC (one unit). */
export function documentText(ops) {
  return ops.map((op) => (typeof op.insert === 'string' ? op.insert : '\ufffc')).join('');
}

function isLowSurrogate(text, i) {
  const c = text.charCodeAt(i);
  return c >= 0xdc00 && c <= 0xdfff;
}

/**
 * The op that turns `before` into `after` (plain text): one replaced span
 * found by common prefix and suffix, never cutting a surrogate pair.
 */
export function diffText(before, after) {
  let start = 0;
  const max = Math.min(before.length, after.length);
  while (start < max && before.charCodeAt(start) === after.charCodeAt(start)) start++;
  if (start > 0 && start < before.length && isLowSurrogate(before, start)) start--;
  let endB = before.length;
  let endA = after.length;
  while (endB > start && endA > start && before.charCodeAt(endB - 1) === after.charCodeAt(endA - 1)) {
    endB--;
    endA--;
  }
  if (endB < before.length && isLowSurrogate(before, endB)) {
    endB++;
    endA++;
  }
  return new Builder()
    .retain(start)
    .delete(endB - start)
    .insert(after.slice(start, endA))
    .chop();
}
