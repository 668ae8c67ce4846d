/*
 * rt's small Socket.IO client for the browser: Socket.IO v5 over Engine.IO v4
 * on the WebSocket transport, with reconnection. A classic script: it
 * defines the global `io`, as the classic drawing page expects.
 *
 *   var socket = io.connect('/');          // or io(), io('http://host:port')
 *   socket.on('connect', function () { console.log(socket.id); });
 *   socket.on('moving', function (data) { … });
 *   socket.emit('mousemove', {x: 1, y: 2, drawing: true});
 *
 * Supported: io()/io.connect(url, opts), on/once/off, emit (with an
 * acknowledgement callback as the last argument), id, connected,
 * disconnect()/close(), connect() to reconnect by hand, namespaces in the
 * URL path, opts.path/auth/query/reconnection/reconnectionDelay/
 * reconnectionDelayMax. Not supported: long-polling, binary attachments.
 */
(function (global) {
  'use strict';

  var QUEUE_LIMIT = 1000; // emits kept while disconnected, oldest dropped first
  var RESERVED = { connect: 1, connect_error: 1, disconnect: 1, disconnecting: 1 };

  function Emitter() {
    this._handlers = {};
  }
  Emitter.prototype.on = function (name, fn) {
    (this._handlers[name] = this._handlers[name] || []).push(fn);
    return this;
  };
  Emitter.prototype.addEventListener = Emitter.prototype.on;
  Emitter.prototype.once = function (name, fn) {
    var self = this;
    function once() {
      self.off(name, once);
      fn.apply(self, arguments);
    }
    once.fn = fn;
    return this.on(name, once);
  };
  Emitter.prototype.off = function (name, fn) {
    if (name === undefined) {
      this._handlers = {};
    } else if (fn === undefined) {
      delete this._handlers[name];
    } else {
      this._handlers[name] = (this._handlers[name] || []).filter(function (h) {
        return h !== fn && h.fn !== fn;
      });
    }
    return this;
  };
  Emitter.prototype.removeListener = Emitter.prototype.off;
  Emitter.prototype.listeners = function (name) {
    return (this._handlers[name] || []).slice();
  };
  Emitter.prototype._fire = function (name, args) {
    var handlers = this.listeners(name);
    for (var i = 0; i < handlers.length; i++) {
      try {
        handlers[i].apply(this, args);
      } catch (e) {
        // A failing handler must not stop the others, nor the connection.
        setTimeout(function () { throw e; });
      }
    }
  };

  /** Where to connect: the WebSocket URL and the namespace. */
  function target(uri, opts) {
    var loc = global.location;
    var base = uri === undefined || uri === null ? '/' : String(uri);
    var url = new URL(base, loc ? loc.href : 'http://localhost/');
    var nsp = url.pathname && url.pathname !== '' ? url.pathname : '/';
    var path = opts.path || '/socket.io';
    if (path.charAt(path.length - 1) !== '/') path += '/';
    var scheme = url.protocol === 'https:' ? 'wss:' : 'ws:';
    var query = 'EIO=4&transport=websocket';
    var extra = opts.query || {};
    if (typeof extra === 'string') {
      query += '&' + extra.replace(/^\?/, '');
    } else {
      Object.keys(extra).forEach(function (k) {
        query += '&' + encodeURIComponent(k) + '=' + encodeURIComponent(extra[k]);
      });
    }
    return { ws: scheme + '//' + url.host + path + '?' + query, nsp: nsp };
  }

  /** One socket on one namespace, with its own WebSocket. */
  function Socket(uri, opts) {
    Emitter.call(this);
    opts = opts || {};
    var t = target(uri, opts);
    this.id = undefined;
    this.connected = false;
    this.disconnected = true;
    this.nsp = t.nsp;
    this._url = t.ws;
    this._opts = opts;
    this._queue = [];
    this._acks = {};
    this._nextAck = 0;
    this._attempts = 0;
    this._ws = null;
    this._timer = null;
    this._watchdog = null;
    this._stopped = false;
    this.io = { opts: opts, engine: { transport: { name: 'websocket' } } };
    if (opts.autoConnect !== false) this.connect();
  }
  Socket.prototype = Object.create(Emitter.prototype);
  Socket.prototype.constructor = Socket;

  Object.defineProperty(Socket.prototype, 'active', {
    get: function () { return !this._stopped; },
  });

  Socket.prototype.connect = function () {
    this._stopped = false;
    if (this._ws) return this;
    clearTimeout(this._timer);
    var self = this;
    var ws;
    try {
      ws = new WebSocket(this._url);
    } catch (e) {
      this._fire('connect_error', [e]);
      this._retry();
      return this;
    }
    this._ws = ws;
    ws.onmessage = function (ev) {
      if (self._ws === ws && typeof ev.data === 'string') self._onFrame(ev.data);
    };
    ws.onclose = function () {
      if (self._ws === ws) self._lost('transport close');
    };
    ws.onerror = function () {
      if (self._ws === ws && !self.connected) self._fire('connect_error', [new Error('websocket error')]);
    };
    return this;
  };
  Socket.prototype.open = Socket.prototype.connect;

  Socket.prototype._send = function (frame) {
    if (this._ws && this._ws.readyState === 1) this._ws.send(frame);
  };

  Socket.prototype._packet = function (type, ackId, data) {
    var out = '4' + type;
    if (this.nsp !== '/') out += this.nsp + ',';
    if (ackId !== undefined) out += ackId;
    if (data !== undefined) out += JSON.stringify(data);
    return out;
  };

  Socket.prototype._onFrame = function (frame) {
    var kind = frame.charAt(0);
    var rest = frame.slice(1);
    if (kind === '0') {
      var open = JSON.parse(rest);
      this._heartbeat = (open.pingInterval || 25000) + (open.pingTimeout || 20000);
      this._watch();
      var auth = this._opts.auth;
      if (typeof auth === 'function') {
        var self = this;
        auth(function (a) { self._send(self._packet('0', undefined, a)); });
      } else {
        this._send(this._packet('0', undefined, auth));
      }
    } else if (kind === '2') {
      this._watch();
      this._send('3' + rest);
    } else if (kind === '1') {
      this._drop();
      this._lost('transport close');
    } else if (kind === '4') {
      this._onPacket(rest);
    }
  };

  /** Closes the connection if the server's pings stop. */
  Socket.prototype._watch = function () {
    var self = this;
    clearTimeout(this._watchdog);
    this._watchdog = setTimeout(function () {
      self._drop();
      self._lost('ping timeout');
    }, this._heartbeat);
  };

  Socket.prototype._onPacket = function (text) {
    var type = text.charAt(0);
    var rest = text.slice(1);
    var nsp = '/';
    if (rest.charAt(0) === '/') {
      var comma = rest.indexOf(',');
      nsp = comma < 0 ? rest : rest.slice(0, comma);
      rest = comma < 0 ? '' : rest.slice(comma + 1);
    }
    if (nsp !== this.nsp) return;
    var digits = /^\d*/.exec(rest)[0];
    var ackId = digits ? Number(digits) : undefined;
    rest = rest.slice(digits.length);
    var data;
    try {
      data = rest ? JSON.parse(rest) : undefined;
    } catch (e) {
      return;
    }
    if (type === '0') {
      this.id = data && data.sid;
      this.connected = true;
      this.disconnected = false;
      this._attempts = 0;
      this._fire('connect', []);
      var queued = this._queue;
      this._queue = [];
      for (var i = 0; i < queued.length; i++) this._send(queued[i]);
    } else if (type === '2' && Array.isArray(data) && data.length) {
      var args = data.slice(1);
      if (ackId !== undefined) args.push(this._acker(ackId));
      this._fire(String(data[0]), args);
    } else if (type === '3' && ackId !== undefined) {
      var fn = this._acks[ackId];
      delete this._acks[ackId];
      if (fn) fn.apply(this, Array.isArray(data) ? data : []);
    } else if (type === '4') {
      this._fire('connect_error', [new Error((data && data.message) || 'connection refused')]);
    } else if (type === '1') {
      // rt's server ends a socket only when it fell behind (or the board is
      // full): unlike socket.io-client, come back after the usual backoff.
      this._drop();
      this._lost('io server disconnect');
    }
  };

  Socket.prototype._acker = function (id) {
    var self = this;
    var sent = false;
    return function () {
      if (sent) return;
      sent = true;
      self._send(self._packet('3', id, Array.prototype.slice.call(arguments)));
    };
  };

  Socket.prototype.emit = function (name) {
    if (RESERVED[name]) throw new Error('"' + name + '" is a reserved event name');
    var args = Array.prototype.slice.call(arguments);
    var ackId;
    if (typeof args[args.length - 1] === 'function') {
      ackId = this._nextAck++;
      this._acks[ackId] = args.pop();
    }
    var frame = this._packet('2', ackId, args);
    if (this.connected) {
      this._send(frame);
    } else {
      this._queue.push(frame);
      if (this._queue.length > QUEUE_LIMIT) this._queue.shift();
    }
    return this;
  };
  Socket.prototype.send = function () {
    return this.emit.apply(this, ['message'].concat(Array.prototype.slice.call(arguments)));
  };

  /** Closes the socket for good (until connect() is called). */
  Socket.prototype.disconnect = function () {
    this._stopped = true;
    clearTimeout(this._timer);
    if (this.connected) this._send(this._packet('1'));
    this._send('1');
    this._drop();
    this._lost('io client disconnect');
    return this;
  };
  Socket.prototype.close = Socket.prototype.disconnect;

  Socket.prototype._drop = function () {
    clearTimeout(this._watchdog);
    var ws = this._ws;
    this._ws = null;
    if (ws) {
      ws.onmessage = ws.onclose = ws.onerror = null;
      try { ws.close(); } catch (e) { /* already closed */ }
    }
  };

  Socket.prototype._lost = function (reason) {
    this._drop();
    var was = this.connected;
    this.connected = false;
    this.disconnected = true;
    this._acks = {};
    if (was) this._fire('disconnect', [reason]);
    if (!this._stopped) this._retry();
  };

  /** Reconnects after a randomized, growing delay (1 s doubling to 5 s). */
  Socket.prototype._retry = function () {
    if (this._opts.reconnection === false || this._stopped) return;
    var min = this._opts.reconnectionDelay || 1000;
    var max = this._opts.reconnectionDelayMax || 5000;
    var delay = Math.min(max, min * Math.pow(2, this._attempts));
    delay = Math.min(max, delay * (0.5 + Math.random()));
    this._attempts++;
    var self = this;
    clearTimeout(this._timer);
    this._timer = setTimeout(function () { self.connect(); }, delay);
  };

  function io(uri, opts) {
    if (typeof uri === 'object' && uri !== null) {
      opts = uri;
      uri = undefined;
    }
    return new Socket(uri, opts);
  }
  io.connect = io;
  io.Socket = Socket;
  io.protocol = 5;

  global.io = io;
})(typeof window !== 'undefined' ? window : this);
