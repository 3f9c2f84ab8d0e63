// TrustDesk chat panel: runs inside the iframe served by TrustDesk (/widget/frame.html).
// Plain ES module, no build step, no framework. User text is only ever inserted as text.
//
// Delivery model: storage is the truth. We keep the highest message id we have and ask for
// everything after it (WebSocket "hello" with `since`, or long polling with `after`). Every
// message is keyed by id, so replays and retries never show anything twice. Outgoing messages
// carry a client_msg_id and wait in a persisted outbox until the server has stored them.

import { createExtras } from "./extras.js";
import {
  createLightbox,
  formatDuration,
  formatSize,
  ICONS,
  rememberLocal,
  renderAttachment,
  svgIcon,
  upload,
  uploadError,
} from "./files.js";
import { detectLocale, EMOJI, localizeMessage, localizeServerText, makeT } from "./i18n.js";
import { createRecorder } from "./voice.js";

// ---------------------------------------------------------------------------------------------
// Configuration from the loader (frame URL hash) and the embedding page's origin.

const params = new URLSearchParams(location.hash.slice(1));
const EMBEDDED = window.parent !== window;
const PARENT_ORIGIN = resolveParentOrigin();
const locale = detectLocale(params.get("locale"), navigator.language);
const t = makeT(locale);

const TYPING_TTL_MS = 6000;
const PING_EVERY_MS = 20000;
const PONG_TIMEOUT_MS = 10000;
const ACK_TIMEOUT_MS = 10000;
const LONG_POLL_WAIT_S = 25;
const WS_FAILURES_BEFORE_POLLING = 2;
const WS_RETRY_WHILE_POLLING_MS = 30000;
const MAX_CHARS = 4000;

function resolveParentOrigin() {
  if (!EMBEDDED) return null;
  let origin;
  try {
    origin = new URL(params.get("origin") || "").origin;
  } catch {
    return null;
  }
  if (!origin || origin === "null") return null;
  // Where the browser tells us who embeds us, the claim in the hash must match it.
  const ancestors = location.ancestorOrigins;
  if (ancestors && ancestors.length > 0 && ancestors[0] !== origin) return null;
  return origin;
}

// ---------------------------------------------------------------------------------------------
// Storage (localStorage of the TrustDesk origin; falls back to memory when blocked).

const KEYS = {
  token: "trustdesk.token",
  ticket: "trustdesk.ticketId",
  seen: "trustdesk.seen",
  notified: "trustdesk.notified",
  outbox: "trustdesk.outbox",
  muted: "trustdesk.muted",
  identity: "trustdesk.identity",
};

const storage = (() => {
  const memory = new Map();
  let ls = null;
  try {
    ls = window.localStorage;
    ls.setItem("trustdesk.probe", "1");
    ls.removeItem("trustdesk.probe");
  } catch {
    ls = null;
  }
  return {
    get(key) {
      try {
        return ls ? ls.getItem(key) : (memory.get(key) ?? null);
      } catch {
        return memory.get(key) ?? null;
      }
    },
    set(key, value) {
      memory.set(key, value);
      try {
        ls?.setItem(key, value);
      } catch {
        /* quota or blocked: memory only */
      }
    },
    del(key) {
      memory.delete(key);
      try {
        ls?.removeItem(key);
      } catch {
        /* ignore */
      }
    },
  };
})();

function readJson(key, fallback) {
  try {
    const v = JSON.parse(storage.get(key) || "null");
    return v ?? fallback;
  } catch {
    return fallback;
  }
}

// ---------------------------------------------------------------------------------------------
// State.

const S = {
  token: storage.get(KEYS.token),
  ticketId: storage.get(KEYS.ticket),
  status: null, // "open" | "closed" | null
  lastId: 0, // highest stored message id we have rendered
  seenId: 0, // highest id the customer has seen with the panel open
  notifiedId: 0, // highest operator message we have chimed for
  adminReadId: 0, // operators have read up to here (read receipts)
  operatorsOnline: null,
  open: !EMBEDDED || params.get("open") === "1",
  pageUrl: null,
  muted: storage.get(KEYS.muted) === "1",
  rendered: new Map(), // message id -> row element
  pending: new Map(), // client_msg_id -> row element
  outbox: [], // [{client_msg_id, message, created_at, sentAt}]
  unread: 0,
  startedAt: Date.now(),
  seenAtLoad: 0,
  uploads: new Map(), // client_msg_id -> {row, file, voice, seconds, abort, ...}
  wantNew: false, // "New conversation": the next message starts a new ticket
  identity: null, // {user_id, expires, hash, name?, email?} from the shop, not yet verified
  identityEmail: "",
};

let extras = null; // away / rating / tickets / transcript (extras.js), made at boot

{
  const seen = readJson(KEYS.seen, null);
  if (seen && seen.ticketId === S.ticketId && Number.isInteger(seen.id)) S.seenId = seen.id;
  S.seenAtLoad = S.seenId;
  const notified = readJson(KEYS.notified, null);
  if (notified && notified.ticketId === S.ticketId && Number.isInteger(notified.id)) {
    S.notifiedId = notified.id;
  }
  const box = readJson(KEYS.outbox, []);
  if (Array.isArray(box)) {
    S.outbox = box.filter(
      (i) => i && typeof i.client_msg_id === "string" && typeof i.message === "string",
    );
  }
}

// ---------------------------------------------------------------------------------------------
// DOM.

const $ = (id) => document.getElementById(id);
const els = {
  app: $("app"),
  status: $("status"),
  statusText: $("status-text"),
  banner: $("banner"),
  scroller: $("scroller"),
  log: $("log"),
  typing: $("typing"),
  typingText: $("typing-text"),
  pill: $("pill"),
  closedNote: $("closed-note"),
  form: $("composer"),
  input: $("input"),
  send: $("send"),
  emojiBtn: $("emoji-btn"),
  emojiPanel: $("emoji-panel"),
  mute: $("mute"),
  close: $("close"),
  attach: $("attach-btn"),
  fileInput: $("file-input"),
  mic: $("mic-btn"),
  recorder: $("recorder"),
  drop: $("drop"),
  toast: $("toast"),
  toastText: $("toast-text"),
  toastX: $("toast-x"),
};

let kbLoaded = null; // kb.js

