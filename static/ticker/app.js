// The ticker page: a watchlist of symbols, each polled by its own Poller,
// a table that flashes what changed, and a chart of the selected symbol.
// Everything the user or the server wrote reaches the page as textContent.

import { Poller } from './poller.js';
import { Watchlist } from './watchlist.js';
import { PriceChart } from './chart.js';

/** Prices kept per symbol for the chart. */
const MAX_HISTORY = 600;

/** The numeric columns, in table order. */
const FIELDS = [
  { key: 'latestPrice', fmt: price },
  { key: 'change', fmt: signed, sign: true },
  { key: 'changePercent', fmt: percent, sign: true, cls: 'opt-pct' },
  { key: 'open', fmt: price, cls: 'opt opt-wide' },
  { key: 'high', fmt: price, cls: 'opt' },
  { key: 'low', fmt: price, cls: 'opt' },
  { key: 'previousClose', fmt: price, cls: 'opt opt-wide' },
  { key: 'volume', fmt: integer, cls: 'opt' },
];

const priceFmt = new Intl.NumberFormat(undefined, { minimumFractionDigits: 2, maximumFractionDigits: 2 });
const intFmt = new Intl.NumberFormat(undefined, { maximumFractionDigits: 0 });
const timeFmt = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit', second: '2-digit' });

function price(n) {
  return priceFmt.format(n);
}
function signed(n) {
  return (n > 0 ? '+' : '') + priceFmt.format(n);
}
// IEX sends changePercent as a fraction: 0.0123 is 1.23 %.
function percent(n) {
  return (n > 0 ? '+' : '') + priceFmt.format(n * 100) + ' %';
}
function integer(n) {
  return intFmt.format(n);
}

/** A finite number from a quote field (numbers or numeric strings), else null. */
function num(v) {
  if (typeof v === 'number') return Number.isFinite(v) ? v : null;
  if (typeof v === 'string' && v.trim() !== '') {
    const n = Number(v);
    return Number.isFinite(n) ? n : null;
  }
  return null;
}

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === 'class') node.className = v;
    else if (k === 'text') node.textContent = v;
    else if (k.startsWith('data-') || k.startsWith('aria-') || k === 'type' || k === 'scope' || k === 'role') node.setAttribute(k, v);
    else node[k] = v;
  }
  node.append(...children);
  return node;
}

// Restarts the flash animation even when the same direction repeats.
function flash(cell, dir) {
  cell.classList.remove('flash-up', 'flash-down');
  void cell.offsetWidth;
  cell.classList.add(dir === 'up' ? 'flash-up' : 'flash-down');
}

/** One watchlist row: its DOM, its poller, its last values and its history. */
class Row {
  constructor(symbol, page) {
    this.symbol = symbol;
    this.page = page;
    this.values = {};
    this.history = [];
    this.companyName = '';

    this.symButton = el('button', { type: 'button', class: 'sym', text: symbol, 'aria-pressed': 'false' });
    this.symButton.addEventListener('click', () => page.select(symbol));
    this.company = el('span', { class: 'company' });
    this.cells = {};
    const tds = FIELDS.map((f) => {
      const value = el('span', { class: 'value', text: '—' });
      const mark = el('span', { class: 'mark', 'aria-hidden': 'true' });
      const td = el('td', { class: `num ${f.cls ?? ''}`.trim(), 'data-field': f.key, role: 'cell' }, value, mark);
      td.addEventListener('animationend', () => td.classList.remove('flash-up', 'flash-down'));
      this.cells[f.key] = { td, value, mark };
      return td;
    });
    this.statusText = el('span', { class: 'status waiting', text: 'waiting' });
    this.detail = el('span', { class: 'detail' });
    const remove = el('button', { type: 'button', class: 'quiet remove', text: '×', 'aria-label': `Remove ${symbol}` });
    remove.addEventListener('click', () => page.remove(symbol));

    this.tr = el(
      'tr',
      { 'data-symbol': symbol, role: 'row' },
      el('th', { scope: 'row', role: 'rowheader' }, this.symButton, this.company),
      ...tds,
      el('td', { 'data-field': 'status', role: 'cell' }, this.statusText, this.detail),
      el('td', { class: 'remove-cell', role: 'cell' }, remove),
    );

    this.poller = new Poller(symbol, {
      quote: (q) => this.onQuote(q),
      error: (msg) => this.setStatus('error', `error: ${msg}`, ''),
      stopped: (msg) => {
        this.tr.classList.add('is-stopped');
        this.setStatus('stopped', 'stopped: invalid symbol', msg);
      },
      offline: (msg, delay) => this.setStatus('offline', `offline, retrying in ${Math.round(delay / 1000)} s`, msg),
    });
  }

  setStatus(kind, text, detail) {
    this.statusText.className = `status ${kind}`;
    this.statusText.textContent = text;
    this.detail.textContent = detail;
    this.detail.title = detail;
  }

