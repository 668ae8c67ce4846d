/*
 * rt's drawing page: the shared 2000×1000 board, scaled to the window, with
 * everyone's pointers. Speaks the classic events (mousemove → moving,
 * clientdisconnect) plus canvas, hello/welcome, peers (the list, on joining)
 * and peer (one entry added or changed), clear/cleared, undo/undone.
 */
(function () {
  'use strict';

  var EMIT_EVERY_MS = 25; // the server takes 60 events/s per client
  var LINE_WIDTH = 2;
  // A clear may have crossed our moves on the way when we drew this recently.
  var CLEAR_RACE_MS = 2000;
  // After a refusal, resync once things are quiet (the server warns about
  // rate at most once a second).
  var RESYNC_AFTER_MS = 1100;
  var SYNC_LOG_LIMIT = 5000;

  var paper = document.getElementById('paper');
  var ctx = paper.getContext('2d');
  var boardEl = document.getElementById('board');
  var cursorsEl = document.getElementById('cursors');
  var statusEl = document.getElementById('status');
  var peersEl = document.getElementById('peers');
  var nameInput = document.getElementById('name');
  var colourInput = document.getElementById('colour');

  var W = paper.width;
  var H = paper.height;
  var board = new RtBoard();
  var peers = new Map(); // id -> {name, colour}
  var cursors = new Map(); // id -> element
  var socket = io.connect('/');

  var saved = {};
  try {
    saved = JSON.parse(localStorage.getItem('rt-draw') || '{}') || {};
  } catch (e) {
    saved = {};
  }
  if (saved.name) nameInput.value = saved.name;
  // Our author key: kept for this tab (across reconnects and reloads), so
  // strokes drawn before a reconnect can still be undone. It is a secret;
  // others see only the author id the server derives from it.
  var key = null;
  try {
    key = sessionStorage.getItem('rt-draw-key');
  } catch (e) {
    key = null;
  }
  if (!key || !/^[A-Za-z0-9_-]{16,64}$/.test(key)) {
    var bytes = new Uint8Array(16);
    crypto.getRandomValues(bytes);
    key = Array.prototype.map.call(bytes, function (b) { return (b + 256).toString(16).slice(1); }).join('');
    try {
      sessionStorage.setItem('rt-draw-key', key);
    } catch (e) {
      // Without storage the key lasts as long as the page.
    }
  }
  var myAuthor = null; // from `welcome`; we draw only once we know it
  // Until the user picks a colour, the server's choice (distinct per person) is shown.
  var chosenColour = !!saved.colour;
  if (saved.colour) colourInput.value = saved.colour;

  function status(text, isError) {
    statusEl.textContent = text;
    statusEl.classList.toggle('error', !!isError);
  }

  function fit() {
    var avail = window.innerWidth - 16;
    var availH = window.innerHeight - boardEl.getBoundingClientRect().top - 40;
    var scale = Math.max(0.1, Math.min(avail / W, availH / H));
    boardEl.style.width = Math.floor(W * scale) + 'px';
    boardEl.style.height = Math.floor(H * scale) + 'px';
  }
  window.addEventListener('resize', fit);

  function segment(x0, y0, x1, y1, colour) {
    ctx.strokeStyle = colour;
    ctx.lineWidth = LINE_WIDTH;
    ctx.lineCap = 'round';
    ctx.beginPath();
    ctx.moveTo(x0, y0);
    ctx.lineTo(x1, y1);
    ctx.stroke();
  }

  function redraw() {
    ctx.clearRect(0, 0, W, H);
    board.strokes.forEach(function (s) {
      ctx.strokeStyle = s.colour;
      ctx.lineWidth = LINE_WIDTH;
      ctx.lineCap = 'round';
      ctx.lineJoin = 'round';
      ctx.beginPath();
      ctx.moveTo(s.points[0], s.points[1]);
      for (var i = 2; i < s.points.length; i += 2) ctx.lineTo(s.points[i], s.points[i + 1]);
      ctx.stroke();
    });
  }

  function authorOf(id) {
    var p = peers.get(id);
    return (p && p.author) || id;
  }

  function colourOf(id) {
    var p = peers.get(id);
    return p ? p.colour : '#000000';
  }

  function showCursor(id, x, y) {
    var el = cursors.get(id);
    if (!el) {
      el = document.createElement('div');
      el.className = 'cursor';
      el.appendChild(document.createElement('span'));
      cursorsEl.appendChild(el);
      cursors.set(id, el);
    }
    var p = peers.get(id) || { name: id, colour: '#000000' };
    el.style.left = (x / W) * 100 + '%';
    el.style.top = (y / H) * 100 + '%';
    el.style.background = p.colour;
    el.firstChild.style.background = p.colour;
    el.firstChild.textContent = p.name;
  }

  function renderPeers() {
    peersEl.textContent = '';
    peers.forEach(function (p, id) {
      var li = document.createElement('li');
      li.textContent = p.name;
      li.style.setProperty('--c', p.colour);
      if (id === socket.id) li.className = 'me';
      peersEl.appendChild(li);
      var el = cursors.get(id);
      if (el) {
        el.style.background = p.colour;
        el.firstChild.style.background = p.colour;
        el.firstChild.textContent = p.name;
      }
    });
  }

  function sayHello() {
    var hello = {};
    if (chosenColour) hello.colour = colourInput.value;
    var name = nameInput.value.trim();
    if (name) hello.name = name;
    localStorage.setItem('rt-draw', JSON.stringify(hello));
    hello.key = key;
    socket.emit('hello', hello);
  }

  /*
   * Our own moves are drawn at once; the server orders them among everyone
   * else's. Where that order matters (a clear crossing our moves, a refused
   * move or undo), we ask for the canvas again with `sync`. Moves sent
   * after the request are not in the canvas that answers it, so they are
   * kept and replayed on top of it.
   */
  var syncLog = null; // own moves since the pending sync (or join), or null
  var syncAgain = false;
  var resyncTimer = null;
  var lastDrawn = 0;

  function requestSync() {
    if (!socket.connected) return;
    if (syncLog !== null) {
      syncAgain = true;
      return;
    }
    syncLog = [];
    socket.emit('sync');
  }

  function resyncSoon() {
    clearTimeout(resyncTimer);
    resyncTimer = setTimeout(requestSync, RESYNC_AFTER_MS);
  }

  socket.on('connect', function () {
    status('connected');
    // The join snapshot is on its way: it plays the part of a sync.
    syncLog = [];
    syncAgain = false;
    myAuthor = null;
    sayHello();
  });
  socket.on('welcome', function (me) {
    myAuthor = me.author || socket.id;
  });
  socket.on('disconnect', function () {
    status('disconnected; reconnecting…', true);
  });
  socket.on('canvas', function (part) {
    board.loadPart(part);
    if (part.part !== part.parts - 1) return;
    if (syncLog !== null) {
      var me = socket.id;
      syncLog.forEach(function (m) { board.move(me, m.x, m.y, m.drawing, m.colour, myAuthor); });
      syncLog = null;
    }
    redraw();
    if (syncAgain) {
      syncAgain = false;
      requestSync();
    }
  });
  function setPeer(p) {
    peers.set(p.id, { name: p.name, colour: p.colour, author: p.author });
    if (p.id === socket.id && !chosenColour) colourInput.value = p.colour;
  }
  function showOnline() {
    renderPeers();
    status('connected · ' + peers.size + ' online');
  }
  socket.on('peers', function (list) {
    peers = new Map();
    list.forEach(setPeer);
    showOnline();
  });
  socket.on('peer', function (p) {
    setPeer(p);
    showOnline();
  });
  socket.on('moving', function (data) {
    var seg = board.move(data.id, data.x, data.y, data.drawing, colourOf(data.id), authorOf(data.id));
    if (seg) segment(seg.x0, seg.y0, seg.x1, seg.y1, seg.colour);
    showCursor(data.id, data.x, data.y);
  });
  socket.on('clientdisconnect', function (id) {
    board.leave(id);
    var el = cursors.get(id);
    if (el) el.remove();
    cursors.delete(id);
    if (peers.delete(id)) showOnline();
  });
  // A clear counts when the server says so, ours too.
  socket.on('cleared', function () {
    board.clear();
    redraw();
    if (drawing || Date.now() - lastDrawn < CLEAR_RACE_MS) requestSync();
  });
  socket.on('undone', function (ev) {
    // Our own undo was applied when asked: it follows our moves in order,
    // whatever the others do meanwhile.
    if (ev.by === socket.id) return;
    board.undo(ev.author || ev.by, ev.by);
    redraw();
  });
  var DIVERGING = { mousemove: 1, undo: 1, clear: 1, sync: 1 };
  socket.on('error', function (err) {
    status((err && err.message) || 'error', true);
    // A refused sync sends no canvas: stop waiting for it.
    if (err && err.event === 'sync') syncLog = null;
    if (err && (DIVERGING[err.event] || err.code === 'rate-limited' || err.code === 'busy')) {
      resyncSoon();
    }
  });

  // Drawing: what we draw locally is exactly what we send.
  var drawing = false;
  var lastEmit = 0;
  var pending = null;

  function toBoard(ev) {
    var r = paper.getBoundingClientRect();
    var x = ((ev.clientX - r.left) / r.width) * W;
    var y = ((ev.clientY - r.top) / r.height) * H;
    return { x: Math.min(W, Math.max(0, x)), y: Math.min(H, Math.max(0, y)) };
  }

  function send(p, pen) {
    if (!socket.connected || myAuthor === null) return;
    var seg = board.move(socket.id, p.x, p.y, pen, colourInput.value, myAuthor);
    if (seg) segment(seg.x0, seg.y0, seg.x1, seg.y1, seg.colour);
    socket.emit('mousemove', { x: p.x, y: p.y, drawing: pen });
    if (pen) lastDrawn = Date.now();
    if (syncLog !== null) {
      if (syncLog.length < SYNC_LOG_LIMIT) {
        syncLog.push({ x: p.x, y: p.y, drawing: pen, colour: colourInput.value });
      } else {
        // Far behind: start over once this sync is answered.
        syncAgain = true;
      }
    }
    lastEmit = Date.now();
    pending = null;
  }

  paper.addEventListener('pointerdown', function (ev) {
    ev.preventDefault();
    paper.setPointerCapture(ev.pointerId);
    // Pen-down starts from where we are: send the position first.
    send(toBoard(ev), false);
    drawing = true;
  });
  paper.addEventListener('pointermove', function (ev) {
    var p = toBoard(ev);
    if (Date.now() - lastEmit >= EMIT_EVERY_MS) {
      send(p, drawing);
    } else {
      pending = p;
    }
  });
  function penUp(ev) {
    if (!drawing) return;
    var p = pending || toBoard(ev);
    if (pending) send(p, true);
    drawing = false;
    send(p, false);
  }
  paper.addEventListener('pointerup', penUp);
  paper.addEventListener('pointercancel', penUp);
  setInterval(function () {
    if (pending && Date.now() - lastEmit >= EMIT_EVERY_MS) send(pending, drawing);
  }, EMIT_EVERY_MS);

  function undo() {
    if (!socket.connected || myAuthor === null || !board.hasStrokes(myAuthor)) return;
    board.undo(myAuthor, socket.id);
    redraw();
    socket.emit('undo');
  }
  document.getElementById('undo').addEventListener('click', undo);
  document.getElementById('clear').addEventListener('click', function () {
    if (!socket.connected || !window.confirm('Clear the board for everyone?')) return;
    socket.emit('clear');
  });
  document.addEventListener('keydown', function (ev) {
    if ((ev.ctrlKey || ev.metaKey) && ev.key === 'z' && ev.target.tagName !== 'INPUT') {
      ev.preventDefault();
      undo();
    }
  });
  nameInput.addEventListener('change', sayHello);
  colourInput.addEventListener('change', function () {
    chosenColour = true;
    sayHello();
  });

  fit();
})();
