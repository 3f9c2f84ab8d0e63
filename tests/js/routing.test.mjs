// node --test tests/js/: the pure parts of the dashboard's routing.js (no DOM needed).
import assert from "node:assert/strict";
import { test } from "node:test";

import { moved, parseLocal, priorityMarker, snoozePresets } from "../../src/trustdesk/web/admin/routing.js";

test("snooze presets: an hour, three hours, tomorrow 9:00, next Monday 9:00", () => {
  const now = new Date(2026, 11, 7, 22, 30); // a Monday evening
  const [h1, h3, tomorrow, monday] = snoozePresets(now);
  assert.equal(h1.until.getTime() - now.getTime(), 3600_000);
  assert.equal(h3.until.getTime() - now.getTime(), 3 * 3600_000);
  assert.deepEqual([tomorrow.until.getDate(), tomorrow.until.getHours(), tomorrow.until.getMinutes()], [8, 9, 0]);
  assert.equal(monday.until.getDay(), 1);
  assert.equal(monday.until.getDate(), 14); // on a Monday: the next one, not today
  const friday = snoozePresets(new Date(2026, 11, 11, 10, 0))[3].until;
  assert.deepEqual([friday.getDate(), friday.getHours()], [14, 9]);
  const endOfMonth = snoozePresets(new Date(2026, 11, 31, 12, 0))[2].until;
  assert.deepEqual([endOfMonth.getFullYear(), endOfMonth.getMonth(), endOfMonth.getDate()], [2027, 0, 1]);
});

test("a custom time must be well formed and in the future", () => {
  const now = new Date(2026, 11, 7, 10, 0);
  assert.equal(parseLocal("2026-12-08T09:15", now).getTime(), new Date(2026, 11, 8, 9, 15).getTime());
  assert.equal(parseLocal("2026-12-07T09:59", now), null);
  assert.equal(parseLocal("завтра", now), null);
  assert.equal(parseLocal("", now), null);
});

test("priority markers only for what is not normal", () => {
  assert.equal(priorityMarker("normal"), null);
  assert.equal(priorityMarker("urgent").cls, "prio prio-urgent");
  assert.equal(priorityMarker("low").icon, "⬇");
  assert.equal(priorityMarker("constructor"), null);
});

test("moving a rule up and down", () => {
  assert.deepEqual(moved([1, 2, 3], 2, -1), [1, 3, 2]);
  assert.deepEqual(moved([1, 2, 3], 0, 1), [2, 1, 3]);
  const same = [1, 2, 3];
  assert.equal(moved(same, 0, -1), same);
  assert.equal(moved(same, 2, 1), same);
});