function h(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function applyTranslations() {
  document.documentElement.lang = locale;
  document.title = t("frameTitle");
  for (const node of document.querySelectorAll("[data-i18n]")) {
    node.textContent = t(node.dataset.i18n);
  }
  for (const node of document.querySelectorAll("[data-i18n-label]")) {
    node.setAttribute("aria-label", t(node.dataset.i18nLabel));
  }
  for (const node of document.querySelectorAll("[data-i18n-placeholder]")) {
    node.setAttribute("placeholder", t(node.dataset.i18nPlaceholder));
  }
  const title = (params.get("title") || "").trim().slice(0, 60);
  if (title) document.getElementById("title").textContent = title; // text, never HTML
  const color = params.get("color");
  if (color && /^#[0-9a-f]{3,8}$/i.test(color)) {
    document.documentElement.style.setProperty("--accent", color);
  }
  if (!EMBEDDED) document.body.classList.add("standalone");
  document.body.classList.remove("is-loading");
}

// ---------------------------------------------------------------------------------------------
// Time and text.

function pad(n) {
  return String(n).padStart(2, "0");
}

function parseTime(iso) {
  const d = iso ? new Date(iso) : new Date();
  return Number.isNaN(d.getTime()) ? new Date() : d;
}

function hhmm(d) {
  return `${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

function dayKey(d) {
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
}

function dayLabel(d) {
  const today = new Date();
  const yesterday = new Date(today.getFullYear(), today.getMonth(), today.getDate() - 1);
  if (dayKey(d) === dayKey(today)) return t("today");
  if (dayKey(d) === dayKey(yesterday)) return t("yesterday");
  return d.toLocaleDateString(locale === "en" ? "en-GB" : "ru-RU", {
    day: "numeric",
    month: "long",
  });
}

function timeEl(date) {
  const node = h("time", "time", hhmm(date));
  node.dateTime = date.toISOString();
  return node;
}

const URL_RE = /\bhttps?:\/\/[^\s<>"']+[^\s<>"'.,;:!?)\]]/giu;

// Text with http(s) links made clickable; everything goes in as text nodes.
function appendRichText(parent, text) {
  let last = 0;
  for (const match of text.matchAll(URL_RE)) {
    if (match.index > last) parent.append(document.createTextNode(text.slice(last, match.index)));
    const a = h("a", "link", match[0]);
    a.href = match[0];
    a.target = "_blank";
    a.rel = "noopener noreferrer nofollow";
    parent.append(a);
    last = match.index + match[0].length;
  }
  if (last < text.length) parent.append(document.createTextNode(text.slice(last)));
}

function uuid() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const hex = [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

// ---------------------------------------------------------------------------------------------
// Rendering messages.

function roleOf(senderType) {
  if (senderType === "customer") return "customer";
  if (senderType === "system") return "system";
  return "agent"; // admin and bot
}

const fileCtx = {
  t,
  locale,
  token: () => S.token,
  openImage: (att, url) => lightbox.open(att, url),
  notify: (text) => showToast(text),
};
const lightbox = createLightbox(fileCtx);
els.app.append(lightbox.root);

// What a message is, in one line (ticket list, the loader's preview).
function summary(m) {
  const a = m.attachment;
  const text = m.sender_type === "customer" ? m.message || "" : localizeMessage(locale, m);
  if (!a) return text;
  const caption = m.message && m.message !== a.name ? m.message : "";
  if (a.kind === "image") return `🖼 ${caption || t("photo")}`;
  if (a.kind === "audio" && m.kind === "voice") return `🎤 ${t("voiceMessage")}`;
  return `📎 ${caption || a.name}`;
}

function buildRow({ role, senderType, senderName, text, date, attachment = null, kind = "text" }) {
  const row = h("div", `row row--${role}`);
  row.dataset.sender = senderType;
  row.dataset.name = senderName || "";
  row.dataset.ts = String(date.getTime());
  if (role === "system") {
    row.append(h("div", "sys", text), timeEl(date));
    return row;
  }
  if (role === "agent") {
    const who = senderType === "admin" && senderName ? ` · ${senderName}` : "";
    row.append(h("div", "row__label", t("supportLabel") + who));
  }
  const line = h("div", "row__line");
  const bubble = h("div", "bubble");
  if (attachment && typeof attachment === "object" && attachment.id) {
    bubble.classList.add("bubble--att", `bubble--${attachment.kind}`);
    row.classList.add("row--att");
    if (attachment.kind === "audio" && kind !== "voice") {
      bubble.append(h("div", "att-audio-name", attachment.name || ""));
    }
    bubble.append(renderAttachment(attachment, fileCtx));
    if (text) {
      const caption = h("div", "bubble__caption");
      appendRichText(caption, text);
      bubble.append(caption);
    }
  } else {
    appendRichText(bubble, text);
  }
  line.append(bubble);
  if (role === "customer") {
    const avatar = h("span", "row__avatar", "👤");
    avatar.setAttribute("aria-hidden", "true");
    line.append(avatar);
  }
  const meta = h("div", "meta");
  meta.append(timeEl(date));
  if (role === "customer") meta.append(h("span", "receipt"));
  row.append(line, meta);
  return row;
}

function setReceipt(row) {
  const receipt = row.querySelector(".receipt");
  if (!receipt) return;
  let state;
  if (!row.dataset.id) state = row.dataset.state === "failed" ? "failed" : "pending";
  else state = Number(row.dataset.id) <= S.adminReadId ? "read" : "sent";
  row.dataset.state = state;
  receipt.dataset.state = state;
  receipt.textContent = { pending: "🕓", sent: "✓", read: "✓✓", failed: "⚠" }[state];
  receipt.title = t(state);
  receipt.setAttribute("aria-label", t(state));
}

function updateReceipts() {
  for (const row of els.log.querySelectorAll(".row--customer")) setReceipt(row);
}

function refreshGrouping(row) {
  if (!row || !row.classList.contains("row")) return;
  const prev = row.previousElementSibling;
  const same =
    prev &&
    prev.classList.contains("row") &&
    !prev.classList.contains("row--system") &&
    prev.dataset.sender === row.dataset.sender &&
    prev.dataset.name === row.dataset.name &&
    Math.abs(Number(row.dataset.ts) - Number(prev.dataset.ts)) < 5 * 60 * 1000;
  row.classList.toggle("row--cont", Boolean(same) && !row.classList.contains("row--system"));
}

// Put a stored row in id order: after the last stored row with a smaller id, before pending rows.
function placeStored(row, id) {
  row.remove();
  const rows = [...els.log.querySelectorAll(".row[data-id]")];
  let after = null;
  for (let i = rows.length - 1; i >= 0; i--) {
    if (Number(rows[i].dataset.id) < id) {
      after = rows[i];
      break;
    }
  }
  const date = new Date(Number(row.dataset.ts));
  if (after) {
    const isLast = after === rows[rows.length - 1];
    if (isLast && after.dataset.day !== dayKey(date)) after.after(dayDivider(date), row);
    else after.after(row);
  } else {
    const first = rows[0] || els.log.querySelector(".row--pending");
    const local = els.log.querySelector(".row[data-local]");
    const nodes = rows.length === 0 ? [dayDivider(date), row] : [row];
    if (first) first.before(...nodes);
    else if (local) local.after(...nodes);
    else els.log.append(...nodes);
  }
  row.dataset.day = dayKey(date);
  refreshGrouping(row);
  refreshGrouping(row.nextElementSibling);
}

function dayDivider(date) {
  const node = h("div", "day", dayLabel(date));
  node.setAttribute("aria-hidden", "true");
  return node;
}

// The shop's greeting (the dashboard's "Виджет" page), as /status says; a new chat shows it
// before the first message, as the server will store it with that message.
let greeting = null;

async function loadGreeting() {
  try {
    const res = await fetch("/api/support/status", { cache: "no-store", credentials: "omit" });
    const data = res.ok ? await res.json() : null;
    if (data && typeof data.greeting === "string") greeting = localizeServerText(locale, data.greeting);
  } catch {
    /* offline: the built-in greeting */
  }
  showLocalGreeting();
}

function showLocalGreeting() {
  if (els.log.querySelector("[data-local]") || S.ticketId) return;
  const text = greeting ?? t("greeting");
  if (!text) return;
  const row = buildRow({
    role: "agent",
    senderType: "bot",
    senderName: "",
    text,
    date: new Date(),
  });
  row.dataset.local = "greeting";
  els.log.prepend(row);
}

function removeLocalGreeting() {
  els.log.querySelector("[data-local]")?.remove();
}

// ---------------------------------------------------------------------------------------------
// Scrolling and the "new messages" pill.

function nearBottom() {
  const s = els.scroller;
  return s.scrollHeight - s.scrollTop - s.clientHeight < 80;
}

// "Pinned" = the customer is looking at the newest message. While pinned, any change of layout
// (new rows, banners, the keyboard, a growing textarea) keeps the view at the bottom; once they
// scroll up to read, we leave the view alone and offer the "new messages" pill instead.
let pinned = true;

function scrollToBottom() {
  els.scroller.scrollTop = els.scroller.scrollHeight;
  pinned = true;
  els.pill.hidden = true;
}

els.scroller.addEventListener(
  "scroll",
  () => {
    pinned = nearBottom();
    if (pinned) els.pill.hidden = true;
  },
  { passive: true },
);
els.pill.addEventListener("click", () => {
  els.scroller.scrollTo({ top: els.scroller.scrollHeight, behavior: "smooth" });
  els.pill.hidden = true;
});
if (typeof ResizeObserver === "function") {
  const keepPinned = new ResizeObserver(() => {
    if (pinned) els.scroller.scrollTop = els.scroller.scrollHeight;
  });
  keepPinned.observe(els.scroller);
  keepPinned.observe(els.log);
}

// Run a DOM change, then keep the view at the bottom if it was there (or if forced).
function withScroll(change, { force = false, quiet = false } = {}) {
  const stick = force || pinned || !isVisible();
  change();
  if (stick) scrollToBottom();
  else if (!quiet) els.pill.hidden = false;
}

// ---------------------------------------------------------------------------------------------
// Messages in.

function setTicket(ticketId) {
  if (!ticketId || ticketId === S.ticketId) return;
  const had = S.ticketId;
  S.ticketId = ticketId;
  S.wantNew = false;
  storage.set(KEYS.ticket, ticketId);
  extras?.renderTranscriptButton();
  kbLoaded?.then((kb) => kb.ticket(ticketId));
  if (had) {
    // A different conversation than the one we knew: start its view from scratch and let
    // the socket replay it from the beginning.
    resetView();
    conn.ws?.close();
  }
  wakePoller();
}

function resetView() {
  for (const row of S.rendered.values()) row.remove();
  for (const node of els.log.querySelectorAll(".day")) node.remove();
  S.rendered.clear();
  S.lastId = 0;
  S.seenId = 0;
  S.seenAtLoad = 0;
  S.notifiedId = 0;
  S.adminReadId = 0;
  S.unread = 0;
  S.status = null;
  els.closedNote.hidden = true;
  hideTyping();
  reportUnread();
  extras?.syncRating();
}

// Follow another of the customer's tickets ("My conversations"): a fresh view, and the socket
// says hello again with that ticket and since=0.
function switchTicket(ticketId) {
  if (!ticketId) return;
  S.wantNew = false;
  if (ticketId === S.ticketId) return;
  S.ticketId = ticketId;
  storage.set(KEYS.ticket, ticketId);
  resetView();
  removeLocalGreeting();
  extras?.renderTranscriptButton();
  reconnectNow();
  start();
}

// "New conversation": an empty view; the first message goes with new_ticket: true.
function newConversation() {
  S.ticketId = null;
  storage.del(KEYS.ticket);
  resetView();
  S.wantNew = true;
  showLocalGreeting();
  kbLoaded?.then((kb) => kb.reset());
  extras?.renderTranscriptButton();
  reconnectNow();
  start();
  els.input.focus();
}

function forgetTicket() {
  S.ticketId = null;
  storage.del(KEYS.ticket);
  resetView();
  showLocalGreeting();
}

function setStatus(status) {
  if (status !== "open" && status !== "closed") return;
  S.status = status;
  els.closedNote.hidden = status !== "closed";
  extras?.syncRating();
}

const CLOSED_TEXT = "✅ Тикет закрыт. Спасибо за обращение!";
const REOPENED_TEXT = "Тикет открыт повторно";

function handleMessage(m) {
  if (!m || !Number.isInteger(m.id) || typeof m.message !== "string") return;
  if (m.kind === "note") return; // private operator notes never belong here
  if (m.ticket_id && S.ticketId && m.ticket_id !== S.ticketId) return;
  if (m.ticket_id && !S.ticketId) setTicket(m.ticket_id);
  if (S.rendered.has(m.id)) return; // already shown: never twice

  const role = roleOf(m.sender_type);
  const date = parseTime(m.created_at);
  const att = m.attachment && typeof m.attachment === "object" ? m.attachment : null;
  const mine = m.client_msg_id ? S.uploads.get(m.client_msg_id) : null;
  if (mine) {
    // Our own upload is stored: the progress row gives way to the real message.
    S.uploads.delete(m.client_msg_id);
    if (att) rememberLocal(att.id, mine.file);
    mine.row.remove();
    if (mine.thumb) URL.revokeObjectURL(mine.thumb);
  }
  const pendingRow = m.client_msg_id && !att ? S.pending.get(m.client_msg_id) : null;
  const isNew = m.id > S.seenAtLoad;

  withScroll(
    () => {
      let row;
      if (pendingRow) {
        row = pendingRow;
        S.pending.delete(m.client_msg_id);
        dropFromOutbox(m.client_msg_id);
        row.classList.remove("row--pending");
        row.removeAttribute("data-cmid");
        row.dataset.ts = String(date.getTime());
        const time = row.querySelector("time");
        time.textContent = hhmm(date);
        time.dateTime = date.toISOString();
      } else {
        let text = role === "customer" ? m.message : localizeMessage(locale, m);
        if (att && m.message === att.name) text = ""; // no caption: the name is on the card
        row = buildRow({
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
      placeStored(row, m.id);
      if (role === "customer") setReceipt(row);
      if (m.sender_type === "bot") removeLocalGreeting();
      if (m.sender_type === "admin") hideTyping();
    },
    { force: role === "customer", quiet: !isNew },
  );

  if (m.id > S.lastId) S.lastId = m.id;
  if (m.sender_type === "system") {
    if (m.message === CLOSED_TEXT) setStatus("closed");
    else if (m.message === REOPENED_TEXT) setStatus("open");
  }

  // Operator replies count as unread (the red dot); notices and the bot greeting do not.
  if (m.sender_type === "admin" && m.id > S.seenId && !isVisible()) {
    S.unread += 1;
    reportUnread();
  }
  // One chime per operator message, ever: not again on reload or on another page of the shop.
  if (m.sender_type === "admin" && m.id > S.seenId && m.id > S.notifiedId) {
    S.notifiedId = m.id;
    storage.set(KEYS.notified, JSON.stringify({ ticketId: S.ticketId, id: m.id }));
    chime();
  }
  if (isNew) {
    postParent({
      type: "message",
      message: {
        id: m.id,
        ticket_id: m.ticket_id,
        sender_type: m.sender_type,
        sender_name: m.sender_name,
        message: summary(m),
        created_at: m.created_at,
        kind: m.kind,
      },
    });
  }
  markSeen();
}

// ---------------------------------------------------------------------------------------------
// Messages out: the outbox.

function saveOutbox() {
  storage.set(
    KEYS.outbox,
    JSON.stringify(
      S.outbox.map(({ client_msg_id, message, created_at, new_ticket }) => ({
        client_msg_id,
        message,
        created_at,
        new_ticket: Boolean(new_ticket),
      })),
    ),
  );
}

function dropFromOutbox(clientMsgId) {
  const before = S.outbox.length;
  S.outbox = S.outbox.filter((i) => i.client_msg_id !== clientMsgId);
  if (S.outbox.length !== before) saveOutbox();
}

function renderPending(item) {
  const row = buildRow({
    role: "customer",
    senderType: "customer",
    senderName: "",
    text: item.message,
    date: parseTime(item.created_at),
  });
  row.classList.add("row--pending");
  row.dataset.cmid = item.client_msg_id;
  S.pending.set(item.client_msg_id, row);
  withScroll(() => {
    els.log.append(row);
    setReceipt(row);
    refreshGrouping(row);
  }, { force: true });
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
  if (S.status === "closed") setStatus("open"); // the next message reopens the ticket
  start();
  flush();
}

function flush() {
  if (conn.mode === "online") flushWs();
  else if (conn.mode === "polling") flushHttp();
}

// Where a ticket this message may start comes from: the embed's data-team and the page
// (the server's routing rules choose its team). Only while there is no ticket yet.
const TEAM = (params.get("team") || "").trim().slice(0, 64);

function addRouting(target) {
  if (S.ticketId) return;
  if (TEAM) target.team = TEAM;
  if (S.pageUrl) target.page_url = S.pageUrl;
}

function flushWs() {
  const now = Date.now();
  for (const item of S.outbox) {
    if (item.sentAt && now - item.sentAt < ACK_TIMEOUT_MS) continue;
    const frame = { type: "send", message: item.message, client_msg_id: item.client_msg_id };
    if (item.new_ticket && !S.ticketId) frame.new_ticket = true;
    addRouting(frame);
    if (!wsSend(frame)) return;
    item.sentAt = now;
  }
}

let httpFlushing = false;

async function flushHttp() {
  if (httpFlushing) return;
  httpFlushing = true;
  try {
    while (S.outbox.length && conn.mode === "polling") {
      const item = S.outbox[0];
      const body = { message: item.message, client_msg_id: item.client_msg_id };
      if (item.new_ticket && !S.ticketId) body.new_ticket = true;
      else if (S.ticketId) body.ticketId = S.ticketId;
      addRouting(body);
      const res = await api("/api/support/send-message", { method: "POST", body });
      if (res.status === 429) {
        await sleep(retryAfter(res));
        continue;
      }
      if (res.status === 401) {
        dropToken();
        return;
      }
      if (res.status >= 500 || res.status === 408) throw new Error(`send ${res.status}`);
      if (!res.ok) {
        // Refused for good (e.g. invalid): keep the text visible, marked as not sent.
        markFailed(item.client_msg_id);
        continue;
      }
      const data = await res.json();
      if (data.ticketId) setTicket(data.ticketId);
      handleMessage(data.message);
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
    setReceipt(row);
  }
}

// ---------------------------------------------------------------------------------------------
// HTTP.

async function api(path, { method = "GET", body, signal } = {}) {
  const headers = {};
  if (S.token) headers.Authorization = `Bearer ${S.token}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  return fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    signal,
    credentials: "omit",
    cache: "no-store",
  });
}

