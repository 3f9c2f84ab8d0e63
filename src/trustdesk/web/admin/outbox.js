// The operator's outbox (issue 21.1), as the widget's (web/widget/chat.js "Messages out"):
// every reply, note and system notice gets a client_msg_id, waits here until the server has
// stored it, is re-sent with backoff (and at once when the server is back), and survives a
// reload in localStorage. The server is idempotent on client_msg_id, so a re-send of a message
// whose answer was lost stores nothing new and answers the stored message.
// Files and voice messages are not kept here: a File cannot wait in localStorage; they wait
// in IndexedDB (upload-store.js), re-sent by app.js when the server is back or after a reload.
// Pure queue logic with injected storage, clock and timers: tests/js/outbox.test.mjs.

export const OUTBOX_KEY = "trustdesk.admin.outbox";
export const MAX_ITEMS = 200;
const MODES = new Set(["reply", "note", "system"]);
const BASE_MS = 1000;
const CAP_MS = 30_000;

/** Delay before attempt n+1 after n failures: 1 s, 2 s, 4 s … 30 s, ±20 % jitter. */
export function backoffMs(failures, random = Math.random) {
  const n = Math.max(1, failures);
  const base = Math.min(CAP_MS, BASE_MS * 2 ** Math.min(n - 1, 10));
  return Math.round(base * (0.8 + 0.4 * random()));
}

/** A failure that a later re-send can cure: no network, no answer, server trouble, rate limit,
 * the session lost (resent after the next sign-in). Anything else is refused for good. */
export function isTransient(e) {
  if (!e || typeof e.status !== "number") return true; // a socket without an answer, a TypeError
  return e.status === 0 || e.status === 401 || e.status === 408 || e.status === 429 || e.status >= 500;
}

/** localStorage, or memory when it is blocked (private mode, a full quota). */
export function safeStorage(get = () => globalThis.localStorage) {
  const memory = new Map();
  let ls = null;
  try {
    ls = get() || null;
    if (ls) ls.getItem(OUTBOX_KEY);
  } catch {
    ls = null;
  }
  return {
    persistent: Boolean(ls),
    getItem(k) {
      try {
        if (ls) return ls.getItem(k);
      } catch {
        /* fall through */
      }
      return memory.has(k) ? memory.get(k) : null;
    },
    setItem(k, v) {
      memory.set(k, v);
      try {
        if (ls) ls.setItem(k, v);
      } catch {
        /* kept in memory */
      }
    },
  };
}

function valid(i) {
  return (
    i &&
    typeof i.cmid === "string" &&
    i.cmid.length >= 1 &&
    i.cmid.length <= 64 &&
    typeof i.ticketId === "string" &&
    i.ticketId.length >= 1 &&
    typeof i.text === "string" &&
    MODES.has(i.mode)
  );
}

function uuid() {
  if (globalThis.crypto && globalThis.crypto.randomUUID) return globalThis.crypto.randomUUID();
  return `${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}-${Math.random().toString(36).slice(2)}`;
}

/**
 * Items: {cmid, ticketId, mode, text, created_at, attempts, nextAt, failed, error, sending}.
 * `failed` is a refusal for good (shown with a retry button, never re-sent by itself);
 * `attempts > 0 && !failed` is waiting for a re-send.
 */
export class Outbox {
  constructor({ storage, owner, key = OUTBOX_KEY, now = () => Date.now(), random = () => Math.random() } = {}) {
    this.storage = storage || safeStorage();
    this.key = owner === undefined || owner === null ? key : `${key}.${owner}`;
    this.now = now;
    this.random = random;
    this.items = new Map();
    this.removed = new Set(); // acked or discarded here: dropped from storage by the next save
  }

  readStored() {
    let raw = null;
    try {
      raw = JSON.parse(this.storage.getItem(this.key) || "[]");
    } catch {
      raw = [];
    }
    return Array.isArray(raw) ? raw.filter(valid) : [];
  }

  /** Take what a previous page (or another tab) left; it is due at once. */
  load() {
    for (const i of this.readStored()) {
      if (this.items.has(i.cmid) || this.removed.has(i.cmid)) continue;
      this.items.set(i.cmid, {
        cmid: i.cmid,
        ticketId: i.ticketId,
        mode: i.mode,
        text: i.text,
        created_at: typeof i.created_at === "string" ? i.created_at : new Date(this.now()).toISOString(),
        attempts: Number.isInteger(i.attempts) && i.attempts > 0 ? i.attempts : 0,
        nextAt: 0,
        failed: Boolean(i.failed),
        error: typeof i.error === "string" ? i.error : null,
        sending: false,
      });
    }
    return this;
  }

  /** Write this tab's items, keeping another tab's that this one has not seen. */
  save() {
    const mine = [...this.items.values()].map(({ cmid, ticketId, mode, text, created_at, attempts, failed, error }) => ({
      cmid,
      ticketId,
      mode,
      text,
      created_at,
      attempts,
      failed,
      error,
    }));
    const others = this.readStored().filter((i) => !this.items.has(i.cmid) && !this.removed.has(i.cmid));
    this.storage.setItem(this.key, JSON.stringify([...others, ...mine].slice(-MAX_ITEMS)));
  }

