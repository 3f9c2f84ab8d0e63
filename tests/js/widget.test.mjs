// node --test tests/js/widget.test.mjs: the widget's pure logic (web/widget/*.js): unread and
// seen, typing, the outbox, `since` and the connection's backoff, loader messages, identity.
import assert from "node:assert/strict";
import { test } from "node:test";

import { backoffMs, headerState, helloFrame } from "../../src/trustdesk/web/widget/connection.js";
import { pollUrl } from "../../src/trustdesk/web/widget/polling.js";
import { statusFromNotice } from "../../src/trustdesk/web/widget/conversation.js";
import { parseIdentity } from "../../src/trustdesk/web/widget/identity.js";
import { acceptMessage } from "../../src/trustdesk/web/widget/messages.js";
import {
  dueItems,
  onRefused,
  parseOutbox,
  sendFrame,
  serializeOutbox,
} from "../../src/trustdesk/web/widget/outbox.js";
import { loaderMessage } from "../../src/trustdesk/web/widget/parent.js";
import {
  isOperatorTyping,
  shouldSignal,
  typingTtlMs,
} from "../../src/trustdesk/web/widget/typing.js";
import { seenAfter, unreadAfter } from "../../src/trustdesk/web/widget/unread.js";
import { pastedName, voiceName } from "../../src/trustdesk/web/widget/uploads.js";
import { receiptState, roleOf } from "../../src/trustdesk/web/widget/view.js";

// --- unread ---------------------------------------------------------------------------------

test("an operator reply while the panel is hidden counts and chimes once", () => {
  const counters = { unread: 1, seenId: 10, notifiedId: 10 };
  assert.deepEqual(unreadAfter({ id: 11, sender_type: "admin" }, counters, false), {
    unread: 2,
    notify: true,
  });
  // Visible: no red dot, still the chime.
  assert.deepEqual(unreadAfter({ id: 11, sender_type: "admin" }, counters, true), {
    unread: 1,
    notify: true,
  });
});

test("replays, notices, the bot and the customer's own messages do not count", () => {
  const counters = { unread: 0, seenId: 10, notifiedId: 12 };
  const none = { unread: 0, notify: false };
  assert.deepEqual(unreadAfter({ id: 9, sender_type: "admin" }, counters, false), none);
  assert.deepEqual(unreadAfter({ id: 13, sender_type: "system" }, counters, false), none);
  assert.deepEqual(unreadAfter({ id: 13, sender_type: "bot" }, counters, false), none);
  assert.deepEqual(unreadAfter({ id: 13, sender_type: "customer" }, counters, false), none);
  // Seen already chimed for (another tab): counts, no second chime.
  assert.deepEqual(unreadAfter({ id: 12, sender_type: "admin" }, counters, false), {
    unread: 1,
    notify: false,
  });
});

test("seeing the log moves the seen id forward only and tells the server once", () => {
  assert.deepEqual(seenAfter({ lastId: 20, seenId: 15, sentReadId: 15, ticketId: "T-1" }), {
    seenId: 20,
    sendRead: true,
  });
  assert.deepEqual(seenAfter({ lastId: 20, seenId: 25, sentReadId: 20, ticketId: "T-1" }), {
    seenId: 25,
    sendRead: false,
  });
  assert.equal(seenAfter({ lastId: 20, seenId: 0, sentReadId: 0, ticketId: null }).sendRead, false);
});

// --- typing ---------------------------------------------------------------------------------

test("the operator's typing indicator lasts the server's ttl, capped, 6 s without one", () => {
  assert.equal(typingTtlMs(5), 5000);
  assert.equal(typingTtlMs(600), 30000);
  assert.equal(typingTtlMs(undefined), 6000);
  assert.equal(typingTtlMs("nonsense"), 6000);
  assert.equal(typingTtlMs(-3), 6000);
});

test("only an operator's typing in this conversation is shown", () => {
  assert.equal(isOperatorTyping({ sender_type: "admin", ticketId: "T-1" }, "T-1"), true);
  assert.equal(isOperatorTyping({ sender_type: "admin" }, "T-1"), true);
  assert.equal(isOperatorTyping({ sender_type: "admin", ticketId: "T-2" }, "T-1"), false);
  assert.equal(isOperatorTyping({ sender_type: "customer", ticketId: "T-1" }, "T-1"), false);
});