function retryAfter(res) {
  const s = Number(res.headers.get("Retry-After"));
  return (Number.isFinite(s) && s > 0 ? Math.min(s, 60) : 2) * 1000;
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

let sessionCreating = null;

// One session at a time, however many callers (connect, uploads, forms) ask at once.
async function ensureSession() {
  if (S.token) return true;
  if (!sessionCreating) {
    sessionCreating = (async () => {
      const res = await api("/api/support/session", { method: "POST", body: {} });
      if (!res.ok) throw new Error(`session ${res.status}`);
      const data = await res.json();
      if (typeof data.token !== "string") throw new Error("session: no token");
      S.token = data.token;
      storage.set(KEYS.token, S.token);
      return true;
    })().finally(() => {
      sessionCreating = null;
    });
  }
  return sessionCreating;
}

function dropToken() {
  S.token = null;
  storage.del(KEYS.token);
  forgetTicket();
}

// ---------------------------------------------------------------------------------------------
// Connection: WebSocket first, long polling when WebSocket cannot be had.

const conn = {
  mode: "idle", // idle | connecting | online | polling | offline | waiting
  ws: null,
  started: false,
  attempts: 0,
  wsFailures: 0,
  retryTimer: 0,
  pingTimer: 0,
  pongTimer: 0,
  readyAt: 0,
  sentReadId: 0,
  polling: false,
  pollAbort: null,
  pollWake: null,
  disconnectedAt: 0,
  sinceOverride: null, // replay from here on the next hello (a ticket adopted by an upload)
};

// Say hello again at once (another ticket, or a new one): drop the socket without waiting.
function reconnectNow() {
  hideTyping();
  const ws = conn.ws;
  if (ws) {
    conn.ws = null;
    ws.onmessage = null;
    ws.onclose = null;
    stopPing();
    try {
      ws.close();
    } catch {
      /* closing anyway */
    }
    conn.attempts = 0;
    setMode("connecting");
    scheduleConnect(0);
  } else if (conn.polling) {
    conn.pollAbort?.abort();
    wakePoller();
  }
}

function setMode(mode) {
  conn.mode = mode;
  if (mode !== "online" && mode !== "polling" && !conn.disconnectedAt) {
    conn.disconnectedAt = Date.now();
  }
  if (mode === "online" || mode === "polling") conn.disconnectedAt = 0;
  renderStatus();
}

function start() {
  if (conn.started) return;
  conn.started = true;
  connect();
}

function wsUrl() {
  return `${location.protocol === "https:" ? "wss:" : "ws:"}//${location.host}/ws/visitor`;
}

function scheduleConnect(delay) {
  clearTimeout(conn.retryTimer);
  conn.retryTimer = setTimeout(connect, delay);
}

function backoff() {
  const base = Math.min(8000, 500 * 2 ** Math.min(conn.attempts, 4));
  conn.attempts += 1;
  return Math.round(base * (0.6 + Math.random() * 0.4));
}

async function connect() {
  clearTimeout(conn.retryTimer);
  if (conn.ws) return;
  if (navigator.onLine === false) {
    setMode("offline");
    return;
  }
  if (conn.mode !== "polling") setMode("connecting");
  try {
    await ensureSession();
  } catch {
    if (conn.mode !== "polling") setMode("waiting");
    scheduleConnect(backoff());
    return;
  }
  await identify();
  if (conn.ws) return; // connected meanwhile
  if (typeof WebSocket !== "function" || conn.wsFailures >= WS_FAILURES_BEFORE_POLLING) {
    startPolling();
    if (typeof WebSocket === "function") {
      // Keep trying WebSocket now and then; polling stops once it works.
      clearTimeout(conn.retryTimer);
      conn.retryTimer = setTimeout(() => openSocket(), WS_RETRY_WHILE_POLLING_MS);
    }
    return;
  }
  openSocket();
}

function openSocket() {
  if (conn.ws || !S.token) return;
  let ws;
  try {
    ws = new WebSocket(wsUrl());
  } catch {
    conn.wsFailures += 1;
    scheduleReconnect();
    return;
  }
  conn.ws = ws;
  let ready = false;
  let authFailed = false;
  const helloTimer = setTimeout(() => ws.close(), 12000);

  ws.onopen = () => {
    const since = conn.sinceOverride ?? S.lastId;
    conn.sinceOverride = null;
    const hello = { type: "hello", token: S.token, ticketId: S.ticketId, since };
    if (S.pageUrl) hello.page_url = S.pageUrl;
    ws.send(JSON.stringify(hello));
  };
  ws.onmessage = (ev) => {
    let frame;
    try {
      frame = JSON.parse(ev.data);
    } catch {
      return;
    }
    if (!frame || typeof frame !== "object") return;
    clearTimeout(conn.pongTimer);
    if (frame.type === "ready") {
      ready = true;
      clearTimeout(helloTimer);
      onReady(frame);
      return;
    }
    if (frame.type === "error" && !ready) {
      authFailed = true;
      const code = String(frame.code || "");
      if (code.includes("ticket") || code === "not_found") forgetTicket();
      else dropToken();
      return;
    }
    onFrame(frame);
  };
  ws.onclose = async (ev) => {
    clearTimeout(helloTimer);
    if (conn.ws !== ws) return;
    conn.ws = null;
    stopPing();
    hideTyping();
    if (conn.mode === "online") setMode("waiting");
    if (ready) {
      conn.wsFailures = 0;
    } else if (authFailed) {
      // handled by the error frame (new session, or forget the ticket)
    } else if (ev.code === 4401) {
      dropToken();
    } else if (await httpReachable()) {
      // The server answers HTTP but the socket never opened: something blocks WebSocket.
      conn.wsFailures += 1;
    }
    if (conn.ws) return; // reconnected meanwhile
    scheduleReconnect();
  };
  ws.onerror = () => {
    /* onclose follows */
  };
}

async function httpReachable() {
  try {
    const res = await fetch("/api/support/status", { cache: "no-store", credentials: "omit" });
    return res.ok;
  } catch {
    return false;
  }
}

function scheduleReconnect() {
  if (navigator.onLine === false) {
    stopPolling();
    setMode("offline");
    return;
  }
  if (conn.wsFailures >= WS_FAILURES_BEFORE_POLLING) {
    connect(); // goes to polling and schedules a later WebSocket retry
    return;
  }
  if (conn.mode !== "polling") setMode("waiting");
  scheduleConnect(backoff());
}

function wsSend(frame) {
  const ws = conn.ws;
  if (!ws || ws.readyState !== WebSocket.OPEN || conn.mode !== "online") return false;
  try {
    ws.send(JSON.stringify(frame));
    return true;
  } catch {
    return false;
  }
}

function startPing() {
  stopPing();
  conn.pingTimer = setInterval(() => {
    if (!wsSend({ type: "ping" })) return;
    clearTimeout(conn.pongTimer);
    conn.pongTimer = setTimeout(() => conn.ws?.close(), PONG_TIMEOUT_MS);
  }, PING_EVERY_MS);
}

function stopPing() {
  clearInterval(conn.pingTimer);
  clearTimeout(conn.pongTimer);
}

function onReady(frame) {
  conn.attempts = 0;
  conn.wsFailures = 0;
  conn.readyAt = Date.now();
  conn.sentReadId = 0;
  stopPolling();
  if (frame.ticketId) setTicket(frame.ticketId);
  else if (S.ticketId) forgetTicket(); // the server no longer knows that ticket for us
  setStatus(frame.status);
  if (Number.isInteger(frame.admin_last_read_id)) {
    S.adminReadId = Math.max(S.adminReadId, frame.admin_last_read_id);
  }
  setOperators(frame.operators_online);
  setMode("online");
  startPing();
  updateReceipts();
  flushWs();
  markSeen();
  extras?.refreshStatus();
  extras?.syncRating();
}

function onFrame(f) {
  switch (f.type) {
    case "message":
      handleMessage(f.message);
      break;
    case "ack":
      if (f.ticketId) setTicket(f.ticketId);
      handleMessage(f.message);
      if (f.client_msg_id) dropFromOutbox(f.client_msg_id);
      break;
    case "typing":
      if (f.sender_type === "admin" && (!f.ticketId || f.ticketId === S.ticketId)) {
        if (f.active) showTyping(f.name, f.ttl);
        else hideTyping();
      }
      break;
    case "ticket":
      if (f.ticket) {
        setTicket(f.ticket.ticketId);
        setStatus(f.ticket.status);
      }
      break;
    case "read":
      if (f.reader === "admin" && Number.isInteger(f.last_read_id)) {
        S.adminReadId = Math.max(S.adminReadId, f.last_read_id);
        updateReceipts();
      }
      break;
    case "presence":
      setOperators(f.operators_online);
      break;
    case "error":
      onSendError(f);
      break;
    default:
      break; // pong, future frame types
  }
}

// A "send" refused by the server: wait and retry when rate limited, else mark it not sent.
function onSendError(f) {
  const item = S.outbox.find((i) => i.client_msg_id === f.client_msg_id);
  if (!item) return;
  const code = String(f.code || "");
  if (/^(invalid|bad_request|too_long|empty)/.test(code)) {
    markFailed(f.client_msg_id); // refused for good: keep the text visible, marked as not sent
    return;
  }
  // Rate limited or a passing trouble: the watchdog sends it again (same client_msg_id).
  const wait = Math.min(60, Math.max(1, Number(f.retry_after) || 3)) * 1000;
  item.sentAt = Date.now() - ACK_TIMEOUT_MS + wait;
}

// Long polling: GET /api/support/messages/{id}?after=N&wait=25, sends by POST.

function startPolling() {
  if (conn.polling) return;
  conn.polling = true;
  setMode("polling");
  pollLoop();
}

function stopPolling() {
  conn.polling = false;
  conn.pollAbort?.abort();
  conn.pollAbort = null;
  wakePoller();
}

function wakePoller() {
  const wake = conn.pollWake;
  conn.pollWake = null;
  wake?.();
}

function pollPause(ms) {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      resolve();
    }
    conn.pollWake = done;
  });
}

