// node --test tests/js/: the pure parts of the widget's help-center module (kb.js).
import assert from "node:assert/strict";
import { test } from "node:test";

import { MIN_CHARS, queryFor, safeUrl } from "../../src/trustdesk/web/widget/kb.js";

test("a query needs three characters and a change", () => {
  assert.equal(MIN_CHARS, 3);
  assert.equal(queryFor("до", ""), null);
  assert.equal(queryFor("  дос  ", ""), "дос");
  assert.equal(queryFor("Доставка  в   Казань", ""), "Доставка в Казань");
  assert.equal(queryFor("доставка ", "Доставка"), null); // the same search again: no request
  assert.equal(queryFor("x".repeat(500), "").length, 200);
  assert.equal(queryFor(undefined, ""), null);
});

test("only safe addresses stay in an article", () => {
  assert.equal(safeUrl("A", "https://shop.example/a"), "https://shop.example/a");
  assert.equal(safeUrl("A", "mailto:help@shop.example"), "mailto:help@shop.example");
  assert.equal(safeUrl("A", "/help/dostavka"), "/help/dostavka");
  assert.equal(safeUrl("A", "javascript:alert(1)"), null);
  assert.equal(safeUrl("A", " JavaScript:alert(1)"), null);
  assert.equal(safeUrl("A", "//evil.example/x"), null);
  assert.equal(safeUrl("A", "data:text/html,<script>"), null);
  assert.equal(safeUrl("IMG", "/help/media/a.png"), "/help/media/a.png");
  assert.equal(safeUrl("IMG", "https://evil.example/pixel.gif"), null);
  assert.equal(safeUrl("IMG", "/help/media//evil.example/x"), null);
  assert.equal(safeUrl("IMG", "x"), null);
});
