// The open conversation: loading it, its header, its messages, read receipts; assign, close, reopen.

import { api, request } from "./api.js";
import { uploadPendingEl, uploadsWaiting } from "./composer-files.js";
import {
  buildComposer,
  discardPending,
  outboxAcked,
  renderComposerState,
  sendPending,
  stopMyTyping,
} from "./composer.js";
import { confirmDialog } from "./customer-data.js";
import { renderAssign, renderInfo } from "./customer-panel.js";
import { clear, dayLabel, fullWhen, h, hhmm, replaceChildren } from "./dom.js";
import { attachmentBody } from "./files.js";
import { onMessage, onTicket } from "./frames.js";
import { avatar, customerName, errorText, guestName, isViewing, linkify, toast, ts } from "./helpers.js";
import { getLang, noticeText, t } from "./i18n.js";
import { noteMax, renderList, sortedTickets, upsertTicket } from "./inbox.js";
import { kbFromAnswer } from "./kb.js";
import { isTextField, showShortcuts, stepId } from "./keys.js";
import { mergeButton, ticketLabels } from "./labels.js";
import { headerMarker } from "./routing.js";
import { renderBadges } from "./shell.js";
import { conn, state, ui } from "./state.js";

// What labels.js (labels on tickets, merging two tickets) needs of this module.
export const labelCtx = {
  errorText: (e) => errorText(e),
  toast: (m, kind) => toast(m, kind),
  confirm: (o) => confirmDialog(o),
  onTicket: (s) => onTicket(s),
  refresh: () => {
    refreshCurrent();
    if (state.current) loadRelated(state.current);
  },
};

// ---------------------------------------------------------------- conversation

export function leaveTicket() {
  stopMyTyping();
  if (ui.recorder) ui.recorder.cancel();
  if (ui.reply && state.currentId) state.drafts.set(state.currentId, ui.reply.value);
  state.currentId = null;
  state.current = null;
}

export async function openTicket(id) {
  if (id === state.currentId && (state.current || !id)) return;
  if (ui.reply && state.currentId) state.drafts.set(state.currentId, ui.reply.value);
  stopMyTyping();
  state.currentId = id;
  state.current = id
    ? { id, messages: new Map(), pending: new Map(), loaded: false, error: null, lastReadSent: 0 }
    : null;
  if (state.current && conn.outbox) for (const p of conn.outbox.forTicket(id)) state.current.pending.set(p.cmid, p);
  if (state.current) for (const p of uploadsWaiting.values()) if (p.ticketId === id) state.current.pending.set(p.cmid, p);
  state.mode = "reply";
  state.showInfo = false;
  if (ui.inbox) ui.inbox.classList.toggle("has-ticket", Boolean(id));
  buildConversation();
  renderList();
  if (!id) return;
  const cur = state.current;
  try {
    const r = await api.ticket(id);
    if (state.current !== cur) return;
    cur.loaded = true;
    for (const m of r.messages || []) addMessage(cur, m);
    cur.lastReadSent = Math.max(0, ...[...cur.messages.keys()]);
    const s = upsertTicket(r.ticket);
    if (s) s.unread = 0;
  } catch (e) {
    if (state.current !== cur) return;
    if (e.status === 401) return;
    cur.error = e.status === 404 ? t("ticket.notFound") : errorText(e);
  }
  renderConversation({ toBottom: true });
  renderList();
  renderBadges();
  maybeMarkRead();
  if (cur.loaded) {
    focusReply();
    loadRelated(cur);
    loadContext(cur);
  }
}

/** Focus the reply box, unless the operator is typing somewhere else (the search box). */
function focusReply() {
  const active = document.activeElement;
  if (!ui.reply || ui.reply.disabled || (active !== ui.reply && isTextField(active))) return;
  ui.reply.focus({ preventScroll: true });
}

/** After login: the open ticket's reply box, else the first ticket (so j/k and Enter work). */
export function focusAfterLogin() {
  if (state.current) return focusReply();
  const active = document.activeElement;
  if (active && active !== document.body && active !== document.documentElement) return;
  const first = ui.list && ui.list.querySelector("a.ticket-row");
  if (first) first.focus({ preventScroll: true });
}