async function pollLoop() {
  let failures = 0;
  let statusCheckedAt = 0;
  while (conn.polling) {
    if (navigator.onLine === false) {
      conn.polling = false;
      setMode("offline");
      return;
    }
    try {
      if (conn.mode !== "polling") setMode("polling");
      if (Date.now() - statusCheckedAt > 30000) {
        statusCheckedAt = Date.now();
        const data = await extras.refreshStatus();
        if (data) setOperators(data.operators_online);
      }
      await flushHttp();
      if (!S.ticketId) {
        await pollPause(LONG_POLL_WAIT_S * 1000);
        continue;
      }
      conn.pollAbort = new AbortController();
      const tid = S.ticketId;
      const res = await api(
        `/api/support/messages/${encodeURIComponent(tid)}?after=${S.lastId}&wait=${LONG_POLL_WAIT_S}`,
        { signal: conn.pollAbort.signal },
      );
      if (res.status === 404) {
        if (tid === S.ticketId) forgetTicket();
        continue;
      }
      if (res.status === 401) {
        dropToken();
        await ensureSession();
        continue;
      }
      if (res.status === 429) {
        await pollPause(retryAfter(res));
        continue;
      }
      if (!res.ok) throw new Error(`poll ${res.status}`);
      const data = await res.json();
      if (tid !== S.ticketId) continue;
      setStatus(data.status);
      for (const m of data.messages || []) handleMessage(m);
      failures = 0;
    } catch (err) {
      if (!conn.polling) return;
      if (err?.name === "AbortError") continue;
      failures += 1;
      if (err instanceof TypeError && typeof WebSocket === "function") {
        // The server is not answering HTTP either: it is down, not WebSocket being blocked.
        // Go back to reconnecting the socket (with backoff); polling resumes if it must.
        conn.polling = false;
        conn.wsFailures = 0;
        setMode("waiting");
        scheduleConnect(backoff());
        return;
      }
      setMode("waiting");
      await pollPause(Math.min(10000, 1000 * 2 ** Math.min(failures, 4)));
    }
  }
}

