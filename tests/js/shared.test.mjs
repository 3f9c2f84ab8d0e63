// node --test tests/js/shared.test.mjs: formatting, file checks and plurals of web/shared/.
import assert from "node:assert/strict";
import { test } from "node:test";

import { fileProblem, MAX_FILE_BYTES } from "../../src/trustdesk/web/shared/files.js";
import {
  dayKey,
  formatDuration,
  formatSize,
  hhmm,
  interpolate,
  parseTime,
  readJson,
  uuid,
} from "../../src/trustdesk/web/shared/format.js";
import { plural } from "../../src/trustdesk/web/shared/i18n.js";


test("sizes: one decimal below 100 of a unit, Russian comma, English point", () => {
  assert.equal(formatSize(0), "0 Б");
  assert.equal(formatSize(512, "en"), "512 B");
  assert.equal(formatSize(1536), "1,5 КБ");
  assert.equal(formatSize(1536, "en"), "1.5 KB");
  assert.equal(formatSize(1024 * 1024), "1 МБ");
  assert.equal(formatSize(175 * 1024), "175 КБ");
  assert.equal(formatSize(12.34 * 1024 * 1024, "en"), "12.3 MB");
  assert.equal(formatSize("junk"), "0 Б");
});

test("durations and times", () => {
  assert.equal(formatDuration(7.9), "0:07");
  assert.equal(formatDuration(125), "2:05");
  assert.equal(formatDuration(Number.NaN), "0:00");
  const d = new Date(2026, 0, 5, 9, 7);
  assert.equal(hhmm(d), "09:07");
  assert.equal(dayKey(d), "2026-01-05");
  assert.ok(parseTime("nonsense") instanceof Date);
  assert.equal(parseTime("2026-01-05T10:00:00Z").toISOString(), "2026-01-05T10:00:00.000Z");
});

test("readJson: the fallback when missing or broken", () => {
  const store = { get: (k) => ({ good: '{"a":1}', bad: "{", nul: "null" })[k] ?? null };
  assert.deepEqual(readJson(store, "good", {}), { a: 1 });
  assert.deepEqual(readJson(store, "bad", []), []);
  assert.deepEqual(readJson(store, "nul", "x"), "x");
  assert.deepEqual(readJson(store, "missing", 0), 0);
});

test("uuid is a version 4 UUID", () => {
  assert.match(uuid(), /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
});

test("file checks: empty, too large, a type the server refuses", () => {
  assert.equal(fileProblem({ size: 0, type: "image/png" }), "empty_file");
  assert.equal(fileProblem({ size: MAX_FILE_BYTES + 1, type: "image/png" }), "file_too_large");
  assert.equal(fileProblem({ size: 10, type: "application/x-msdownload" }), "unsupported_type");
  assert.equal(fileProblem({ size: 10, type: "audio/webm;codecs=opus" }), null);
  assert.equal(fileProblem({ size: 10, type: "" }), null); // unknown: the server decides
  assert.equal(fileProblem({ size: 2000, type: "image/png" }, 1000), "file_too_large");
});

test("plurals: Russian one / few / many, English one / other", () => {
  const ru = { one: "{n} сообщение", few: "{n} сообщения", many: "{n} сообщений", other: "{n} сообщения" };
  const en = { one: "{n} message", other: "{n} messages" };
  assert.deepEqual(
    [1, 2, 5, 11, 21, 22, 25, 101, 111].map((n) => plural("ru", n, ru)),
    [
      "1 сообщение",
      "2 сообщения",
      "5 сообщений",
      "11 сообщений",
      "21 сообщение",
      "22 сообщения",
      "25 сообщений",
      "101 сообщение",
      "111 сообщений",
    ],
  );
  assert.equal(plural("ru", 1.5, ru), "1.5 сообщения"); // fractions: "other"
  assert.deepEqual([0, 1, 2].map((n) => plural("en", n, en)), ["0 messages", "1 message", "2 messages"]);
  assert.equal(plural("de", 5, ru), "5 сообщений"); // unknown locale: Russian, the default
});

test("placeholders are filled as text, every occurrence, unknown ones kept", () => {
  assert.equal(interpolate("{name} печатает… {name}", { name: "Анна" }), "Анна печатает… Анна");
  assert.equal(interpolate("{a} {b}", { a: 1 }), "1 {b}");
  assert.equal(interpolate("plain"), "plain");
});