/** j/k, arrows: the next or previous ticket in the list as shown. */
export function stepTicket(delta) {
  if (state.view !== "tickets" || !ui.list) return false;
  const ids = sortedTickets().map((x) => x.ticketId);
  const id = stepId(ids, state.currentId, delta);
  if (!id) return false;
  if (id !== state.currentId) location.hash = `#/tickets/${encodeURIComponent(id)}`;
  const row = ui.list.querySelector(`a.ticket-row[data-ticket-id="${CSS.escape(id)}"]`);
  if (row) row.scrollIntoView({ block: "nearest" });
  return true;
}

export function openShortcuts() {
  showShortcuts({
    title: t("keys.title"),
    close: t("keys.close"),
    rows: [
      [["j", "↓"], t("keys.next")],
      [["k", "↑"], t("keys.prev")],
      [["Enter"], t("keys.send")],
      [["Shift", "Enter"], t("keys.newline")],
      [["Esc"], t("keys.leave")],
      [["?"], t("keys.help")],
    ],
  });
}

/** The shop's orders of a signed-in customer (TRUSTDESK_CONTEXT_URL), after the ticket. */
async function loadContext(cur) {
  const s = state.tickets.get(cur.id);
  if (!s || !s.customer_id) return;
  try {
    const r = await request("GET", `/api/admin/support/ticket/${encodeURIComponent(cur.id)}/context`);
    if (state.current !== cur) return;
    cur.context = r;
  } catch {
    if (state.current !== cur) return;
    cur.context = { orders: [], error: "unavailable" };
  }
  renderInfo();
}

/** The same customer's other conversations (when the server knows them). */
async function loadRelated(cur) {
  try {
    const r = await api.related(cur.id);
    if (state.current !== cur) return;
    cur.related = (r.tickets || []).filter((x) => x.ticketId !== cur.id);
    renderInfo();
  } catch {
    /* optional: older servers do not have it */
  }
}

/** After a reconnect: fetch the open ticket again, merging by id. */
export async function refreshCurrent() {
  const cur = state.current;
  if (!cur || !cur.loaded) return;
  try {
    const r = await api.ticket(cur.id);
    if (state.current !== cur) return;
    for (const m of r.messages || []) addMessage(cur, m);
    upsertTicket(r.ticket);
    renderConversation();
  } catch {
    /* next reconnect tries again */
  }
}

export function addMessage(cur, m) {
  noteMax(m.id);
  if (m.client_msg_id) outboxAcked(m.client_msg_id);
  cur.messages.set(m.id, m);
  if (m.client_msg_id && cur.pending.has(m.client_msg_id)) {
    cur.pending.delete(m.client_msg_id);
    return;
  }
  // The live echo can beat the HTTP answer; without an id to match, match my own text.
  if (!state.me || m.operator_id === null || m.operator_id === undefined) {
    if (m.sender_type !== "system") return;
  } else if (m.operator_id !== state.me.id) {
    return;
  }
  const mode = m.kind === "note" ? "note" : m.sender_type === "system" ? "system" : "reply";
  for (const [cmid, p] of cur.pending) {
    if (p.mode === mode && p.text === m.message && !p.failed) {
      cur.pending.delete(cmid);
      break;
    }
  }
}

export function maybeMarkRead() {
  const cur = state.current;
  if (!cur || !cur.loaded || !isViewing(cur.id)) return;
  const s = state.tickets.get(cur.id);
  let last = 0;
  for (const id of cur.messages.keys()) if (id > last) last = id;
  if (s && s.unread) {
    s.unread = 0;
    renderList();
    renderBadges();
  }
  if (last > cur.lastReadSent) {
    cur.lastReadSent = last;
    const frame = { type: "read", ticketId: cur.id, last_read_id: last };
    if (!(conn.live && conn.live.send(frame))) api.read(cur.id, last).catch(() => {});
  }
}

