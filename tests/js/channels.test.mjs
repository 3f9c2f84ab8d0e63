import assert from "node:assert/strict";
import { test } from "node:test";

import { channelKey } from "../../src/trustdesk/web/admin/channels.js";

test("only email and Telegram tickets are marked", () => {
  assert.equal(channelKey("email"), "channel.email");
  assert.equal(channelKey("telegram"), "channel.telegram");
  assert.equal(channelKey("web"), null);
  assert.equal(channelKey(undefined), null);
  assert.equal(channelKey("constructor"), null);
});
