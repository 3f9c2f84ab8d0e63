// The dashboard keyboard's pure parts (src/trustdesk/web/admin/keys.js): node --test tests/js/
import assert from "node:assert/strict";
import { test } from "node:test";

import { counterState, isTextField, shortcutFor, stepId } from "../../src/trustdesk/web/admin/keys.js";

const nbsp = (s) => s.replace(/[\u00a0\u202f]/g, " ");

test("the counter is silent below 80 % of the limit", () => {
  assert.equal(counterState(0, 4000), null);
  assert.equal(counterState(3199, 4000), null);
  assert.deepEqual(counterState(3200, 4000, "en"), { text: "3,200 / 4,000", over: false, full: false });
});

test("the counter says '3 650 / 4 000' in Russian, full at the limit, over past it", () => {
  const near = counterState(3650, 4000, "ru");
  assert.equal(nbsp(near.text), "3 650 / 4 000");
  assert.equal(near.over, false);
  assert.deepEqual([counterState(4000, 4000).full, counterState(4000, 4000).over], [true, false]);
  const past = counterState(4500, 4000);
  assert.equal(nbsp(past.text), "4 500 / 4 000");
  assert.equal(past.over, true);
});

test("j/k step through the list and stop at its ends", () => {
  const ids = ["A", "B", "C"];
  assert.equal(stepId(ids, "A", 1), "B");
  assert.equal(stepId(ids, "C", 1), "C");
  assert.equal(stepId(ids, "A", -1), "A");
  assert.equal(stepId(ids, "B", -1), "A");
  assert.equal(stepId(ids, null, 1), "A"); // nothing open: j takes the first
  assert.equal(stepId(ids, "gone", -1), "C"); // k the last
  assert.equal(stepId([], "A", 1), null);
});

test("shortcuts never fire in a text field or with a modifier", () => {
  const k = (key, extra = {}) => shortcutFor({ key, ctrlKey: false, metaKey: false, altKey: false, inField: false, ...extra });
  assert.equal(k("j"), "next");
  assert.equal(k("ArrowDown"), "next");
  assert.equal(k("о"), "next"); // the j key on a Russian layout
  assert.equal(k("k"), "prev");
  assert.equal(k("ArrowUp"), "prev");
  assert.equal(k("?"), "help");
  assert.equal(k("x"), null);
  assert.equal(k("j", { inField: true }), null);
  assert.equal(k("?", { inField: true }), null);
  assert.equal(k("k", { ctrlKey: true }), null);
  assert.equal(k("ArrowDown", { metaKey: true }), null);
});

test("which elements count as text fields", () => {
  assert.equal(isTextField({ tagName: "TEXTAREA" }), true);
  assert.equal(isTextField({ tagName: "INPUT", type: "search" }), true);
  assert.equal(isTextField({ tagName: "INPUT", type: "checkbox" }), false);
  assert.equal(isTextField({ tagName: "A" }), false);
  assert.equal(isTextField({ tagName: "DIV", isContentEditable: true }), true);
  assert.equal(isTextField(null), false);
});
