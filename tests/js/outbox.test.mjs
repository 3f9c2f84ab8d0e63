// node --test tests/js/outbox.test.mjs: the operator outbox's queue logic (web/admin/outbox.js).
import assert from "node:assert/strict";
import { test } from "node:test";

import { MAX_ITEMS, Outbox, OutboxRunner, backoffMs, isTransient, safeStorage } from "../../src/trustdesk/web/admin/outbox.js";

function memStorage() {
  const m = new Map();
  return { getItem: (k) => (m.has(k) ? m.get(k) : null), setItem: (k, v) => m.set(k, v), m };
}

function clock(start = 1_000_000) {
  const c = { t: start, now: () => c.t };
  return c;
}

function fakeTimers() {
  const timers = new Map();
  let n = 0;
  return {
    timers,
    setTimer: (fn, ms) => {
      n += 1;
      timers.set(n, { fn, ms });
      return n;
    },
    clearTimer: (id) => timers.delete(id),
  };
}

const tick = () => new Promise((r) => setImmediate(r));

test("backoff doubles from 1 s to a 30 s cap, with bounded jitter", () => {
  assert.equal(backoffMs(1, () => 0.5), 1000);
  assert.equal(backoffMs(2, () => 0.5), 2000);
  assert.equal(backoffMs(4, () => 0.5), 8000);
  assert.equal(backoffMs(9, () => 0.5), 30000);
  assert.equal(backoffMs(1, () => 0), 800);
  assert.equal(backoffMs(1, () => 1), 1200);
});

test("network trouble, no answer, 5xx and 429 are retried; other 4xx are not", () => {
  assert.ok(isTransient({ status: 0 }));
  assert.ok(isTransient(new Error("no answer")));
  assert.ok(isTransient({ status: 503 }));
  assert.ok(isTransient({ status: 429 }));
  assert.ok(!isTransient({ status: 400 }));
  assert.ok(!isTransient({ status: 404 }));
  assert.ok(!isTransient({ status: 422 }));
});

test("an item survives a reload, per operator, and is due at once", () => {
  const storage = memStorage();
  const c = clock();
  const a = new Outbox({ storage, owner: 7, now: c.now });
  const item = a.add({ ticketId: "TKT-1", mode: "reply", text: "Здравствуйте" });
  a.fail(item.cmid, { transient: true });
  assert.ok(item.nextAt > c.t);
  const b = new Outbox({ storage, owner: 7, now: c.now }).load();
  assert.deepEqual(
    b.forTicket("TKT-1").map((i) => [i.cmid, i.text, i.mode, i.attempts, i.nextAt]),
    [[item.cmid, "Здравствуйте", "reply", 1, 0]],
  );
  assert.equal(new Outbox({ storage, owner: 8, now: c.now }).load().size, 0);
  b.ack(item.cmid);
  assert.equal(new Outbox({ storage, owner: 7 }).load().size, 0);
});

test("broken or foreign storage content is ignored", () => {
  const storage = memStorage();
  storage.setItem("trustdesk.admin.outbox.1", "{not json");
  assert.equal(new Outbox({ storage, owner: 1 }).load().size, 0);
  storage.setItem(
    "trustdesk.admin.outbox.1",
    JSON.stringify([{ cmid: "a", ticketId: "T", mode: "hack", text: "x" }, { cmid: 5 }, { cmid: "b", ticketId: "T", mode: "note", text: "ok" }]),
  );
  assert.deepEqual([...new Outbox({ storage, owner: 1 }).load().items.keys()], ["b"]);
});

test("two tabs do not overwrite each other's items", () => {
  const storage = memStorage();
  const tab1 = new Outbox({ storage, owner: 1 });
  const tab2 = new Outbox({ storage, owner: 1 });
  const x = tab1.add({ ticketId: "T", mode: "reply", text: "из первой" });
  const y = tab2.add({ ticketId: "T", mode: "reply", text: "из второй" });
  let stored = new Outbox({ storage, owner: 1 }).load();
  assert.deepEqual(new Set(stored.items.keys()), new Set([x.cmid, y.cmid]));
  tab1.ack(x.cmid);
  stored = new Outbox({ storage, owner: 1 }).load();
  assert.deepEqual([...stored.items.keys()], [y.cmid]);
});

test("due: in order, one at a time per ticket, a refused item does not block", () => {
  const c = clock();
  const o = new Outbox({ storage: memStorage(), now: c.now, random: () => 0.5 });
  const a1 = o.add({ ticketId: "A", mode: "reply", text: "1" });
  const a2 = o.add({ ticketId: "A", mode: "note", text: "2" });
  const b1 = o.add({ ticketId: "B", mode: "reply", text: "3" });
  assert.deepEqual(o.due().map((i) => i.cmid), [a1.cmid, b1.cmid]);
  o.fail(a1.cmid, { transient: true });
  assert.deepEqual(o.due().map((i) => i.cmid), [b1.cmid], "A waits behind its first message");
  assert.equal(o.nextWake(), c.t + 1000);
  c.t += 1000;
  assert.deepEqual(o.due().map((i) => i.cmid), [a1.cmid, b1.cmid]);
  o.fail(a1.cmid, { transient: false, error: "invalid" });
  assert.equal(a1.failed, true);
  assert.deepEqual(o.due().map((i) => i.cmid), [a2.cmid, b1.cmid]);
  o.retry(a1.cmid);
  assert.equal(a1.failed, false);
  assert.deepEqual(o.due().map((i) => i.cmid), [a1.cmid, b1.cmid]);
});