window.addEventListener("online", () => {
  conn.attempts = 0;
  conn.wsFailures = 0;
  if (!conn.started) return;
  if (conn.polling) return;
  connect();
});

window.addEventListener("offline", () => {
  // Do not wait for the socket to notice: treat the link as gone now, queue what is typed.
  stopPolling();
  const ws = conn.ws;
  conn.ws = null;
  stopPing();
  ws?.close();
  if (conn.started) setMode("offline");
});

// Re-send anything not acknowledged in time (idempotent by client_msg_id).
setInterval(() => {
  if (conn.mode === "online") flushWs();
  else if (conn.mode === "polling" && S.outbox.length) wakePoller();
}, 3000);

// ---------------------------------------------------------------------------------------------
// Header status, banners, typing.

let statusTimer = 0;

function setOperators(n) {
  const before = S.operatorsOnline;
  if (Number.isInteger(n)) S.operatorsOnline = n;
  renderStatus();
  if (before !== null && before !== S.operatorsOnline) {
    // Someone came or went: the away message (and business hours) come from /status.
    clearTimeout(statusTimer);
    statusTimer = setTimeout(() => extras?.refreshStatus(), 300);
  }
}

let bannerTimer = 0;

function renderStatus() {
  const connected = conn.mode === "online" || conn.mode === "polling";
  let state = "connecting";
  let text = t("connecting");
  if (connected || S.operatorsOnline !== null) {
    state = S.operatorsOnline > 0 ? "online" : "offline";
    text = t(state);
  }
  els.status.dataset.state = state;
  els.statusText.textContent = text;

  clearTimeout(bannerTimer);
  if (conn.mode === "offline") {
    showBanner(t("offlineBanner"), "offline");
  } else if ((conn.mode === "waiting" || conn.mode === "connecting") && conn.disconnectedAt) {
    // Short blips do not deserve a banner.
    const wait = 2500 - (Date.now() - conn.disconnectedAt);
    if (wait <= 0 && S.lastId) showBanner(t("reconnecting"), "reconnecting");
    else if (S.lastId) bannerTimer = setTimeout(renderStatus, wait);
  } else {
    els.banner.hidden = true;
  }
  els.app.dataset.conn = conn.mode;
}

function showBanner(text, kind) {
  els.banner.textContent = text;
  els.banner.dataset.kind = kind;
  els.banner.hidden = false;
}

let typingTimer = 0;

