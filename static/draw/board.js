/*
 * The board model, replayed exactly as the server does it (see
 * protocol/src/draw.rs): a drawing move adds the segment from the pen's
 * previous point; a stroke runs from pen-down to pen-up; undo removes the
 * author's most recent stroke and lifts the asking pen. Pens are keyed by
 * socket id, strokes by author (the socket id unless the server named
 * another).
 */
(function (global) {
  'use strict';

  function quantize(v) {
    return Math.round(v * 10) / 10;
  }

  function Board() {
    this.reset();
  }

  Board.prototype.reset = function () {
    this.strokes = new Map(); // id -> {id, by, colour, points: [x0, y0, x1, y1, …]}
    this.byAuthor = new Map(); // author -> [stroke ids, oldest first]
    this.pens = new Map(); // author -> {x, y, open: stroke id | null}
    this.nextId = 0;
    this.segments = 0;
  };

  Board.prototype._insert = function (stroke) {
    this.nextId = Math.max(this.nextId, stroke.id + 1);
    this.segments += stroke.points.length / 2 - 1;
    if (!this.byAuthor.has(stroke.by)) this.byAuthor.set(stroke.by, []);
    this.byAuthor.get(stroke.by).push(stroke.id);
    this.strokes.set(stroke.id, stroke);
  };

  /**
   * Moves pen `penId`; a new stroke belongs to `author` (default: the pen).
   * Returns the segment added ({x0, y0, x1, y1, colour}) or null.
   */
  Board.prototype.move = function (penId, x, y, drawing, colour, author) {
    if (author === undefined) author = penId;
    x = quantize(x);
    y = quantize(y);
    var pen = this.pens.get(penId);
    if (!pen) {
      pen = { x: null, y: null, open: null };
      this.pens.set(penId, pen);
    }
    var had = pen.x !== null;
    var fx = pen.x;
    var fy = pen.y;
    pen.x = x;
    pen.y = y;
    if (!drawing) {
      pen.open = null;
      return null;
    }
    if (!had) return null;
    var stroke = pen.open === null ? undefined : this.strokes.get(pen.open);
    if (stroke) {
      stroke.points.push(x, y);
      this.segments++;
    } else {
      stroke = { id: this.nextId, by: author, colour: colour, points: [fx, fy, x, y] };
      pen.open = stroke.id;
      this._insert(stroke);
    }
    return { x0: fx, y0: fy, x1: x, y1: y, colour: stroke.colour };
  };

  /** Removes `author`'s last stroke and lifts pen `penId` (default: the author). */
  Board.prototype.undo = function (author, penId) {
    var pen = this.pens.get(penId === undefined ? author : penId);
    if (pen) pen.open = null;
    var ids = this.byAuthor.get(author) || [];
    while (ids.length) {
      var id = ids.pop();
      var stroke = this.strokes.get(id);
      if (stroke) {
        this.strokes.delete(id);
        this.segments -= stroke.points.length / 2 - 1;
        return stroke;
      }
    }
    return null;
  };

  /** Whether `author` has a stroke on the board. */
  Board.prototype.hasStrokes = function (author) {
    var self = this;
    return (this.byAuthor.get(author) || []).some(function (id) { return self.strokes.has(id); });
  };

  Board.prototype.clear = function () {
    this.strokes = new Map();
    this.byAuthor = new Map();
    this.segments = 0;
    this.pens.forEach(function (pen) { pen.open = null; });
  };

  Board.prototype.leave = function (author) {
    this.pens.delete(author);
  };

  /** Takes one `canvas` part; part 0 starts over. */
  Board.prototype.loadPart = function (part) {
    var self = this;
    if (part.part === 0) {
      this.reset();
      (part.pens || []).forEach(function (p) {
        self.pens.set(p.id, { x: p.x, y: p.y, open: p.stroke === undefined ? null : p.stroke });
      });
    }
    (part.strokes || []).forEach(function (e) {
      var existing = self.strokes.get(e.id);
      if (existing) {
        // A long stroke continues in the next entry, which repeats the joint.
        var more = e.points.slice(2);
        existing.points.push.apply(existing.points, more);
        self.segments += more.length / 2;
      } else if (e.points.length >= 4) {
        self._insert({ id: e.id, by: e.by, colour: e.colour, points: e.points.slice() });
      }
    });
  };

  global.RtBoard = Board;
})(typeof window !== 'undefined' ? window : globalThis);