function buildConversation() {
  if (!ui.convPane) return;
  if (ui.recorder) ui.recorder.cancel();
  for (const k of ["convHeader", "msgs", "typingEl", "composer", "reply", "closedNote", "canned", "recorder", "stagedList"]) {
    ui[k] = null;
  }
  if (!state.currentId) {
    replaceChildren(
      ui.convPane,
      h(
        "div",
        { class: "conv-empty" },
        h("div", { class: "conv-empty-icon", "aria-hidden": "true" }, "💬"),
        h("h2", null, t("empty.title")),
        h("p", { class: "muted" }, t("empty.text")),
      ),
    );
    clear(ui.infoPane);
    ui.inbox.classList.remove("show-info");
    return;
  }
  ui.convHeader = h("div", { class: "conv-header" });
  ui.msgs = h("div", { class: "messages", role: "log", "aria-live": "polite", "aria-relevant": "additions" });
  ui.typingEl = h("div", { class: "typing-line", "aria-live": "polite" });
  ui.closedNote = h("div", { class: "closed-note", hidden: true }, t("ticket.closedBanner"));
  ui.composer = buildComposer();
  replaceChildren(
    ui.convPane,
    ui.convHeader,
    h("div", { class: "messages-scroll" }, ui.msgs, ui.typingEl),
    ui.closedNote,
    ui.composer,
  );
  ui.msgsScroll = ui.convPane.querySelector(".messages-scroll");
  ui.msgsScroll.addEventListener("scroll", () => {
    if (ui.msgsScroll.scrollTop < 4 && ui.msgs) ui.msgsScroll.dataset.top = "1";
  });
  replaceChildren(ui.msgs, h("div", { class: "conv-loading" }, t("list.loading")));
  renderConvHeader();
  renderInfo();
  renderComposerState(); // disabled until the history is loaded
}

function renderConversation({ toBottom = false } = {}) {
  if (!ui.msgs) return;
  renderConvHeader();
  renderMessages({ toBottom });
  renderTyping();
  renderInfo();
  renderComposerState();
}

export function renderConvHeader() {
  if (!ui.convHeader || !state.current) return;
  const s = state.tickets.get(state.currentId);
  const back = h(
    "a",
    { href: "#/tickets", class: "icon-btn back-btn", "aria-label": t("ticket.back"), title: t("ticket.back") },
    "←",
  );
  if (!s) {
    replaceChildren(
      ui.convHeader,
      back,
      h("div", { class: "conv-title" }, h("h2", null, state.currentId), state.current.error ? h("span", { class: "muted" }, state.current.error) : null),
    );
    return;
  }
  const name = customerName(s);
  const online = Boolean(s.visitor && s.visitor.online);
  const mine = s.assignee && s.assignee.id === state.me.id;
  const actions = h("div", { class: "conv-actions" });
  if (!mine && s.status === "open") {
    actions.append(
      h("button", { type: "button", class: "btn soft", onclick: () => assign(state.me.id) }, `✋ ${t("ticket.take")}`),
    );
  }
  if (s.status === "open") {
    actions.append(
      h("button", { type: "button", class: "btn danger-soft", onclick: closeTicket }, t("ticket.close")),
    );
  } else {
    actions.append(h("button", { type: "button", class: "btn primary", onclick: reopenTicket }, t("ticket.reopen")));
  }
  actions.append(mergeButton(s, labelCtx));
  actions.append(
    h(
      "button",
      {
        type: "button",
        class: "icon-btn info-btn",
        "aria-label": t("ticket.info"),
        title: t("ticket.info"),
        "aria-expanded": state.showInfo ? "true" : "false",
        onclick: () => {
          state.showInfo = !state.showInfo;
          ui.inbox.classList.toggle("show-info", state.showInfo);
          renderConvHeader();
        },
      },
      "ℹ︎",
    ),
  );
  const sub = [
    h("span", { class: `pill status-${s.status}` }, t(`status.${s.status}`)),
    h("span", { class: `online-text ${online ? "on" : "off"}` }, online ? t("info.online") : t("info.offline")),
  ];
  replaceChildren(
    ui.convHeader,
    back,
    avatar(name, { size: "lg", online, seed: s.ticketId }),
    h(
      "div",
      { class: "conv-title" },
      h("h2", null, name, h("span", { class: "conv-id" }, s.ticketId)),
      h("div", { class: "conv-sub" }, sub, s.assignee ? h("span", { class: "muted" }, `👤 ${s.assignee.name}`) : null, headerMarker(s)),
    ),
    actions,
    ticketLabels(s, labelCtx),
  );
  ui.inbox.classList.toggle("show-info", state.showInfo);
}

function receiptFor() {
  return h("span", { class: "receipt" });
}

/** Consecutive messages of one author (within 5 minutes) share one name label. */
function authorKey(m) {
  return m.sender_type === "system" ? null : `${m.kind}|${m.sender_type}|${m.operator_id ?? ""}|${m.sender_name}`;
}