function showTyping(name, ttlSeconds) {
  els.typingText.textContent = name ? t("operatorTyping", { name }) : t("typing");
  withScroll(() => {
    els.typing.hidden = false;
  }, { quiet: true });
  clearTimeout(typingTimer);
  const ttl = Number(ttlSeconds) > 0 ? Math.min(Number(ttlSeconds) * 1000, 30000) : TYPING_TTL_MS;
  typingTimer = setTimeout(hideTyping, ttl);
}

function hideTyping() {
  clearTimeout(typingTimer);
  els.typing.hidden = true;
}

// ---------------------------------------------------------------------------------------------
// Visibility, unread, read receipts to the server.

function isVisible() {
  return S.open && document.visibilityState === "visible";
}

function markSeen() {
  if (!isVisible()) return;
  if (S.lastId > S.seenId) {
    S.seenId = S.lastId;
    storage.set(KEYS.seen, JSON.stringify({ ticketId: S.ticketId, id: S.seenId }));
  }
  if (S.unread) {
    S.unread = 0;
    reportUnread();
  }
  if (!S.ticketId || S.lastId <= conn.sentReadId) return;
  if (wsSend({ type: "read", last_read_id: S.lastId })) {
    conn.sentReadId = S.lastId;
  } else if (conn.mode === "polling") {
    conn.sentReadId = S.lastId;
    api("/api/support/read", {
      method: "POST",
      body: { ticketId: S.ticketId, last_read_id: S.lastId },
    }).catch(() => {
      conn.sentReadId = 0;
    });
  }
}

function reportUnread() {
  postParent({ type: "unread", count: S.unread });
}

document.addEventListener("visibilitychange", () => {
  if (document.visibilityState === "visible" && conn.started && conn.mode === "waiting") {
    conn.attempts = 0; // back on the tab (phones freeze background tabs): retry now
    scheduleConnect(0);
  }
  if (isVisible()) {
    markSeen();
    if (!els.pill.hidden && nearBottom()) els.pill.hidden = true;
  }
});

// ---------------------------------------------------------------------------------------------
// Sound: a short two-tone chime made with Web Audio, after a user gesture (autoplay rules).

let audio = null;

function unlockAudio() {
  const AC = window.AudioContext || window.webkitAudioContext;
  if (!AC) return;
  if (!audio) {
    try {
      audio = new AC();
    } catch {
      return;
    }
  }
  if (audio.state === "suspended") audio.resume().catch(() => {});
}

document.addEventListener("pointerdown", unlockAudio, { passive: true });
document.addEventListener("keydown", unlockAudio);

let lastChime = 0;

function chime() {
  if (S.muted) return;
  const now = Date.now();
  if (now - lastChime < 1500) return;
  lastChime = now;
  if (!audio) unlockAudio();
  if (!audio || audio.state !== "running") return;
  const t0 = audio.currentTime;
  for (const [freq, at] of [
    [880, 0],
    [1318.5, 0.12],
  ]) {
    const osc = audio.createOscillator();
    const gain = audio.createGain();
    osc.type = "sine";
    osc.frequency.value = freq;
    gain.gain.setValueAtTime(0.0001, t0 + at);
    gain.gain.exponentialRampToValueAtTime(0.12, t0 + at + 0.02);
    gain.gain.exponentialRampToValueAtTime(0.0001, t0 + at + 0.28);
    osc.connect(gain).connect(audio.destination);
    osc.start(t0 + at);
    osc.stop(t0 + at + 0.3);
  }
}

function renderMute() {
  els.mute.setAttribute("aria-pressed", String(S.muted));
  els.mute.setAttribute("aria-label", t(S.muted ? "unmute" : "mute"));
  els.mute.title = t(S.muted ? "unmute" : "mute");
  els.mute.classList.toggle("is-muted", S.muted);
}

els.mute.addEventListener("click", () => {
  S.muted = !S.muted;
  storage.set(KEYS.muted, S.muted ? "1" : "0");
  renderMute();
});

// ---------------------------------------------------------------------------------------------
// Composer: Enter sends, Shift+Enter is a new line, the button is disabled while empty.

function autosize() {
  const input = els.input;
  input.style.height = "auto";
  input.style.height = `${Math.min(input.scrollHeight, 140)}px`;
}

function updateSendButton() {
  const text = els.input.value.trim();
  els.send.disabled = text.length === 0 || text.length > MAX_CHARS;
}

let typingActive = false;
let typingSentAt = 0;
let typingIdle = 0;

function signalTyping() {
  if (!S.ticketId) return;
  const now = Date.now();
  if (!typingActive || now - typingSentAt > 3000) {
    if (wsSend({ type: "typing", active: true })) {
      typingActive = true;
      typingSentAt = now;
    }
  }
  clearTimeout(typingIdle);
  typingIdle = setTimeout(stopTyping, 4000);
}

function stopTyping() {
  clearTimeout(typingIdle);
  if (typingActive) wsSend({ type: "typing", active: false });
  typingActive = false;
}

// Help-center suggestions for a first question (kb.js, loaded on demand).
function kbInput() {
  const text = els.input.value;
  if (S.ticketId || (!kbLoaded && text.trim().length < 3)) return;
  kbLoaded ||= import("./kb.js").then((m) => m.createKb({ locale, api, ensureSession, els }));
  kbLoaded.then((kb) => kb.input(text)).catch(() => 0);
}

els.input.addEventListener("input", () => {
  autosize();
  updateSendButton();
  kbInput();
  if (els.input.value.trim()) signalTyping();
  else stopTyping();
});

els.input.addEventListener("keydown", (ev) => {
  if (ev.key === "Enter" && !ev.shiftKey && !ev.isComposing && ev.keyCode !== 229) {
    ev.preventDefault();
    submit();
  }
});

els.input.addEventListener("blur", stopTyping);

els.form.addEventListener("submit", (ev) => {
  ev.preventDefault();
  submit();
});

function submit() {
  const text = els.input.value.trim();
  if (!text || text.length > MAX_CHARS) return;
  els.input.value = "";
  autosize();
  updateSendButton();
  stopTyping();
  toggleEmoji(false);
  kbLoaded?.then((kb) => kb.sent(text));
  queueMessage(text);
  els.input.focus();
}

// Emoji panel.

function buildEmojiPanel() {
  for (const emoji of EMOJI) {
    const b = h("button", "emoji", emoji);
    b.type = "button";
    b.setAttribute("aria-label", emoji);
    b.addEventListener("click", () => insertAtCursor(emoji));
    els.emojiPanel.append(b);
  }
}

function insertAtCursor(text) {
  const input = els.input;
  const start = input.selectionStart ?? input.value.length;
  const end = input.selectionEnd ?? input.value.length;
  input.setRangeText(text, start, end, "end");
  input.dispatchEvent(new Event("input", { bubbles: true }));
  input.focus();
}

function toggleEmoji(show = els.emojiPanel.hidden) {
  els.emojiPanel.hidden = !show;
  els.emojiBtn.setAttribute("aria-expanded", String(show));
  els.emojiBtn.classList.toggle("is-active", show);
}

els.emojiBtn.addEventListener("click", () => toggleEmoji());
document.addEventListener("click", (ev) => {
  if (els.emojiPanel.hidden) return;
  if (els.emojiPanel.contains(ev.target) || els.emojiBtn.contains(ev.target)) return;
  toggleEmoji(false);
});

document.addEventListener("keydown", (ev) => {
  if (ev.key !== "Escape") return;
  if (lightbox.hide()) return;
  if (extras?.escape()) return;
  if (recorder.escape()) return;
  if (!els.toast.hidden) {
    hideToast();
    return;
  }
  if (!els.emojiPanel.hidden) {
    toggleEmoji(false);
    els.emojiBtn.focus();
    return;
  }
  if (EMBEDDED) postParent({ type: "close" });
});

els.close.addEventListener("click", () => postParent({ type: "close" }));

// ---------------------------------------------------------------------------------------------
// Files, screenshots and voice messages out: POST /api/support/upload (the body is the file),
// with a progress bar. Not kept across reloads (a file cannot wait in localStorage).

let toastTimer = 0;

