// node --test tests/js/store.test.mjs: the shared store and dispatch table (web/shared/store.js).
import assert from "node:assert/strict";
import { test } from "node:test";

import { createDispatch, createStore } from "../../src/trustdesk/web/shared/store.js";

test("set tells the subscribers of the keys that changed, and only them", () => {
  const store = createStore({ unread: 0, status: null, mode: "idle" });
  const seen = [];
  store.subscribe(["unread"], (s, changed) => seen.push(["unread", s.unread, changed]));
  store.subscribe(["status", "mode"], (s, changed) => seen.push(["status/mode", changed]));
  store.subscribe(null, (_s, changed) => seen.push(["all", changed]));

  assert.deepEqual(store.set({ unread: 2 }), ["unread"]);
  assert.deepEqual(seen, [
    ["unread", 2, ["unread"]],
    ["all", ["unread"]],
  ]);
  seen.length = 0;
  assert.deepEqual(store.set({ unread: 2, mode: "online" }), ["mode"]);
  assert.deepEqual(seen, [
    ["status/mode", ["mode"]],
    ["all", ["mode"]],
  ]);
  assert.equal(store.state.mode, "online");
});

test("a set that changes nothing notifies nobody", () => {
  const store = createStore({ n: 1, name: "a" });
  let calls = 0;
  store.subscribe(null, () => (calls += 1));
  assert.deepEqual(store.set({ n: 1, name: "a" }), []);
  assert.equal(calls, 0);
  store.set({ n: Number.NaN });
  store.set({ n: Number.NaN }); // Object.is: NaN is NaN
  assert.equal(calls, 1);
});

test("unsubscribe stops the calls; a subscriber may set other keys", () => {
  const store = createStore({ a: 0, b: 0 });
  const bs = [];
  const off = store.subscribe(["a"], (s) => store.set({ b: s.a * 10 }));
  store.subscribe(["b"], (s) => bs.push(s.b));
  store.set({ a: 1 });
  off();
  store.set({ a: 2 });
  assert.deepEqual(bs, [10]);
  assert.equal(store.state.b, 10);
});

test("a subscriber loop is stopped, not run forever", () => {
  const store = createStore({ n: 0 });
  store.subscribe(["n"], (s) => store.set({ n: s.n + 1 }));
  assert.throws(() => store.set({ n: 1 }), /keep changing/);
});

test("the dispatch table calls every handler of a frame type, in order", () => {
  const frames = createDispatch();
  const calls = [];
  frames.on("message", (f) => calls.push(["messages", f.id]));
  frames.on("message", (f) => calls.push(["unread", f.id]));
  frames.on("typing", () => calls.push(["typing"]));
  assert.equal(frames.dispatch("message", { id: 7 }), true);
  assert.equal(frames.dispatch("pong", {}), false); // no handler: ignored
  assert.deepEqual(calls, [
    ["messages", 7],
    ["unread", 7],
  ]);
});
