// node --test tests/js/: the pure parts of the dashboard's audit.js (no DOM needed).
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";

import { GROUPS, actionName, auditQuery, detailsText } from "../../src/trustdesk/web/admin/audit.js";
import { has } from "../../src/trustdesk/web/admin/i18n.js";

test("the query has only the parameters that are set", () => {
  assert.equal(auditQuery(), "limit=50");
  assert.equal(auditQuery({ before: 41, action: "login.", actor: 3, limit: 10 }), "limit=10&before=41&action=login.&actor=3");
  assert.equal(auditQuery({ action: "", actor: null }), "limit=50");
});

test("a change reads old → new, other details key: value", () => {
  const change = { changed: ["title", "color"], old: { title: "", color: "#2563eb" }, new: { title: "Помощь", color: "#112233" } };
  assert.equal(detailsText(change), "title: «—» → «Помощь»; color: «#2563eb» → «#112233»");
  assert.equal(detailsText({ changed: ["allowed_origins"], truncated: true }), "allowed_origins …");
  assert.equal(detailsText({ changed: ["o"], old: { o: ["a", "b"] }, new: { o: [] } }), "o: «a, b» → «—»");
  assert.equal(detailsText({ tickets: 2, messages: 5 }), "tickets: 2, messages: 5");
  assert.equal(detailsText(null), "");
  assert.equal(detailsText({}), "");
});

test("every action code of actions/audit.py and every filter group has a name", () => {
  const py = readFileSync(new URL("../../src/trustdesk/actions/audit.py", import.meta.url), "utf8");
  const block = py.slice(py.indexOf("ACTIONS = ("), py.indexOf(")", py.indexOf("ACTIONS = (")));
  const codes = [...block.matchAll(/"([a-z0-9_.]+)"/g)].map((m) => m[1]);
  assert.ok(codes.length >= 25, `found ${codes.length} codes`);
  for (const code of codes) {
    assert.ok(has(`audit.a.${code}`), `no name for ${code}`);
    assert.notEqual(actionName(code), code);
  }
  for (const g of GROUPS) {
    assert.ok(has(`audit.g.${g}`), `no name for group ${g}`);
    assert.ok(codes.some((c) => c === g || c.startsWith(g)), `group ${g} matches no code`);
  }
  assert.equal(actionName("made.up"), "made.up");
});