function showToast(text) {
  els.toastText.textContent = text;
  els.toast.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(hideToast, 7000);
}

function hideToast() {
  clearTimeout(toastTimer);
  els.toast.hidden = true;
}

els.toastX.addEventListener("click", hideToast);

function uploadIcon(up) {
  const box = h("span", "up__icon");
  box.setAttribute("aria-hidden", "true");
  if (up.thumb) {
    const img = h("img", "up__thumb");
    img.alt = "";
    img.src = up.thumb;
    box.append(img);
  } else {
    box.append(svgIcon(up.voice ? ICONS.mic : ICONS.file, 22));
  }
  return box;
}

function renderUploadRow(up) {
  const row = buildRow({
    role: "customer",
    senderType: "customer",
    senderName: "",
    text: "",
    date: new Date(),
  });
  row.classList.add("row--pending", "row--upload");
  row.dataset.cmid = up.cmid;
  const bubble = row.querySelector(".bubble");
  bubble.classList.add("bubble--upload");
  const card = h("div", "up");
  const info = h("div", "up__info");
  const name = h("span", "up__name", up.voice ? t("voiceMessage") : up.name);
  name.title = up.name;
  const sub = h(
    "span",
    "up__sub",
    up.voice ? formatDuration(up.seconds) : formatSize(up.file.size, locale),
  );
  const bar = h("div", "up__bar");
  bar.setAttribute("role", "progressbar");
  bar.setAttribute("aria-label", `${t("uploading")} ${up.voice ? t("voiceMessage") : up.name}`);
  bar.setAttribute("aria-valuemin", "0");
  bar.setAttribute("aria-valuemax", "100");
  bar.setAttribute("aria-valuenow", "0");
  const fill = h("span", "up__fill");
  bar.append(fill);
  const error = h("span", "up__error");
  error.setAttribute("role", "alert");
  error.hidden = true;
  info.append(name, sub, bar, error);
  const actions = h("div", "up__actions");
  card.append(uploadIcon(up), info, actions);
  bubble.append(card);
  up.row = row;
  up.ui = { bar, fill, sub, error, actions };
  withScroll(() => {
    els.log.append(row);
    setReceipt(row);
    refreshGrouping(row);
  }, { force: true });
}

function setUploadActions(up, kinds) {
  up.ui.actions.replaceChildren();
  for (const kind of kinds) {
    const label = { cancel: t("cancelUpload"), retry: t("retry"), dismiss: t("dismiss") }[kind];
    const b = h("button", `up__btn up__btn--${kind}`);
    b.type = "button";
    b.setAttribute("aria-label", `${label}: ${up.voice ? t("voiceMessage") : up.name}`);
    b.title = label;
    b.append(svgIcon(kind === "retry" ? ICONS.retry : ICONS.close, 18));
    b.addEventListener("click", () => {
      if (kind === "cancel") up.abort?.();
      else if (kind === "retry") sendUpload(up);
      else dropUpload(up);
    });
    up.ui.actions.append(b);
  }
}

function dropUpload(up) {
  S.uploads.delete(up.cmid);
  up.row?.remove();
  if (up.thumb) URL.revokeObjectURL(up.thumb);
}

function setProgress(up, p) {
  const pct = Math.round(Math.max(0, Math.min(1, p)) * 100);
  up.ui.fill.style.width = `${pct}%`;
  up.ui.bar.setAttribute("aria-valuenow", String(pct));
}

// The upload endpoint has no "new ticket" flag: without a ticket it adds the file to the
// customer's open ticket. After "New conversation", a text message has to start it first.
async function blockedByNewConversation() {
  if (!S.wantNew || S.ticketId || !S.token) return false;
  try {
    const res = await api("/api/support/tickets");
    if (!res.ok) return false;
    const open = ((await res.json()).tickets || []).some((x) => x.status === "open");
    if (open) showToast(t("newTicketFirst"));
    return open;
  } catch {
    return false;
  }
}

async function queueUpload(file, { voice = false, seconds = 0, name = "" } = {}) {
  if (!file) return;
  if (await blockedByNewConversation()) return;
  if (file.size === 0) {
    showToast(t("errEmpty"));
    return;
  }
  const up = {
    cmid: uuid(),
    file,
    voice,
    seconds,
    name: (name || file.name || t("file")).slice(0, 200),
    thumb: !voice && /^image\//.test(file.type) ? URL.createObjectURL(file) : null,
  };
  S.uploads.set(up.cmid, up);
  renderUploadRow(up);
  if (S.status === "closed") setStatus("open"); // a file reopens the ticket like a message
  start();
  sendUpload(up);
}

async function sendUpload(up) {
  if (!S.uploads.has(up.cmid)) return;
  up.row.dataset.state = "pending";
  up.row.classList.add("row--pending");
  setReceipt(up.row);
  up.ui.error.hidden = true;
  up.ui.bar.hidden = false;
  setProgress(up, 0);
  setUploadActions(up, ["cancel"]);
  try {
    await ensureSession();
  } catch {
    failUpload(up, { text: t("errNetwork"), retry: true });
    return;
  }
  const hadTicket = S.ticketId;
  const job = upload({
    file: up.file,
    name: up.name,
    ticketId: S.ticketId,
    clientMsgId: up.cmid,
    voice: up.voice,
    token: S.token,
    onProgress: (p) => setProgress(up, p),
  });
  up.abort = job.abort;
  const res = await job.promise;
  up.abort = null;
  if (!S.uploads.has(up.cmid)) return; // stored meanwhile (the socket was quicker)
  if (res.status === -1) {
    dropUpload(up); // cancelled
    return;
  }
  if (res.status === 200 && res.body?.message) {
    setProgress(up, 1);
    const data = res.body;
    if (data.ticketId && !hadTicket && !S.ticketId) {
      // The file started the ticket: follow it, and replay it from the start (the greeting).
      setTicket(data.ticketId);
      conn.sinceOverride = 0;
      reconnectNow();
    }
    handleMessage(data.message);
    if (S.uploads.has(up.cmid)) dropUpload(up); // stored in a ticket no longer on screen
    return;
  }
  if (res.status === 401) {
    dropToken();
    failUpload(up, { text: t("errUpload"), retry: true });
    return;
  }
  if (res.status === 404 && hadTicket && hadTicket === S.ticketId) forgetTicket();
  failUpload(up, uploadError(t, res.status, res.body));
}

function failUpload(up, { text, retry }) {
  up.row.dataset.state = "failed";
  setReceipt(up.row);
  up.ui.bar.hidden = true;
  up.ui.error.textContent = text;
  up.ui.error.hidden = false;
  setUploadActions(up, retry ? ["retry", "dismiss"] : ["dismiss"]);
}

function uploadFiles(list, { pasted = false } = {}) {
  const files = [...(list || [])].filter((f) => f && typeof f.size === "number");
  for (const file of files.slice(0, 10)) {
    let name = file.name;
    if (pasted && (!name || /^image\.(png|jpe?g|gif|webp)$/i.test(name))) {
      // A screenshot from the clipboard: give it a name a human recognises.
      const ext = (/\/(png|jpeg|gif|webp)$/.exec(file.type) || [, "png"])[1].replace("jpeg", "jpg");
      const d = new Date();
      name = `${t("screenshot")} ${pad(d.getHours())}-${pad(d.getMinutes())}-${pad(d.getSeconds())}.${ext}`;
    }
    queueUpload(file, { name });
  }
}

els.attach.addEventListener("click", () => {
  toggleEmoji(false);
  els.fileInput.click();
});

els.fileInput.addEventListener("change", () => {
  uploadFiles(els.fileInput.files);
  els.fileInput.value = "";
});

function clipboardFiles(dt) {
  if (!dt) return [];
  const out = [...(dt.files || [])];
  if (out.length) return out;
  for (const item of dt.items || []) {
    if (item.kind === "file") {
      const f = item.getAsFile();
      if (f) out.push(f);
    }
  }
  return out;
}

