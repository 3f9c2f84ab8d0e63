// node --test tests/js/: the pure parts of waiting.js and alerts.js (no DOM needed).
import assert from "node:assert/strict";
import { test } from "node:test";

import { alertTitle, waitingForMe } from "../../src/trustdesk/web/admin/alerts.js";
import { byWait, isWaiting, overdue, waitedMinutes, waitingLabel } from "../../src/trustdesk/web/admin/waiting.js";

const at = (iso) => Date.parse(iso);

test("minutes waited: whole minutes, never negative", () => {
  const since = "2026-12-07T10:00:00.000000Z";
  assert.equal(waitedMinutes(since, at("2026-12-07T10:00:59Z")), 0);
  assert.equal(waitedMinutes(since, at("2026-12-07T10:07:30Z")), 7);
  assert.equal(waitedMinutes(since, at("2026-12-07T09:59:00Z")), 0);
  assert.equal(waitedMinutes("not a time", at("2026-12-07T10:07:30Z")), 0);
});

test("the label in both languages' shapes", () => {
  const tr = (key, p) => `${key}${p ? JSON.stringify(p) : ""}`;
  const since = "2026-12-07T10:00:00Z";
  assert.equal(waitingLabel(since, at("2026-12-07T10:00:30Z"), tr), "waiting.lessThanMinute");
  assert.equal(waitingLabel(since, at("2026-12-07T10:07:00Z"), tr), 'waiting.minutes{"n":7}');
  assert.equal(waitingLabel(since, at("2026-12-07T11:35:00Z"), tr), 'waiting.hours{"h":1,"m":35}');
  assert.equal(waitingLabel(since, at("2026-12-07T10:07:00Z")), "ждёт 7 мин");
});

test("waiting view: open, waiting, not snoozed; longest first", () => {
  const a = { ticketId: "TKT-2", status: "open", waiting_since: "2026-12-07T10:05:00Z" };
  const b = { ticketId: "TKT-1", status: "open", waiting_since: "2026-12-07T10:01:00Z" };
  const c = { ticketId: "TKT-3", status: "open", waiting_since: "2026-12-07T10:01:00Z" };
  assert.deepEqual([a, c, b].sort(byWait).map((s) => s.ticketId), ["TKT-1", "TKT-3", "TKT-2"]);
  assert.equal(isWaiting(a), true);
  assert.equal(isWaiting({ ...a, waiting_since: null }), false);
  assert.equal(isWaiting({ ...a, status: "closed" }), false);
  assert.equal(isWaiting({ ...a, snoozed_until: "2026-12-08T09:00:00Z" }), false);
});

test("overdue only past N, never when escalation is off", () => {
  const since = "2026-12-07T10:00:00Z";
  assert.equal(overdue(since, 5, at("2026-12-07T10:04:59Z")), false);
  assert.equal(overdue(since, 5, at("2026-12-07T10:05:00Z")), true);
  assert.equal(overdue(since, 0, at("2026-12-07T12:00:00Z")), false);
});

test("the title counts customers waiting for me: mine or nobody's", () => {
  const w = "2026-12-07T10:00:00Z";
  const tickets = [
    { status: "open", waiting_since: w, assignee: null },
    { status: "open", waiting_since: w, assignee: { id: 1 } },
    { status: "open", waiting_since: w, assignee: { id: 2 } },
    { status: "open", waiting_since: null, assignee: null },
    { status: "open", waiting_since: w, assignee: null, snoozed_until: w },
    { status: "closed", waiting_since: w, assignee: null },
  ];
  assert.equal(waitingForMe(tickets, 1), 2);
  assert.equal(alertTitle(0), null);
  assert.equal(alertTitle(2), "🔴 Ждут ответа: 2");
});