test("our typing signal is sent at most every 3 s while typing", () => {
  assert.equal(shouldSignal({ active: false, sentAt: 0 }, 1000), true);
  assert.equal(shouldSignal({ active: true, sentAt: 1000 }, 3900), false);
  assert.equal(shouldSignal({ active: true, sentAt: 1000 }, 4001), true);
});

// --- outbox ---------------------------------------------------------------------------------

test("the stored outbox keeps well-formed items and drops sentAt", () => {
  const items = parseOutbox([
    { client_msg_id: "a", message: "hi", created_at: "2026-01-01T10:00:00Z", sentAt: 5, new_ticket: 1 },
    { client_msg_id: 3, message: "bad id" },
    null,
    { client_msg_id: "b" },
  ]);
  assert.equal(items.length, 1);
  assert.deepEqual(JSON.parse(serializeOutbox(items)), [
    { client_msg_id: "a", message: "hi", created_at: "2026-01-01T10:00:00Z", new_ticket: true },
  ]);
  assert.deepEqual(parseOutbox("not a list"), []);
  assert.deepEqual(parseOutbox(null), []);
});

test("an item is (re)sent when never sent or not acknowledged within 10 s", () => {
  const items = [
    { client_msg_id: "new", sentAt: 0 },
    { client_msg_id: "waiting", sentAt: 95_000 },
    { client_msg_id: "lost", sentAt: 89_000 },
  ];
  assert.deepEqual(
    dueItems(items, 100_000).map((i) => i.client_msg_id),
    ["new", "lost"],
  );
});

test("a refused send fails for good when invalid, else waits retry_after (1..60 s)", () => {
  assert.equal(onRefused("invalid_message", 5, 0), "failed");
  assert.equal(onRefused("too_long", null, 0), "failed");
  // rate limited: due again (sentAt + 10 s ack timeout) after retry_after seconds
  const now = 1_000_000;
  assert.equal(onRefused("rate_limited", 5, now) + 10_000, now + 5_000);
  assert.equal(onRefused("rate_limited", 600, now) + 10_000, now + 60_000);
  assert.equal(onRefused("rate_limited", undefined, now) + 10_000, now + 3_000);
  assert.equal(onRefused("", 0.2, now) + 10_000, now + 1_000);
});

test("new_ticket and routing go only with a message that may start a ticket", () => {
  const item = { client_msg_id: "c1", message: "hello", new_ticket: true };
  assert.deepEqual(sendFrame(item, { ticketId: null, team: "sales", pageUrl: "https://shop/x" }), {
    type: "send",
    message: "hello",
    client_msg_id: "c1",
    new_ticket: true,
    team: "sales",
    page_url: "https://shop/x",
  });
  assert.deepEqual(sendFrame(item, { ticketId: "T-1", team: "sales", pageUrl: "https://shop/x" }), {
    type: "send",
    message: "hello",
    client_msg_id: "c1",
  });
});

// --- since and the connection ---------------------------------------------------------------

test("hello asks for everything after the highest stored id, or an override once", () => {
  const base = { token: "tok", ticketId: "T-1", lastId: 42, pageUrl: null };
  assert.deepEqual(helloFrame({ ...base, sinceOverride: null }), {
    type: "hello",
    token: "tok",
    ticketId: "T-1",
    since: 42,
  });
  // An upload that started the ticket: replay from the start (the greeting).
  assert.equal(helloFrame({ ...base, sinceOverride: 0 }).since, 0);
  assert.equal(helloFrame({ ...base, pageUrl: "https://shop/p" }).page_url, "https://shop/p");
  assert.equal(
    pollUrl("T 1/x", 42),
    "/api/support/messages/T%201%2Fx?after=42&wait=25",
  );
});

test("backoff doubles from 0.5 s to 8 s with 60..100 % jitter", () => {
  assert.deepEqual(
    [0, 1, 2, 3, 4, 9].map((n) => backoffMs(n, () => 1)),
    [500, 1000, 2000, 4000, 8000, 8000],
  );
  assert.equal(backoffMs(0, () => 0), 300);
  for (let i = 0; i < 50; i++) {
    const ms = backoffMs(3);
    assert.ok(ms >= 2400 && ms <= 4000, ms);
  }
});