function messageEl(m, s, cont = false) {
  const time = h("time", { datetime: m.created_at, title: fullWhen(m.created_at, getLang()) }, hhmm(m.created_at));
  const base = { dataset: { id: String(m.id) } };
  const author = (...parts) => (cont ? null : h("div", { class: "msg-author" }, ...parts));
  const cls = cont ? " cont" : "";
  if (m.sender_type === "system") {
    // A notice, also an operators-only one (assignment, priority, snooze: kind note) is an
    // event in the ticket's life, drawn as a pill, not as a note someone wrote.
    const internal = m.kind === "note";
    return h(
      "div",
      { ...base, class: `msg system${internal ? " internal" : ""}`, title: internal ? t("notice.internal") : null },
      h("div", { class: "system-pill" }, noticeText(m)),
      h("div", { class: "msg-meta" }, time),
    );
  }
  if (m.kind === "note") {
    return h(
      "div",
      { ...base, class: `msg note${cls}` },
      author(t("sender.note"), h("span", { class: "muted" }, ` · ${m.sender_name}`)),
      h("div", { class: "bubble" }, linkify(noticeText(m))),
      h("div", { class: "msg-meta" }, time),
    );
  }
  const att = m.attachment ? ` has-att with-${m.attachment.kind}` : "";
  const body = () =>
    m.attachment
      ? h("div", { class: "bubble att-bubble" }, attachmentBody(m, linkify))
      : h("div", { class: "bubble" }, linkify(m.message));
  if (m.sender_type === "admin") {
    const mine = m.operator_id === state.me.id;
    return h(
      "div",
      { ...base, class: `msg admin${mine ? " mine" : ""}${cls}${att}` },
      author(m.sender_name, mine ? h("span", { class: "muted" }, ` (${t("you")})`) : null, " 👤"),
      body(),
      h("div", { class: "msg-meta" }, time, receiptFor(), state.me.role === "admin" && !m.attachment ? kbFromAnswer(m) : null),
    );
  }
  if (m.sender_type === "bot") {
    return h(
      "div",
      { ...base, class: `msg bot${cls}` },
      author(t("sender.bot")),
      h("div", { class: "bubble" }, linkify(m.message)),
      h("div", { class: "msg-meta" }, time),
    );
  }
  return h(
    "div",
    { ...base, class: `msg customer${cls}${att}` },
    author(t("sender.guest", { name: m.sender_name ? guestName(m.sender_name) : customerName(s) })),
    body(),
    h("div", { class: "msg-meta" }, time),
  );
}

function pendingEl(p) {
  if (p.upload) return p.el || (p.el = uploadPendingEl(p));
  const cls = p.mode === "note" ? "note" : p.mode === "system" ? "system" : "admin mine";
  // (outbox.js) failed: refused for good; attempts without failed: waiting for the server.
  const waiting = !p.failed && p.attempts > 0 && !p.sending;
  const pstate = p.failed ? "failed" : waiting ? "waiting" : "sending";
  const status = p.failed
    ? h(
        "span",
        { class: "pending-status" },
        h("button", { type: "button", class: "link-btn failed", onclick: () => sendPending(p) }, `⚠ ${t("ticket.failed")}`),
        h("button", { type: "button", class: "link-btn muted-link", onclick: () => discardPending(p) }, t("ticket.discard")),
      )
    : waiting
      ? h(
          "span",
          { class: "pending-status waiting", role: "status" },
          h("span", { class: "receipt pending", "aria-hidden": "true" }, "🕓"),
          ` ${t("ticket.waiting")} `,
          h("button", { type: "button", class: "link-btn", onclick: () => sendPending(p) }, t("ticket.retryNow")),
        )
      : h("span", { class: "receipt pending", title: t("ticket.sending") }, "🕓");
  const data = { dataset: { cmid: p.cmid, pending: pstate } };
  if (p.mode === "system") {
    return h("div", { class: `msg ${cls} pending`, ...data }, h("div", { class: "system-pill" }, p.text), h("div", { class: "msg-meta" }, status));
  }
  return h(
    "div",
    { class: `msg ${cls} pending`, ...data },
    h("div", { class: "msg-author" }, p.mode === "note" ? t("sender.note") : state.me.name),
    h("div", { class: "bubble" }, p.text),
    h("div", { class: "msg-meta" }, status),
  );
}

