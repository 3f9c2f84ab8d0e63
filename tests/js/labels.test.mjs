// node --test tests/js/: the pure parts of the dashboard's labels.js (no DOM needed).
import assert from "node:assert/strict";
import { test } from "node:test";

import { luminance, textColor } from "../../src/trustdesk/web/admin/labels.js";

function contrast(a, b) {
  const [hi, lo] = [luminance(a), luminance(b)].sort((x, y) => y - x);
  return (hi + 0.05) / (lo + 0.05);
}

test("luminance of the extremes and of bad input", () => {
  assert.equal(luminance("#000000"), 0);
  assert.equal(luminance("#FFFFFF"), 1);
  assert.equal(luminance("red"), null);
  assert.equal(luminance("#12345g"), null);
});

test("text is black on light colours and white on dark ones", () => {
  for (const c of ["#ffffff", "#ffeb3b", "#fde68a", "#a7f3d0", "#0ea5e9", "#f59e0b", "#17a34a"]) {
    assert.equal(textColor(c), "#000000", c);
  }
  for (const c of ["#000000", "#1b2233", "#1d4ed8", "#d92d2d", "#7c3aed", "#64748b"]) {
    assert.equal(textColor(c), "#ffffff", c);
  }
});

test("the chosen text always reaches WCAG's 4.5:1", () => {
  for (let i = 0; i < 4096; i += 7) {
    const hex = `#${[i >> 8, (i >> 4) & 15, i & 15].map((x) => (x * 17).toString(16).padStart(2, "0")).join("")}`;
    const chosen = contrast(hex, textColor(hex));
    assert.ok(chosen >= 4.5, `${hex}: ${chosen}`);
  }
});

test("bad colours fall back to black text", () => {
  assert.equal(textColor(undefined), "#000000");
});