test("the header says connecting until it knows, then whether operators are online", () => {
  assert.equal(headerState("connecting", null), "connecting");
  assert.equal(headerState("online", null), "offline");
  assert.equal(headerState("online", 2), "online");
  assert.equal(headerState("waiting", 1), "online"); // known from before the blip
  assert.equal(headerState("polling", 0), "offline");
});

// --- messages, receipts, notices ------------------------------------------------------------

test("a message is shown once, never a note, never another ticket's", () => {
  const rendered = new Map([[5, {}]]);
  const view = { ticketId: "T-1", rendered };
  assert.equal(acceptMessage({ id: 6, message: "hi", sender_type: "admin" }, view), "agent");
  assert.equal(acceptMessage({ id: 6, message: "hi", sender_type: "customer" }, view), "customer");
  assert.equal(acceptMessage({ id: 5, message: "again", sender_type: "admin" }, view), null);
  assert.equal(acceptMessage({ id: 7, message: "x", kind: "note", sender_type: "admin" }, view), null);
  assert.equal(acceptMessage({ id: 8, message: "x", ticket_id: "T-2", sender_type: "admin" }, view), null);
  assert.equal(acceptMessage({ id: "9", message: "x" }, view), null);
  assert.equal(acceptMessage(null, view), null);
  assert.equal(roleOf("bot"), "agent");
  assert.equal(roleOf("system"), "system");
});

test("receipts: pending, failed, sent, read by the operators' read position", () => {
  assert.equal(receiptState({ id: undefined, failed: false, adminReadId: 0 }), "pending");
  assert.equal(receiptState({ id: undefined, failed: true, adminReadId: 0 }), "failed");
  assert.equal(receiptState({ id: "12", failed: false, adminReadId: 11 }), "sent");
  assert.equal(receiptState({ id: "12", failed: false, adminReadId: 12 }), "read");
  assert.equal(statusFromNotice("✅ Тикет закрыт. Спасибо за обращение!"), "closed");
  assert.equal(statusFromNotice("Тикет открыт повторно"), "open");
  assert.equal(statusFromNotice("Привет"), null);
});

// --- the loader and the shop's customer -----------------------------------------------------

test("only the loader of the verified parent origin is listened to", () => {
  const parent = {};
  const where = { embedded: true, parentOrigin: "https://shop.example", parent };
  const data = { source: "trustdesk-loader", type: "state", open: true };
  assert.equal(loaderMessage({ source: parent, origin: "https://shop.example", data }, where), data);
  assert.equal(loaderMessage({ source: parent, origin: "https://evil.example", data }, where), null);
  assert.equal(loaderMessage({ source: {}, origin: "https://shop.example", data }, where), null);
  const other = { source: "someone-else", type: "state" };
  assert.equal(loaderMessage({ source: parent, origin: "https://shop.example", data: other }, where), null);
  assert.equal(loaderMessage({ source: parent, origin: "https://shop.example", data }, { ...where, embedded: false }), null);
});

test("the shop's signed customer needs id, expires and a 64-hex hash; text is bounded", () => {
  const hash = "ab".repeat(32);
  assert.deepEqual(parseIdentity({ id: 7, expires: 1.9e9 + 0.5, hash, name: "  Анна ", email: " a@b.ru " }), {
    user_id: "7",
    expires: 1.9e9,
    hash,
    name: "Анна",
    email: "a@b.ru",
  });
  assert.equal(parseIdentity({ id: "", expires: 1, hash }), null);
  assert.equal(parseIdentity({ id: "7", expires: "soon", hash }), null);
  assert.equal(parseIdentity({ id: "7", expires: 1, hash: "xyz" }), null);
  assert.equal(parseIdentity("7"), null);
  assert.equal(parseIdentity({ user_id: "x".repeat(500), expires: 1, hash }).user_id.length, 128);
});

test("files get names a human recognises", () => {
  const d = new Date(2026, 11, 7, 9, 5, 3);
  assert.equal(pastedName({ name: "image.png", type: "image/png" }, "Скриншот", d), "Скриншот 09-05-03.png");
  assert.equal(pastedName({ name: "", type: "image/jpeg" }, "Screenshot", d), "Screenshot 09-05-03.jpg");
  assert.equal(pastedName({ name: "invoice.pdf", type: "application/pdf" }, "x", d), "invoice.pdf");
  assert.equal(voiceName("audio/ogg;codecs=opus", d), "voice-20261207-090503.ogg");
  assert.equal(voiceName("audio/webm", d), "voice-20261207-090503.webm");
});
