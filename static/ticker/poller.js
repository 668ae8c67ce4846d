// Polls one symbol the way the classic ticker client does: `GET /?symbol=SYM`,
// then obey `callIn`. A falsy `callIn` (null, 0) stops polling for good;
// otherwise the next poll is scheduled `callIn` ms after the answer arrived,
// and only then is `error` looked at.

/** Shortest delay honoured, so a hostile or broken `callIn` cannot make the page hammer the server. */
export const MIN_DELAY_MS = 100;
/** Longest delay `setTimeout` can represent. */
export const MAX_DELAY_MS = 2 ** 31 - 1;
/** Back-off after a failed request (no answer, non-200, not JSON): doubles from the first to the last. */
export const RETRY_FIRST_MS = 1000;
export const RETRY_MAX_MS = 30_000;

/** The URL the classic client polls. */
export function pollUrl(symbol) {
  return `/?symbol=${encodeURIComponent(symbol)}`;
}

/** The delay for a truthy `callIn`, clamped to what a timer can honour. */
export function delayFor(callIn) {
  const n = Number(callIn);
  if (!Number.isFinite(n)) return MIN_DELAY_MS;
  return Math.min(MAX_DELAY_MS, Math.max(MIN_DELAY_MS, Math.round(n)));
}

/**
 * One symbol's poll loop.
 *
 * Handlers: `quote(quote)`, `error(message, delayMs)` (the server reported an
 * error and will be asked again), `stopped(message)` (the server said stop),
 * `offline(message, delayMs)` (no usable answer; retrying with back-off).
 */
export class Poller {
  #symbol;
  #handlers;
  #timer = null;
  #abort = null;
  #failures = 0;
  #running = false;

  constructor(symbol, handlers) {
    this.#symbol = symbol;
    this.#handlers = handlers;
  }

  /** Starts polling now. */
  start() {
    if (this.#running) return;
    this.#running = true;
    this.#poll();
  }

  /** Stops polling and abandons a request in flight. */
  stop() {
    this.#running = false;
    clearTimeout(this.#timer);
    this.#timer = null;
    this.#abort?.abort();
    this.#abort = null;
  }

  get running() {
    return this.#running;
  }

  #schedule(ms) {
    this.#timer = setTimeout(() => this.#poll(), ms);
  }

  async #poll() {
    this.#timer = null;
    const abort = new AbortController();
    this.#abort = abort;
    let data;
    try {
      const res = await fetch(pollUrl(this.#symbol), {
        signal: abort.signal,
        cache: 'no-store',
        headers: { Accept: 'application/json' },
      });
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
      data = await res.json();
      if (data === null || typeof data !== 'object') throw new Error('not a ticker answer');
    } catch (err) {
      if (!this.#running || abort.signal.aborted) return;
      this.#failures += 1;
      const delay = Math.min(RETRY_MAX_MS, RETRY_FIRST_MS * 2 ** (this.#failures - 1));
      this.#schedule(delay);
      this.#handlers.offline?.(err instanceof Error ? err.message : String(err), delay);
      return;
    }
    if (!this.#running) return;
    this.#abort = null;
    this.#failures = 0;
    if (!data.callIn) {
      this.#running = false;
      this.#handlers.stopped?.(data.error == null ? '' : String(data.error));
      return;
    }
    const delay = delayFor(data.callIn);
    this.#schedule(delay);
    if (data.error) {
      this.#handlers.error?.(String(data.error), delay);
      return;
    }
    if (data.quote !== null && typeof data.quote === 'object') this.#handlers.quote?.(data.quote);
  }
}
