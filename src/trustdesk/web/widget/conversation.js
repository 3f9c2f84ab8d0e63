// Which conversation the panel shows: follow a ticket the server names, switch to another
// ("My conversations"), start a new one, forget one the server no longer knows; its status
// (open / closed) and the "closed" note.

import { KEYS } from "./core.js";

const CLOSED_TEXT = "✅ Тикет закрыт. Спасибо за обращение!";
const REOPENED_TEXT = "Тикет открыт повторно";

/** The status a system message announces, or null. */
export function statusFromNotice(message) {
  if (message === CLOSED_TEXT) return "closed";
  if (message === REOPENED_TEXT) return "open";
  return null;
}

export function install(app) {
  const { S, els, act, store, storage } = app;

  store.subscribe(["status"], () => {
    els.closedNote.hidden = S.status !== "closed";
    app.extras?.syncRating();
  });

  function setStatus(status) {
    if (status !== "open" && status !== "closed") return;
    store.set({ status });
  }

  function setTicket(ticketId) {
    if (!ticketId || ticketId === S.ticketId) return;
    const had = S.ticketId;
    S.ticketId = ticketId;
    S.wantNew = false;
    storage.set(KEYS.ticket, ticketId);
    app.extras?.renderTranscriptButton();
    app.kb?.then((kb) => kb.ticket(ticketId));
    if (had) {
      // A different conversation than the one we knew: start its view from scratch and let
      // the socket replay it from the beginning.
      resetView();
      act.closeSocket();
    }
    act.wakePoller();
  }

  function resetView() {
    for (const row of S.rendered.values()) row.remove();
    for (const node of els.log.querySelectorAll(".day")) node.remove();
    S.rendered.clear();
    S.lastId = 0;
    S.seenId = 0;
    S.seenAtLoad = 0;
    S.notifiedId = 0;
    store.set({ adminReadId: 0, unread: 0, status: null });
    els.closedNote.hidden = true;
    act.hideTyping();
    act.reportUnread();
    app.extras?.syncRating();
  }

  // Follow another of the customer's tickets ("My conversations"): a fresh view, and the
  // socket says hello again with that ticket and since=0.
  function switchTicket(ticketId) {
    if (!ticketId) return;
    S.wantNew = false;
    if (ticketId === S.ticketId) return;
    S.ticketId = ticketId;
    storage.set(KEYS.ticket, ticketId);
    resetView();
    act.removeLocalGreeting();
    app.extras?.renderTranscriptButton();
    act.reconnectNow();
    act.start();
  }

  // "New conversation": an empty view; the first message goes with new_ticket: true.
  function newConversation() {
    S.ticketId = null;
    storage.del(KEYS.ticket);
    resetView();
    S.wantNew = true;
    act.showLocalGreeting();
    app.kb?.then((kb) => kb.reset());
    app.extras?.renderTranscriptButton();
    act.reconnectNow();
    act.start();
    els.input.focus();
  }

  function forgetTicket() {
    S.ticketId = null;
    storage.del(KEYS.ticket);
    resetView();
    act.showLocalGreeting();
  }

  Object.assign(act, { setStatus, setTicket, switchTicket, newConversation, forgetTicket });
}
