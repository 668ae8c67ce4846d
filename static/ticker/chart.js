// The price chart: one symbol's polled prices drawn on a canvas at the
// screen's real pixel density, redrawn on resize, zoom and colour-scheme
// changes.

const PAD = { top: 14, right: 72, bottom: 26, left: 10 };
const GRID_LINES = 4;

function cssVar(name, fallback) {
  const v = getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  return v || fallback;
}

const timeFmt = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit', second: '2-digit' });

/** Draws `{t, price}` points of one symbol. */
export class PriceChart {
  #canvas;
  #points = [];
  #empty = '';
  #frame = 0;

  /** @param {HTMLCanvasElement} canvas */
  constructor(canvas) {
    this.#canvas = canvas;
    new ResizeObserver(() => this.#request()).observe(canvas);
    window.matchMedia('(prefers-color-scheme: dark)').addEventListener('change', () => this.#request());
    this.#watchDensity();
  }

  // devicePixelRatio changes with zoom or when the window moves to another
  // screen; a resolution media query for the current ratio fires exactly then.
  #watchDensity() {
    const mq = window.matchMedia(`(resolution: ${window.devicePixelRatio}dppx)`);
    mq.addEventListener(
      'change',
      () => {
        this.#request();
        this.#watchDensity();
      },
      { once: true },
    );
  }

  /** Shows `points`, or `emptyText` when there are none. */
  show(points, emptyText) {
    this.#points = points;
    this.#empty = emptyText;
    this.#request();
  }

  #request() {
    if (this.#frame) return;
    this.#frame = requestAnimationFrame(() => {
      this.#frame = 0;
      this.#draw();
    });
  }

  #draw() {
    const canvas = this.#canvas;
    const dpr = window.devicePixelRatio || 1;
    const w = canvas.clientWidth;
    const h = canvas.clientHeight;
    if (w === 0 || h === 0) return;
    const pw = Math.round(w * dpr);
    const ph = Math.round(h * dpr);
    if (canvas.width !== pw || canvas.height !== ph) {
      canvas.width = pw;
      canvas.height = ph;
    }
    const ctx = canvas.getContext('2d');
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, w, h);

    const text = cssVar('--text', '#1b2430');
    const muted = cssVar('--muted', '#4e5b6b');
    const border = cssVar('--border', '#d5dbe3');
    const font = cssVar('--font', 'sans-serif');
    const mono = cssVar('--mono', 'monospace');

    const pts = this.#points;
    if (pts.length === 0) {
      ctx.fillStyle = muted;
      ctx.font = `15px ${font}`;
      ctx.textAlign = 'center';
      ctx.textBaseline = 'middle';
      ctx.fillText(this.#empty, w / 2, h / 2);
      return;
    }

    let lo = Infinity;
    let hi = -Infinity;
    for (const p of pts) {
      lo = Math.min(lo, p.price);
      hi = Math.max(hi, p.price);
    }
    const span = hi - lo || Math.max(Math.abs(hi) * 0.01, 0.01);
    lo -= span * 0.12;
    hi += span * 0.12;

    const fmt = numberFormat(decimalsFor((hi - lo) / GRID_LINES));
    const x0 = PAD.left;
    const x1 = w - PAD.right;
    const y0 = PAD.top;
    const y1 = h - PAD.bottom;
    const t0 = pts[0].t;
    const t1 = pts[pts.length - 1].t;
    const xOf = (t) => (t1 === t0 ? x1 : x0 + ((t - t0) / (t1 - t0)) * (x1 - x0));
    const yOf = (v) => y1 - ((v - lo) / (hi - lo)) * (y1 - y0);

    const first = pts[0].price;
    const last = pts[pts.length - 1].price;
    const lastY = yOf(last);

    // Grid and price axis; labels the latest-price tag would cover are left out.
    ctx.lineWidth = 1;
    ctx.font = `12px ${mono}`;
    ctx.textBaseline = 'middle';
    ctx.textAlign = 'left';
    for (let i = 0; i <= GRID_LINES; i++) {
      const v = lo + ((hi - lo) * i) / GRID_LINES;
      const y = Math.round(yOf(v)) + 0.5;
      ctx.strokeStyle = border;
      ctx.beginPath();
      ctx.moveTo(x0, y);
      ctx.lineTo(x1, y);
      ctx.stroke();
      if (Math.abs(y - lastY) < 18) continue;
      ctx.fillStyle = muted;
      ctx.fillText(fmt.format(v), x1 + 8, y);
    }

    // Time axis: first and last sample.
    ctx.textBaseline = 'alphabetic';
    ctx.fillStyle = muted;
    ctx.textAlign = 'left';
    const start = timeFmt.format(t0);
    const end = timeFmt.format(t1);
    ctx.fillText(start, x0, h - 8);
    if (end !== start) {
      ctx.textAlign = 'right';
      ctx.fillText(end, x1, h - 8);
    }

    const colour = last >= first ? cssVar('--up', '#0f7a3a') : cssVar('--down', '#b3261e');

    // Area under the line, fading out.
    const grad = ctx.createLinearGradient(0, y0, 0, y1);
    grad.addColorStop(0, withAlpha(colour, 0.28));
    grad.addColorStop(1, withAlpha(colour, 0));
    ctx.beginPath();
    ctx.moveTo(xOf(pts[0].t), y1);
    for (const p of pts) ctx.lineTo(xOf(p.t), yOf(p.price));
    ctx.lineTo(xOf(t1), y1);
    ctx.closePath();
    ctx.fillStyle = grad;
    ctx.fill();

    // The line.
    ctx.beginPath();
    pts.forEach((p, i) => (i === 0 ? ctx.moveTo(xOf(p.t), yOf(p.price)) : ctx.lineTo(xOf(p.t), yOf(p.price))));
    ctx.strokeStyle = colour;
    ctx.lineWidth = 2;
    ctx.lineJoin = 'round';
    ctx.stroke();

    // Latest price: a dot and a tag on the axis.
    const lx = xOf(t1);
    const ly = lastY;
    ctx.beginPath();
    ctx.arc(lx, ly, 3.5, 0, Math.PI * 2);
    ctx.fillStyle = colour;
    ctx.fill();
    const label = fmt.format(last);
    ctx.font = `bold 12px ${mono}`;
    const tw = ctx.measureText(label).width;
    ctx.fillStyle = colour;
    roundRect(ctx, x1 + 3, ly - 10, tw + 10, 20, 4);
    ctx.fill();
    ctx.fillStyle = contrastOn(colour, text);
    ctx.textAlign = 'left';
    ctx.textBaseline = 'middle';
    ctx.fillText(label, x1 + 8, ly);
  }
}

