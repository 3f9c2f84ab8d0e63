// Messages in: every message is keyed by id, so replays and retries never show anything
// twice. A stored message replaces our pending row (same client_msg_id) or our upload's
// progress row; a new one is told to the loader (the launcher's preview).

import { hhmm, parseTime } from "../shared/format.js";
import { statusFromNotice } from "./conversation.js";
import { localizeMessage } from "./i18n.js";
import { roleOf } from "./view.js";

/** Whether a frame's message belongs in this view: null when it does not, else the row's role. */
export function acceptMessage(m, { ticketId, rendered }) {
  if (!m || !Number.isInteger(m.id) || typeof m.message !== "string") return null;
  if (m.kind === "note") return null; // private operator notes never belong here
  if (m.ticket_id && ticketId && m.ticket_id !== ticketId) return null;
  if (rendered.has(m.id)) return null; // already shown: never twice
  return roleOf(m.sender_type);
}

export function install(app) {
  const { S, act, frames, locale } = app;

  function handleMessage(m) {
    const valid = m && Number.isInteger(m.id) && typeof m.message === "string" && m.kind !== "note";
    if (valid && m.ticket_id && !S.ticketId) {
      act.setTicket(m.ticket_id);
    }
    const role = acceptMessage(m, S);
    if (!role) return;
    const date = parseTime(m.created_at);
    const att = m.attachment && typeof m.attachment === "object" ? m.attachment : null;
    const mine = m.client_msg_id ? S.uploads.get(m.client_msg_id) : null;
    if (mine) act.uploadStored(mine, att); // the progress row gives way to the real message
    const pendingRow = m.client_msg_id && !att ? S.pending.get(m.client_msg_id) : null;
    const isNew = m.id > S.seenAtLoad;

    act.withScroll(
      () => {
        let row;
        if (pendingRow) {
          row = pendingRow;
          S.pending.delete(m.client_msg_id);
          act.dropFromOutbox(m.client_msg_id);
          row.classList.remove("row--pending");
          row.removeAttribute("data-cmid");
          row.dataset.ts = String(date.getTime());
          const time = row.querySelector("time");
          time.textContent = hhmm(date);
          time.dateTime = date.toISOString();
        } else {
          let text = role === "customer" ? m.message : localizeMessage(locale, m);
          if (att && m.message === att.name) text = ""; // no caption: the name is on the card
          row = act.buildRow({
            role,
            senderType: m.sender_type,
            senderName: m.sender_name,
            text,
            date,
            attachment: att,
            kind: m.kind,
          });
        }
        row.dataset.id = String(m.id);
        if (m.client_msg_id) row.dataset.cmid = m.client_msg_id;
        S.rendered.set(m.id, row);
        act.placeStored(row, m.id);
        if (role === "customer") act.setReceipt(row);
        if (m.sender_type === "bot") act.removeLocalGreeting();
        if (m.sender_type === "admin") act.hideTyping();
      },
      { force: role === "customer", quiet: !isNew },
    );

    if (m.id > S.lastId) S.lastId = m.id;
    if (m.sender_type === "system") act.setStatus(statusFromNotice(m.message));
    act.countUnread(m);
    if (isNew) {
      app.postParent({
        type: "message",
        message: {
          id: m.id,
          ticket_id: m.ticket_id,
          sender_type: m.sender_type,
          sender_name: m.sender_name,
          message: act.summary(m),
          created_at: m.created_at,
          kind: m.kind,
        },
      });
    }
    act.markSeen();
  }

  frames.on("message", (f) => handleMessage(f.message));
  frames.on("ack", (f) => {
    if (f.ticketId) act.setTicket(f.ticketId);
    handleMessage(f.message);
    if (f.client_msg_id) act.dropFromOutbox(f.client_msg_id);
  });
  frames.on("ticket", (f) => {
    if (f.ticket) {
      act.setTicket(f.ticket.ticketId);
      act.setStatus(f.ticket.status);
    }
  });

  Object.assign(act, { handleMessage });
}
