// Messages out: a persisted outbox. Each message carries a client_msg_id and waits (in
// storage, across reloads) until the server has stored it; re-sent when not acknowledged
// in time, which is harmless (the server keys by client_msg_id).

import { parseTime, readJson, uuid } from "../shared/format.js";
import { KEYS, LIMITS } from "./core.js";

/** The outbox as stored, keeping only well-formed items. */
export function parseOutbox(value) {
  if (!Array.isArray(value)) return [];
  return value.filter((i) => i && typeof i.client_msg_id === "string" && typeof i.message === "string");
}

/** What is stored of the outbox (sentAt is per page: a reload sends everything again). */
export function serializeOutbox(items) {
  return JSON.stringify(
    items.map(({ client_msg_id, message, created_at, new_ticket }) => ({
      client_msg_id,
      message,
      created_at,
      new_ticket: Boolean(new_ticket),
    })),
  );
}

/** Items to (re)send over the socket now: never sent, or not acknowledged in time. */
export function dueItems(items, now, ackTimeoutMs = LIMITS.ACK_TIMEOUT_MS) {
  return items.filter((i) => !i.sentAt || now - i.sentAt >= ackTimeoutMs);
}

/**
 * A "send" the server refused: "failed" for good (invalid, too long, empty), else the
 * sentAt that makes the watchdog send it again after retry_after seconds (1..60, else 3).
 */
export function onRefused(code, retryAfter, now, ackTimeoutMs = LIMITS.ACK_TIMEOUT_MS) {
  if (/^(invalid|bad_request|too_long|empty)/.test(String(code || ""))) return "failed";
  const wait = Math.min(60, Math.max(1, Number(retryAfter) || 3)) * 1000;
  return now - ackTimeoutMs + wait;
}

/** The send frame (or POST body) of an item: new_ticket only while there is no ticket. */
export function sendFrame(item, { ticketId, team, pageUrl }) {
  const frame = { type: "send", message: item.message, client_msg_id: item.client_msg_id };
  if (item.new_ticket && !ticketId) frame.new_ticket = true;
  if (!ticketId) {
    // Where a ticket this message may start comes from: the embed's data-team and the page
    // (the server's routing rules choose its team).
    if (team) frame.team = team;
    if (pageUrl) frame.page_url = pageUrl;
  }
  return frame;
}

export function install(app) {
  const { S, act, frames, storage } = app;
  S.outbox = parseOutbox(readJson(storage, KEYS.outbox, []));

  function saveOutbox() {
    storage.set(KEYS.outbox, serializeOutbox(S.outbox));
  }

  function dropFromOutbox(clientMsgId) {
    const before = S.outbox.length;
    S.outbox = S.outbox.filter((i) => i.client_msg_id !== clientMsgId);
    if (S.outbox.length !== before) saveOutbox();
  }

  function renderPending(item) {
    const row = act.buildRow({
      role: "customer",
      senderType: "customer",
      senderName: "",
      text: item.message,
      date: parseTime(item.created_at),
    });
    row.classList.add("row--pending");
    row.dataset.cmid = item.client_msg_id;
    S.pending.set(item.client_msg_id, row);
    act.appendPending(row);
  }

  function queueMessage(text) {
    const item = {
      client_msg_id: uuid(),
      message: text,
      created_at: new Date().toISOString(),
      sentAt: 0,
      new_ticket: S.wantNew && !S.ticketId,
    };
    S.outbox.push(item);
    saveOutbox();
    renderPending(item);
    if (S.status === "closed") act.setStatus("open"); // the next message reopens the ticket
    act.start();
    flush();
  }

  function flush() {
    if (S.mode === "online") flushWs();
    else if (S.mode === "polling") flushHttp();
  }

  const where = () => ({ ticketId: S.ticketId, team: app.TEAM, pageUrl: S.pageUrl });

  function flushWs() {
    const now = Date.now();
    for (const item of dueItems(S.outbox, now)) {
      if (!act.wsSend(sendFrame(item, where()))) return;
      item.sentAt = now;
    }
  }

  let httpFlushing = false;

  async function flushHttp() {
    if (httpFlushing) return;
    httpFlushing = true;
    try {
      while (S.outbox.length && S.mode === "polling") {
        const item = S.outbox[0];
        const { type: _type, ...body } = sendFrame(item, where());
        if (S.ticketId) body.ticketId = S.ticketId;
        const res = await act.api("/api/support/send-message", { method: "POST", body });
        if (res.status === 429) {
          await act.sleep(act.retryAfter(res));
          continue;
        }
        if (res.status === 401) {
          act.dropToken();
          return;
        }
        if (res.status >= 500 || res.status === 408) throw new Error(`send ${res.status}`);
        if (!res.ok) {
          // Refused for good (e.g. invalid): keep the text visible, marked as not sent.
          markFailed(item.client_msg_id);
          continue;
        }
        const data = await res.json();
        if (data.ticketId) act.setTicket(data.ticketId);
        act.handleMessage(data.message);
        dropFromOutbox(item.client_msg_id);
      }
    } catch {
      /* network trouble: the poll loop retries */
    } finally {
      httpFlushing = false;
    }
  }

  function markFailed(clientMsgId) {
    const row = S.pending.get(clientMsgId);
    dropFromOutbox(clientMsgId);
    if (row) {
      row.dataset.state = "failed";
      act.setReceipt(row);
    }
  }

  // A "send" refused by the server: wait and retry when rate limited, else mark it not sent.
  frames.on("error", (f) => {
    const item = S.outbox.find((i) => i.client_msg_id === f.client_msg_id);
    if (!item) return;
    const next = onRefused(f.code, f.retry_after, Date.now());
    if (next === "failed") markFailed(f.client_msg_id);
    else item.sentAt = next;
  });

  // Re-send anything not acknowledged in time (idempotent by client_msg_id).
  setInterval(() => {
    if (S.mode === "online") flushWs();
    else if (S.mode === "polling" && S.outbox.length) act.wakePoller();
  }, 3000);

  Object.assign(act, { queueMessage, flushWs, flushHttp, dropFromOutbox, renderPending });
}