test("Retry-After is honoured and wake makes waiting items due, not refused ones", () => {
  const c = clock();
  const o = new Outbox({ storage: memStorage(), now: c.now, random: () => 0.5 });
  const a = o.add({ ticketId: "A", mode: "reply", text: "1" });
  const b = o.add({ ticketId: "B", mode: "reply", text: "2" });
  o.fail(a.cmid, { transient: true, retryAfterS: 20 });
  assert.equal(a.nextAt, c.t + 20000);
  o.fail(b.cmid, { transient: false });
  o.wake();
  assert.deepEqual(o.due().map((i) => i.cmid), [a.cmid]);
});

test("the queue is bounded", () => {
  const o = new Outbox({ storage: memStorage() });
  for (let i = 0; i < MAX_ITEMS + 5; i += 1) o.add({ ticketId: "T", mode: "reply", text: String(i) });
  assert.equal(o.size, MAX_ITEMS);
  assert.equal(o.forTicket("T")[0].text, "5");
});

test("storage that throws falls back to memory", () => {
  const s = safeStorage(() => {
    throw new Error("SecurityError");
  });
  assert.equal(s.persistent, false);
  s.setItem("k", "v");
  assert.equal(s.getItem("k"), "v");
});

test("runner: a failed send is retried after the backoff with the same id, then acked", async () => {
  const c = clock();
  const timers = fakeTimers();
  const o = new Outbox({ storage: memStorage(), now: c.now, random: () => 0.5 });
  const seen = [];
  const sent = [];
  let down = true;
  const runner = new OutboxRunner(o, {
    send: async (item) => {
      seen.push(item.cmid);
      if (down) throw Object.assign(new Error("network"), { status: 0 });
      return { message: { id: 1, client_msg_id: item.cmid } };
    },
    onSent: (item, r) => sent.push([item.cmid, r.message.id]),
    ...timers,
  });
  const item = o.add({ ticketId: "T", mode: "reply", text: "ответ" });
  runner.kick();
  await tick();
  assert.equal(seen.length, 1);
  assert.equal(o.get(item.cmid).attempts, 1);
  const [[id, timer]] = [...timers.timers.entries()];
  assert.equal(timer.ms, 1000);
  timers.timers.delete(id); // it fires
  down = false;
  c.t += 1000;
  timer.fn();
  await tick();
  assert.deepEqual(seen, [item.cmid, item.cmid]);
  assert.deepEqual(sent, [[item.cmid, 1]]);
  assert.equal(o.size, 0);
  assert.equal(timers.timers.size, 0);
});

test("runner: wake sends at once, and a ticket's second message goes after the first", async () => {
  const c = clock();
  const timers = fakeTimers();
  const o = new Outbox({ storage: memStorage(), now: c.now, random: () => 0.5 });
  const order = [];
  let down = true;
  const runner = new OutboxRunner(o, {
    send: async (item) => {
      order.push(item.text);
      if (down) throw Object.assign(new Error("down"), { status: 502 });
      return {};
    },
    ...timers,
  });
  o.add({ ticketId: "T", mode: "reply", text: "первое" });
  o.add({ ticketId: "T", mode: "reply", text: "второе" });
  runner.kick();
  await tick();
  assert.deepEqual(order, ["первое"]);
  down = false;
  runner.wake();
  for (let i = 0; i < 5; i += 1) await tick();
  assert.deepEqual(order, ["первое", "первое", "второе"]);
  assert.equal(o.size, 0);
});

test("runner: a refusal is kept as failed and not re-sent by itself", async () => {
  const timers = fakeTimers();
  const o = new Outbox({ storage: memStorage() });
  const failed = [];
  let calls = 0;
  const runner = new OutboxRunner(o, {
    send: async () => {
      calls += 1;
      throw Object.assign(new Error("ticket_not_found"), { status: 404 });
    },
    onFailed: (item) => failed.push(item.cmid),
    ...timers,
  });
  const item = o.add({ ticketId: "T", mode: "note", text: "x" });
  runner.kick();
  await tick();
  runner.wake();
  await tick();
  assert.equal(calls, 1);
  assert.deepEqual(failed, [item.cmid]);
  assert.equal(o.get(item.cmid).failed, true);
  assert.equal(timers.timers.size, 0);
});
