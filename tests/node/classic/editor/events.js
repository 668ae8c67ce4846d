// Node's `events` module for the browser bundle. sharedb's client requires
// it (browserify used to supply it); the bundler maps `events` here. sharedb
// mixes the prototype in with for…in and reads `_eventsCount`, so this is a
// plain constructor with enumerable methods that keeps that counter.

export function EventEmitter() {
  this._events = Object.create(null);
  this._eventsCount = 0;
}

function listenersOf(self, name) {
  if (!self._events) {
    self._events = Object.create(null);
    self._eventsCount = 0;
  }
  return self._events[name];
}

EventEmitter.prototype.on = function on(name, fn) {
  const list = listenersOf(this, name);
  if (list) list.push(fn);
  else {
    this._events[name] = [fn];
    this._eventsCount++;
  }
  return this;
};

EventEmitter.prototype.addListener = EventEmitter.prototype.on;

EventEmitter.prototype.once = function once(name, fn) {
  const self = this;
  function wrapper(...args) {
    self.removeListener(name, wrapper);
    return fn.apply(self, args);
  }
  wrapper.listener = fn;
  return this.on(name, wrapper);
};

EventEmitter.prototype.removeListener = function removeListener(name, fn) {
  const list = listenersOf(this, name);
  if (!list) return this;
  const at = list.findIndex((l) => l === fn || l.listener === fn);
  if (at >= 0) list.splice(at, 1);
  if (list.length === 0) {
    delete this._events[name];
    this._eventsCount--;
  }
  return this;
};

EventEmitter.prototype.off = EventEmitter.prototype.removeListener;

EventEmitter.prototype.removeAllListeners = function removeAllListeners(name) {
  if (name === undefined) {
    this._events = Object.create(null);
    this._eventsCount = 0;
  } else if (listenersOf(this, name)) {
    delete this._events[name];
    this._eventsCount--;
  }
  return this;
};

EventEmitter.prototype.emit = function emit(name, ...args) {
  const list = listenersOf(this, name);
  if (!list) {
    // As in Node: an unhandled 'error' event throws.
    if (name === 'error') throw args[0] instanceof Error ? args[0] : new Error(`Unhandled error: ${args[0]}`);
    return false;
  }
  for (const fn of list.slice()) fn.apply(this, args);
  return true;
};

EventEmitter.prototype.listeners = function listeners(name) {
  return (listenersOf(this, name) ?? []).map((l) => l.listener ?? l);
};

EventEmitter.prototype.listenerCount = function listenerCount(name) {
  return listenersOf(this, name)?.length ?? 0;
};

// Node warns past this many listeners; there is nothing to warn about here.
EventEmitter.prototype.setMaxListeners = function setMaxListeners() {
  return this;
};

export default EventEmitter;