  add({ ticketId, mode, text, cmid = uuid() }) {
    if (!MODES.has(mode)) throw new Error(`unknown mode ${mode}`);
    const item = {
      cmid,
      ticketId,
      mode,
      text,
      created_at: new Date(this.now()).toISOString(),
      attempts: 0,
      nextAt: 0,
      failed: false,
      error: null,
      sending: false,
    };
    this.items.set(cmid, item);
    while (this.items.size > MAX_ITEMS) this.items.delete(this.items.keys().next().value);
    this.save();
    return item;
  }

  get(cmid) {
    return this.items.get(cmid) || null;
  }

  get size() {
    return this.items.size;
  }

  forTicket(ticketId) {
    return [...this.items.values()].filter((i) => i.ticketId === ticketId);
  }

  /** The server has it: gone from the queue (true if it was there). */
  ack(cmid) {
    if (!this.items.delete(cmid)) return false;
    this.removed.add(cmid);
    this.save();
    return true;
  }

  discard(cmid) {
    return this.ack(cmid);
  }

  /** A send failed: wait and re-send, or (refused for good) keep it visible as not sent. */
  fail(cmid, { transient = true, error = null, retryAfterS = null } = {}) {
    const item = this.items.get(cmid);
    if (!item) return null;
    item.sending = false;
    item.attempts += 1;
    item.error = error;
    if (transient) {
      const wait = Math.max(backoffMs(item.attempts, this.random), (Number(retryAfterS) || 0) * 1000);
      item.nextAt = this.now() + Math.min(wait, 60_000);
      item.failed = false;
    } else {
      item.failed = true;
      item.nextAt = Infinity;
    }
    this.save();
    return item;
  }

  /** The operator asked to try again (also for one refused before). */
  retry(cmid) {
    const item = this.items.get(cmid);
    if (!item) return null;
    item.failed = false;
    item.error = null;
    item.nextAt = 0;
    this.save();
    return item;
  }

  /** The server is back: everything waiting is due now (not what was refused for good). */
  wake() {
    for (const i of this.items.values()) if (!i.failed) i.nextAt = 0;
  }

  /**
   * What to send now, in the order written. A ticket's later items wait behind an earlier
   * one that is in flight or waiting, so the customer reads them in the order typed.
   */
  due(now = this.now()) {
    const blocked = new Set();
    const out = [];
    for (const i of this.items.values()) {
      if (i.failed) continue;
      if (blocked.has(i.ticketId)) continue;
      if (i.sending || i.nextAt > now) {
        blocked.add(i.ticketId);
        continue;
      }
      out.push(i);
      blocked.add(i.ticketId); // one at a time per ticket
    }
    return out;
  }

  /** When the next waiting item falls due (Infinity if none). Items due now but queued behind
   * one in flight are not counted: that one's answer sends them. */
  nextWake(now = this.now()) {
    let at = Infinity;
    for (const i of this.items.values()) {
      if (!i.failed && !i.sending && i.nextAt > now && i.nextAt < at) at = i.nextAt;
    }
    return at;
  }
}

/**
 * Sends what is due through `send(item) -> Promise<answer>`, one at a time per ticket, and
 * schedules itself for the next item that falls due.
 * Callbacks: onSent(item, answer), onFailed(item, error), onChange().
 */
export class OutboxRunner {
  constructor(outbox, { send, onSent = () => {}, onFailed = () => {}, onChange = () => {}, setTimer = (fn, ms) => setTimeout(fn, ms), clearTimer = (id) => clearTimeout(id) }) {
    this.outbox = outbox;
    this.send = send;
    this.onSent = onSent;
    this.onFailed = onFailed;
    this.onChange = onChange;
    this.setTimer = setTimer;
    this.clearTimer = clearTimer;
    this.timer = null;
    this.stopped = false;
    this.inflight = new Set();
  }

  /** Send whatever is due now. */
  kick() {
    if (this.stopped) return;
    for (const item of this.outbox.due()) this.sendOne(item);
    this.schedule();
  }

  /** The server answered again (socket back, `online`): everything waiting goes now. */
  wake() {
    this.outbox.wake();
    this.onChange();
    this.kick();
  }

  async sendOne(item) {
    item.sending = true;
    this.inflight.add(item.cmid);
    this.onChange();
    let answer;
    try {
      answer = await this.send(item);
    } catch (e) {
      this.inflight.delete(item.cmid);
      if (this.stopped || !this.outbox.get(item.cmid)) return;
      const retryAfterS = e && Number.isFinite(e.retryAfter) ? e.retryAfter : null;
      this.outbox.fail(item.cmid, { transient: isTransient(e), error: e && e.message ? String(e.message) : null, retryAfterS });
      this.onFailed(item, e);
      this.onChange();
      this.schedule();
      return;
    }
    this.inflight.delete(item.cmid);
    item.sending = false;
    this.outbox.ack(item.cmid);
    if (!this.stopped) this.onSent(item, answer);
    this.onChange();
    this.kick(); // the ticket's next item, if any
  }

  schedule() {
    this.clearTimer(this.timer);
    this.timer = null;
    if (this.stopped) return;
    const now = this.outbox.now();
    const at = this.outbox.nextWake(now);
    if (!Number.isFinite(at)) return;
    const delay = Math.max(0, at - now);
    this.timer = this.setTimer(() => {
      this.timer = null;
      this.kick();
    }, delay);
  }

  stop() {
    this.stopped = true;
    this.clearTimer(this.timer);
    this.timer = null;
  }
}
