// The page's copy of the board, fed by the server's messages. Pure data:
// no DOM, so the rendering can be rebuilt from it at any time.
export class Board {
  constructor() {
    this.reset();
    /** Questions this page voted for (learned from vote replies). */
    this.voted = new Set();
  }

  /** Forget everything (the server sends a snapshot next). */
  reset() {
    /** text -> {text, author, time, votes, answers, seq} */
    this.byText = new Map();
    /** question -> [{text, author, time}] */
    this.answerLists = new Map();
    this.followed = null;
    this.seq = 0;
  }

  /** `{type:'questions', questions:{q: author}, meta?:{q: {...}}}` */
  questions(msg) {
    const next = new Map();
    for (const [text, author] of Object.entries(msg.questions ?? {})) {
      const old = this.byText.get(text);
      const meta = msg.meta?.[text];
      next.set(text, {
        text,
        author: meta?.author ?? author,
        time: meta?.time ?? old?.time ?? 0,
        votes: meta?.votes ?? old?.votes ?? 0,
        answers: meta?.answers ?? old?.answers ?? 0,
        seq: old?.seq ?? this.seq++,
      });
    }
    this.byText = next;
  }

  /** The named `meta` event: one question's metadata. */
  meta({ question, meta }) {
    const q = this.byText.get(question);
    if (q && meta) Object.assign(q, { votes: meta.votes, answers: meta.answers });
  }

  /** `{type:'answers', question, answers:[…], meta?:[{author,time}]}` */
  answers(msg) {
    const list = (msg.answers ?? []).map((text, i) => ({
      text,
      author: msg.meta?.[i]?.author ?? null,
      time: msg.meta?.[i]?.time ?? 0,
    }));
    this.answerLists.set(msg.question, list);
    if (this.followed === null) this.followed = msg.question;
    const q = this.byText.get(msg.question);
    if (q) q.answers = Math.max(q.answers, list.length);
  }

  follow(text) {
    this.followed = text;
  }

  answersOf(text) {
    return this.answerLists.get(text) ?? [];
  }

  setVoted(text, on) {
    if (on) this.voted.add(text);
    else this.voted.delete(text);
  }

  /** Questions newest first, or by votes (ties: newest first). */
  ordered(order) {
    const newest = (a, b) => (b.time - a.time) || (b.seq - a.seq);
    const list = [...this.byText.values()];
    return order === 'top' ? list.sort((a, b) => (b.votes - a.votes) || newest(a, b)) : list.sort(newest);
  }
}
