import assert from "node:assert/strict";
import { test } from "node:test";

import { channelIcon, preview } from "../../src/trustdesk/web/admin/customer-history.js";

test("each channel has its icon and name; an unknown one is shown neutrally", () => {
  assert.deepEqual(channelIcon("email"), { icon: "✉", name: "Почта" });
  assert.deepEqual(channelIcon("telegram"), { icon: "✈", name: "Telegram" });
  assert.deepEqual(channelIcon("web"), { icon: "🌐", name: "Виджет на сайте" });
  assert.deepEqual(channelIcon("constructor"), { icon: "•", name: "constructor" });
  assert.deepEqual(channelIcon(undefined), { icon: "•", name: "" });
});

test("the preview is one line; a file without text says so; nothing says so", () => {
  assert.equal(preview({ kind: "text", message: "Заказ 1057\n\nне пришёл" }), "Заказ 1057 не пришёл");
  assert.equal(preview({ kind: "file", message: "" }), "📎 Файл");
  assert.equal(preview(null), "Без сообщений");
  assert.equal(preview({ kind: "text", message: "   " }), "Без сообщений");
});
