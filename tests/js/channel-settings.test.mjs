import assert from "node:assert/strict";
import { test } from "node:test";

import { sectionPatch, secretText } from "../../src/trustdesk/web/admin/channel-settings.js";

test("an empty secret is left out so the server keeps it", () => {
  assert.deepEqual(sectionPatch("imap", { host: " mail.shop.ru ", password: "" }), { host: "mail.shop.ru" });
  assert.deepEqual(sectionPatch("smtp", { password: "s3cret" }), { password: "s3cret" });
  assert.deepEqual(sectionPatch("telegram", { bot_token: "", webhook: true }), { webhook: true });
});

test("a port becomes a number, anything else is sent as typed (the server names the field)", () => {
  assert.deepEqual(sectionPatch("imap", { port: "993" }), { port: 993 });
  assert.deepEqual(sectionPatch("imap", { port: "99x" }), { port: "99x" });
  assert.deepEqual(sectionPatch("imap", { port: "" }), { port: "" });
});

test("fields of another section are never sent", () => {
  assert.deepEqual(sectionPatch("telegram", { host: "x", bot_token: "1:a" }), { bot_token: "1:a" });
});

test("a set secret shows its last 4 characters, or only that it is set", () => {
  assert.equal(secretText({ set: true, last4: "abcd" }), "задан · …abcd");
  assert.equal(secretText({ set: true, last4: "" }), "задан");
  assert.equal(secretText({ set: false, last4: "" }), "");
  assert.equal(secretText(undefined), "");
});