  onQuote(q) {
    if (typeof q.companyName === 'string' && q.companyName !== this.companyName) {
      this.companyName = q.companyName;
      this.company.textContent = q.companyName;
      this.company.title = q.companyName;
    }
    for (const f of FIELDS) {
      const n = num(q[f.key]);
      if (n === null) continue;
      const cell = this.cells[f.key];
      const prev = this.values[f.key];
      this.values[f.key] = n;
      cell.value.textContent = f.fmt(n);
      if (f.sign) {
        cell.td.classList.toggle('pos', n > 0);
        cell.td.classList.toggle('neg', n < 0);
      }
      if (prev !== undefined && prev !== n) {
        const dir = n > prev ? 'up' : 'down';
        cell.td.dataset.dir = dir;
        cell.mark.textContent = dir === 'up' ? '▲' : '▼';
        flash(cell.td, dir);
      }
    }
    const when = num(q.latestUpdate);
    this.setStatus('live', 'live', when ? `at ${timeFmt.format(when)}` : '');
    const p = num(q.latestPrice);
    if (p !== null) {
      this.history.push({ t: Date.now(), price: p });
      if (this.history.length > MAX_HISTORY) this.history.splice(0, this.history.length - MAX_HISTORY);
      this.page.updated(this.symbol);
    }
  }

  setSelected(on) {
    this.tr.classList.toggle('selected', on);
    this.symButton.setAttribute('aria-pressed', String(on));
  }
}

class TickerPage {
  constructor() {
    this.list = new Watchlist();
    this.rows = new Map();
    this.tbody = document.getElementById('rows');
    this.empty = document.getElementById('empty');
    this.message = document.getElementById('form-message');
    this.input = document.getElementById('symbol-input');
    this.chartTitle = document.getElementById('chart-title');
    this.chartSummary = document.getElementById('chart-summary');
    this.canvas = document.getElementById('chart');
    this.chart = new PriceChart(this.canvas);

    document.getElementById('add-form').addEventListener('submit', (e) => {
      e.preventDefault();
      this.add(this.input.value);
    });
    for (const s of this.list.symbols) this.#mount(s);
    this.#refresh();
    // Another tab edited the watchlist: follow it.
    window.addEventListener('storage', (e) => {
      if (e.storageArea === window.localStorage && Watchlist.isListKey(e.key)) this.#sync();
    });
  }

  #sync() {
    this.list.reload();
    const wanted = this.list.symbols;
    for (const [s, row] of this.rows) {
      if (!wanted.includes(s)) {
        row.poller.stop();
        row.tr.remove();
        this.rows.delete(s);
      }
    }
    for (const s of wanted) {
      if (!this.rows.has(s)) this.#mount(s);
      this.tbody.append(this.rows.get(s).tr);
    }
    this.#refresh();
  }

  #mount(symbol) {
    const row = new Row(symbol, this);
    this.rows.set(symbol, row);
    this.tbody.append(row.tr);
    row.poller.start();
  }

  add(raw) {
    const res = this.list.add(raw);
    if (res.error) {
      this.say(res.error, true);
      return;
    }
    this.input.value = '';
    this.#mount(res.symbol);
    this.say(`Added ${res.symbol}.`, false);
    this.#refresh();
  }

  remove(symbol) {
    const row = this.rows.get(symbol);
    if (!row) return;
    // Keep keyboard focus in the list: on the next row's remove button, else the box.
    const next = row.tr.nextElementSibling ?? row.tr.previousElementSibling;
    const hadFocus = row.tr.contains(document.activeElement);
    row.poller.stop();
    row.tr.remove();
    this.rows.delete(symbol);
    this.list.remove(symbol);
    this.say(`Removed ${symbol}.`, false);
    this.#refresh();
    if (hadFocus) (next?.querySelector('.remove') ?? this.input).focus();
  }

  select(symbol) {
    this.list.select(symbol);
    this.#refresh();
  }

  /** A row got a new price. */
  updated(symbol) {
    if (symbol === this.list.selected) this.#drawChart();
  }

  say(text, bad) {
    this.message.textContent = text;
    this.message.classList.toggle('bad', bad);
  }

  #refresh() {
    const sel = this.list.selected;
    for (const [s, row] of this.rows) row.setSelected(s === sel);
    this.empty.hidden = this.rows.size > 0;
    this.#drawChart();
  }

  #drawChart() {
    const sel = this.list.selected;
    const row = sel === null ? undefined : this.rows.get(sel);
    if (!row) {
      this.chartTitle.textContent = 'Price';
      this.chartSummary.textContent = '';
      this.canvas.setAttribute('aria-label', 'Price chart: no symbol selected');
      this.chart.show([], 'Add a symbol to chart its price');
      return;
    }
    this.chartTitle.replaceChildren(sel);
    if (row.companyName) this.chartTitle.append(' ', el('span', { class: 'chart-company', text: row.companyName }));
    const h = row.history;
    if (h.length === 0) {
      this.chartSummary.textContent = '';
      this.canvas.setAttribute('aria-label', `Price chart of ${sel}: no quotes yet`);
      this.chart.show([], row.poller.running ? `Waiting for ${sel} quotes…` : `No quotes for ${sel}`);
      return;
    }
    const first = h[0].price;
    const last = h[h.length - 1].price;
    const diff = last - first;
    this.chartSummary.textContent = `${price(last)}  ${signed(diff)} since ${timeFmt.format(h[0].t)}`;
    this.chartSummary.className = `chart-summary ${diff > 0 ? 'pos' : diff < 0 ? 'neg' : ''}`;
    this.canvas.setAttribute(
      'aria-label',
      `Price chart of ${sel}: ${h.length} quotes, last ${price(last)}, ${signed(diff)} since ${timeFmt.format(h[0].t)}`,
    );
    this.chart.show(h, '');
  }
}

new TickerPage();