// Enough decimals that neighbouring grid labels differ, at least cents.
function decimalsFor(step) {
  if (!(step > 0)) return 2;
  return Math.min(6, Math.max(2, Math.ceil(-Math.log10(step))));
}

const formats = new Map();
function numberFormat(decimals) {
  if (!formats.has(decimals)) {
    formats.set(decimals, new Intl.NumberFormat(undefined, { minimumFractionDigits: decimals, maximumFractionDigits: decimals }));
  }
  return formats.get(decimals);
}

function roundRect(ctx, x, y, w, h, r) {
  ctx.beginPath();
  ctx.moveTo(x + r, y);
  ctx.arcTo(x + w, y, x + w, y + h, r);
  ctx.arcTo(x + w, y + h, x, y + h, r);
  ctx.arcTo(x, y + h, x, y, r);
  ctx.arcTo(x, y, x + w, y, r);
  ctx.closePath();
}

function parseHex(colour) {
  const m = /^#([0-9a-f]{6})$/i.exec(colour);
  if (!m) return null;
  const n = parseInt(m[1], 16);
  return [(n >> 16) & 255, (n >> 8) & 255, n & 255];
}

function withAlpha(colour, a) {
  const rgb = parseHex(colour);
  return rgb ? `rgba(${rgb[0]}, ${rgb[1]}, ${rgb[2]}, ${a})` : colour;
}

// White on dark tags, near-black on light ones.
function contrastOn(colour, fallback) {
  const rgb = parseHex(colour);
  if (!rgb) return fallback;
  const [r, g, b] = rgb.map((c) => {
    const s = c / 255;
    return s <= 0.03928 ? s / 12.92 : ((s + 0.055) / 1.055) ** 2.4;
  });
  const lum = 0.2126 * r + 0.7152 * g + 0.0722 * b;
  return lum > 0.25 ? '#0b1220' : '#ffffff';
}
