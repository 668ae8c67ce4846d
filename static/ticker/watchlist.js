// The watchlist: an ordered list of symbols kept in localStorage, plus the
// symbol shown on the chart. The server decides which symbols are valid; the
// page only tidies what was typed.

/** Most symbols on one watchlist (each one is polled). */
export const MAX_SYMBOLS = 40;
/** Most characters accepted in the symbol box. */
export const MAX_INPUT_LEN = 32;
/** What a first visit shows. */
export const DEFAULT_SYMBOLS = ['IBM', 'AAPL', 'MSFT'];

const LIST_KEY = 'rt.ticker.watchlist';
const SELECTED_KEY = 'rt.ticker.selected';

/** Trimmed and upper-cased, or `null` when empty or too long. */
export function normalize(raw) {
  const s = String(raw ?? '').trim().toUpperCase();
  if (s === '' || s.length > MAX_INPUT_LEN) return null;
  return s;
}

/** localStorage, or a memory stand-in when the browser refuses it. */
function storage() {
  try {
    const s = window.localStorage;
    s.getItem(LIST_KEY);
    return s;
  } catch {
    const mem = new Map();
    return {
      getItem: (k) => (mem.has(k) ? mem.get(k) : null),
      setItem: (k, v) => mem.set(k, String(v)),
      removeItem: (k) => mem.delete(k),
    };
  }
}

export class Watchlist {
  #store = storage();
  #symbols;
  #selected;

  constructor() {
    this.reload();
  }

  /**
   * Rereads the stored list, e.g. after another tab changed it. The chart
   * keeps its symbol while that is still listed.
   */
  reload() {
    this.#symbols = this.#loadList();
    const keep = this.#selected ?? this.#store.getItem(SELECTED_KEY);
    this.#selected = this.#symbols.includes(keep) ? keep : (this.#symbols[0] ?? null);
  }

  /** Whether a `storage` event changed the list (`null`: storage cleared). */
  static isListKey(key) {
    return key === null || key === LIST_KEY;
  }

  #loadList() {
    const raw = this.#store.getItem(LIST_KEY);
    if (raw === null) return [...DEFAULT_SYMBOLS];
    let parsed;
    try {
      parsed = JSON.parse(raw);
    } catch {
      return [...DEFAULT_SYMBOLS];
    }
    if (!Array.isArray(parsed)) return [...DEFAULT_SYMBOLS];
    const out = [];
    for (const item of parsed) {
      const s = typeof item === 'string' ? normalize(item) : null;
      if (s && !out.includes(s) && out.length < MAX_SYMBOLS) out.push(s);
    }
    return out;
  }

  #save() {
    try {
      this.#store.setItem(LIST_KEY, JSON.stringify(this.#symbols));
      if (this.#selected === null) this.#store.removeItem(SELECTED_KEY);
      else this.#store.setItem(SELECTED_KEY, this.#selected);
    } catch {
      // A full or disabled storage only costs persistence; the page keeps working.
    }
  }

  get symbols() {
    return [...this.#symbols];
  }

  get selected() {
    return this.#selected;
  }

  /**
   * Adds a typed symbol. Returns `{symbol}` on success or `{error}` with a
   * message for the user.
   */
  add(raw) {
    const s = normalize(raw);
    if (s === null) {
      return { error: String(raw ?? '').trim() === '' ? 'Type a symbol first.' : `A symbol has at most ${MAX_INPUT_LEN} characters.` };
    }
    if (this.#symbols.includes(s)) return { error: `${s} is already on the watchlist.` };
    if (this.#symbols.length >= MAX_SYMBOLS) return { error: `The watchlist holds at most ${MAX_SYMBOLS} symbols.` };
    this.#symbols.push(s);
    if (this.#selected === null) this.#selected = s;
    this.#save();
    return { symbol: s };
  }

  /** Removes a symbol; the chart moves to a neighbour if it showed this one. */
  remove(symbol) {
    const i = this.#symbols.indexOf(symbol);
    if (i < 0) return;
    this.#symbols.splice(i, 1);
    if (this.#selected === symbol) {
      this.#selected = this.#symbols[Math.min(i, this.#symbols.length - 1)] ?? null;
    }
    this.#save();
  }

  select(symbol) {
    if (!this.#symbols.includes(symbol)) return;
    this.#selected = symbol;
    this.#save();
  }
}