// Paste a screenshot (or any copied file) anywhere in the panel.
document.addEventListener("paste", (ev) => {
  const files = clipboardFiles(ev.clipboardData);
  if (!files.length) return;
  ev.preventDefault();
  uploadFiles(files, { pasted: true });
});

// Drag and drop onto the panel.
let dragDepth = 0;

function isFileDrag(ev) {
  return [...(ev.dataTransfer?.types || [])].includes("Files");
}

function showDrop(show) {
  els.drop.hidden = !show;
  els.app.classList.toggle("is-dragging", show);
}

document.addEventListener("dragenter", (ev) => {
  if (!isFileDrag(ev)) return;
  ev.preventDefault();
  dragDepth += 1;
  showDrop(true);
});
document.addEventListener("dragover", (ev) => {
  if (!isFileDrag(ev)) return;
  ev.preventDefault();
  ev.dataTransfer.dropEffect = "copy";
});
document.addEventListener("dragleave", (ev) => {
  if (!isFileDrag(ev)) return;
  dragDepth = Math.max(0, dragDepth - 1);
  if (dragDepth === 0) showDrop(false);
});
document.addEventListener("drop", (ev) => {
  if (!isFileDrag(ev)) return;
  ev.preventDefault();
  dragDepth = 0;
  showDrop(false);
  uploadFiles(ev.dataTransfer.files);
});

// Voice messages.

const recorder = createRecorder({
  t,
  locale,
  root: els.recorder,
  onOpen() {
    toggleEmoji(false);
    els.form.hidden = true;
    els.recorder.hidden = false;
    stopTyping();
  },
  onClose() {
    els.recorder.hidden = true;
    els.form.hidden = false;
    els.input.focus({ preventScroll: true });
  },
  send(blob, mime, seconds) {
    const ext = /ogg/.test(mime) ? "ogg" : "webm";
    const d = new Date();
    const name = `voice-${d.getFullYear()}${pad(d.getMonth() + 1)}${pad(d.getDate())}-${pad(d.getHours())}${pad(d.getMinutes())}${pad(d.getSeconds())}.${ext}`;
    const file = new File([blob], name, { type: mime.split(";")[0] });
    queueUpload(file, { voice: true, seconds, name });
  },
  error: (text) => showToast(text),
});

els.mic.hidden = !recorder.supported;
els.mic.addEventListener("click", () => recorder.start());

// ---------------------------------------------------------------------------------------------
// Known customers: the shop's signed identity (data-user-* or TrustDesk.setUser), sent only
// once a session exists, i.e. after the customer opened the chat. Wrong or expired: the
// visitor stays anonymous, with a warning in the console.

let identifying = null;

function setIdentity(user) {
  if (user === null) {
    // The shop signed the customer out: forget this browser's session and start anonymous.
    const was = storage.get(KEYS.identity);
    S.identity = null;
    S.identityEmail = "";
    if (was) {
      storage.del(KEYS.identity);
      storage.del(KEYS.ticket);
      storage.del("trustdesk.contact");
      dropToken();
      reconnectNow();
    }
    return;
  }
  if (!user || typeof user !== "object") return;
  const id = String(user.id ?? user.user_id ?? "").slice(0, 128);
  const expires = Number(user.expires);
  const hash = String(user.hash || "");
  if (!id || !Number.isFinite(expires) || !/^[0-9a-f]{64}$/i.test(hash)) {
    console.warn("TrustDesk: setUser needs {id, expires, hash}; staying anonymous.");
    return;
  }
  const identity = { user_id: id, expires: Math.floor(expires), hash };
  if (typeof user.name === "string" && user.name.trim()) identity.name = user.name.trim().slice(0, 100);
  if (typeof user.email === "string" && user.email.trim()) identity.email = user.email.trim().slice(0, 254);
  S.identity = identity;
  if (S.token && conn.started) identify();
}

async function identify() {
  if (identifying) return identifying;
  const tokenBefore = S.token;
  const run = async () => {
    for (let attempt = 0; attempt < 2 && S.identity; attempt++) {
      const who = S.identity;
      if (storage.get(KEYS.identity) === `${who.user_id}|${S.token}`) {
        S.identity = null;
        S.identityEmail = who.email || "";
        return;
      }
      let res;
      try {
        await ensureSession();
        res = await api("/api/support/identify", { method: "POST", body: who });
      } catch {
        return; // offline: tried again on the next connect
      }
      if (res.ok) {
        storage.set(KEYS.identity, `${who.user_id}|${S.token}`);
        if (S.identity === who) S.identity = null;
        S.identityEmail = who.email || "";
        extras?.renderAway();
        await followOpenTicket();
        return;
      }
      let code = "";
      try {
        code = String((await res.json())?.error?.code || "");
      } catch {
        /* no body */
      }
      if (res.status === 409 && attempt === 0) {
        // This browser's session belongs to another customer (a shared computer): start a
        // new session for this one.
        storage.del(KEYS.identity);
        storage.del(KEYS.ticket);
        dropToken();
        continue;
      }
      if (S.identity === who) S.identity = null;
      console.warn(
        `TrustDesk: the customer's identity was not accepted (${code || res.status}); the chat stays anonymous.`,
      );
      return;
    }
  };
  identifying = run().finally(() => {
    identifying = null;
    // A new session was needed while the socket was up: say hello again with it.
    if (conn.ws && S.token !== tokenBefore) reconnectNow();
  });
  return identifying;
}

// A signed-in customer on a new device: show their open conversation, if any.
async function followOpenTicket() {
  if (S.ticketId || S.wantNew) return;
  try {
    const res = await api("/api/support/tickets");
    if (!res.ok) return;
    const open = ((await res.json()).tickets || []).find((x) => x.status === "open");
    if (open && !S.ticketId && !S.wantNew) {
      if (conn.ws) switchTicket(open.ticketId);
      else {
        S.ticketId = open.ticketId;
        storage.set(KEYS.ticket, open.ticketId);
        removeLocalGreeting();
        extras?.renderTranscriptButton();
      }
    }
  } catch {
    /* stays on the greeting */
  }
}

// ---------------------------------------------------------------------------------------------
// Talking to the loader on the shop's page (postMessage, origin checked both ways).

function postParent(msg) {
  if (!EMBEDDED || !PARENT_ORIGIN) return;
  window.parent.postMessage({ source: "trustdesk-frame", ...msg }, PARENT_ORIGIN);
}

window.addEventListener("message", (ev) => {
  if (!EMBEDDED || ev.source !== window.parent || ev.origin !== PARENT_ORIGIN) return;
  const d = ev.data;
  if (!d || typeof d !== "object" || d.source !== "trustdesk-loader") return;
  if (d.type === "identify") {
    setIdentity(d.user);
    return;
  }
  if (d.type === "state") {
    if (typeof d.pageUrl === "string" && /^https?:\/\//.test(d.pageUrl)) {
      S.pageUrl = d.pageUrl.slice(0, 2000);
    }
    const wasOpen = S.open;
    S.open = Boolean(d.open);
    if (S.open) {
      start();
      if (!wasOpen) scrollToBottom();
      markSeen();
      if (d.focus) els.input.focus({ preventScroll: true });
    } else {
      toggleEmoji(false);
    }
  }
});

// ---------------------------------------------------------------------------------------------
// Boot.

applyTranslations();
extras = createExtras({
  t,
  locale,
  api,
  storage,
  ensureSession,
  current: () => ({ ticketId: S.ticketId, status: S.status }),
  switchTicket,
  newConversation,
  withScroll: (fn) => withScroll(fn, { quiet: true }),
  localize: (text) => localizeServerText(locale, text),
  summary,
  contactEmail: () => S.identityEmail,
});
buildEmojiPanel();
renderMute();
renderStatus();
updateSendButton();
if (!S.ticketId) loadGreeting();
for (const item of S.outbox) renderPending(item);
if (EMBEDDED && !PARENT_ORIGIN) {
  // Embedded by a page we cannot verify: do nothing at all.
  els.app.hidden = true;
} else {
  postParent({ type: "ready" });
  if (S.open || S.token) start();
}