export function renderMessages({ toBottom = false } = {}) {
  const cur = state.current;
  if (!ui.msgs || !cur) return;
  if (!cur.loaded) {
    if (cur.error) replaceChildren(ui.msgs, h("div", { class: "conv-loading error" }, cur.error));
    return;
  }
  const scroller = ui.msgsScroll;
  const nearBottom = scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < 120;
  const s = state.tickets.get(cur.id);
  const lang = getLang();
  // Elements are kept per message id and only appended to, so a new message does not
  // disturb what the operator is reading or selecting.
  if (!cur.els) cur.els = new Map();
  if (!cur.days) cur.days = new Map();
  const items = [];
  let lastDay = null;
  let prev = null;
  const msgs = [...cur.messages.values()].sort((a, b) => a.id - b.id);
  for (const m of msgs) {
    const day = new Date(m.created_at).toDateString();
    if (day !== lastDay) {
      if (!cur.days.has(day)) {
        cur.days.set(day, h("div", { class: "day-sep" }, h("span", null, dayLabel(m.created_at, lang))));
      }
      items.push(cur.days.get(day));
      lastDay = day;
      prev = null;
    }
    const key = authorKey(m);
    const cont =
      prev !== null && key !== null && authorKey(prev) === key && ts(m.created_at) - ts(prev.created_at) < 5 * 60_000;
    let cached = cur.els.get(m.id);
    if (!cached || cached.cont !== cont) {
      cached = { el: messageEl(m, s, cont), cont };
      cur.els.set(m.id, cached);
    }
    updateReceipt(cached.el, m, s);
    items.push(cached.el);
    prev = m;
  }
  for (const p of cur.pending.values()) items.push(pendingEl(p));
  const kids = ui.msgs.children;
  let i = 0;
  while (i < items.length && i < kids.length && kids[i] === items[i]) i += 1;
  while (kids.length > i) ui.msgs.removeChild(ui.msgs.lastChild);
  for (const el of items.slice(i)) ui.msgs.appendChild(el);
  if (toBottom || nearBottom) scroller.scrollTop = scroller.scrollHeight;
}

/** ✓ delivered / ✓✓ read by the customer, updated in place on read frames. */
function updateReceipt(el, m, s) {
  const r = el.querySelector(".receipt");
  if (!r || m.sender_type !== "admin" || m.kind === "note") return;
  const read = Boolean(s && m.id <= (s.customer_last_read_id || 0));
  if (r.classList.contains("read") === read && r.textContent) return;
  r.classList.toggle("read", read);
  r.textContent = read ? "✓✓" : "✓";
  const label = read ? t("ticket.read") : t("ticket.sent");
  r.title = label;
  r.setAttribute("aria-label", label);
}

export function renderTyping() {
  if (!ui.typingEl) return;
  const m = state.typing.get(state.currentId);
  if (!m || !m.size) {
    clear(ui.typingEl);
    ui.typingEl.classList.remove("on");
    return;
  }
  const s = state.tickets.get(state.currentId);
  const names = [...m.values()].map((v) => (v.sender_type === "customer" ? `👥 ${customerName(s)}` : `👤 ${v.name}`));
  const scroller = ui.msgsScroll;
  const nearBottom = scroller && scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < 120;
  replaceChildren(
    ui.typingEl,
    h("span", { class: "typing-dots", "aria-hidden": "true" }, h("i"), h("i"), h("i")),
    h("span", { class: "typing-text" }, t("ticket.typing", { name: names.join(", ") })),
  );
  ui.typingEl.classList.add("on");
  if (nearBottom) scroller.scrollTop = scroller.scrollHeight;
}

// ---------------------------------------------------------------- actions

export async function assign(operatorId) {
  const id = state.currentId;
  if (!id) return;
  try {
    const r = await api.assign(id, operatorId);
    onTicket(r.ticket);
  } catch (e) {
    toast(errorText(e), "warn");
    renderAssign();
  }
}

async function closeTicket() {
  const id = state.currentId;
  try {
    const r = await api.close(id);
    applyStatusResult(id, r);
  } catch (e) {
    toast(errorText(e), "warn");
  }
}

async function reopenTicket() {
  const id = state.currentId;
  try {
    const r = await api.reopen(id);
    applyStatusResult(id, r);
  } catch (e) {
    toast(errorText(e), "warn");
  }
}

function applyStatusResult(id, r) {
  if (r.message && state.current && state.current.id === id) addMessage(state.current, r.message);
  if (r.message) onMessage(r.message);
  if (r.ticket) onTicket(r.ticket);
  renderConversation();
}
