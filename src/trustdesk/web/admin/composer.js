// The composer: reply, note and system modes, canned responses, typing frames, the outbox.

import { api, ApiError } from "./api.js";
import {
  enqueueUpload,
  onPaste,
  renderStaged,
  restoreUploads,
  sendStaged,
  sendUpload,
  sendVoice,
  stageFiles,
  uploadsWaiting,
} from "./composer-files.js";
import { addMessage, renderMessages } from "./conversation.js";
import { chooseCanned, hideCanned, moveCanned, updateCanned } from "./customer-data.js";
import { h } from "./dom.js";
import { ACCEPT, Recorder, recordingSupported } from "./files.js";
import { onMessage } from "./frames.js";
import { errorText } from "./helpers.js";
import { getLang, t } from "./i18n.js";
import { kbComposerTool } from "./kb.js";
import { counterState } from "./keys.js";
import { isTransient, Outbox, OutboxRunner } from "./outbox.js";
import { conn, MAX_LEN, state, TYPING_IDLE_MS, TYPING_SEND_EVERY_MS, ui } from "./state.js";

// ---------------------------------------------------------------- composer

export function buildComposer() {
  const tabs = ["reply", "note", "system"].map((mode) =>
    h(
      "button",
      {
        type: "button",
        role: "tab",
        class: "mode-tab",
        dataset: { mode },
        "aria-selected": mode === state.mode ? "true" : "false",
        onclick: () => setMode(mode),
      },
      t(`composer.${mode}Tab`),
    ),
  );
  ui.modeTabs = tabs;
  ui.replyLabel = h("label", { for: "reply-box", class: "sr-only" }, t("composer.reply"));
  ui.reply = h("textarea", {
    id: "reply-box",
    rows: 2,
    "aria-describedby": "reply-counter",
    "aria-autocomplete": "list",
    "aria-controls": "canned-pop",
  });
  ui.reply.value = state.drafts.get(state.currentId) || "";
  ui.canned = h("ul", { id: "canned-pop", class: "canned-pop", role: "listbox", "aria-label": t("composer.canned"), hidden: true });
  ui.sendBtn = h("button", { type: "submit", class: "btn primary send-btn" }, t("composer.send"));
  ui.composerHint = h("span", { class: "composer-hint" });
  ui.composerError = h("span", { class: "composer-error", role: "alert" });
  ui.counter = h("span", { id: "reply-counter", class: "reply-counter", hidden: true, "aria-live": "polite" });
  ui.fileInput = h("input", {
    type: "file",
    class: "file-input",
    multiple: true,
    accept: ACCEPT,
    hidden: true,
    tabindex: "-1",
  });
  ui.fileInput.addEventListener("change", () => {
    const files = [...(ui.fileInput.files || [])];
    ui.fileInput.value = "";
    stageFiles(files, false);
  });
  ui.attachBtn = h(
    "button",
    {
      type: "button",
      class: "icon-btn tool-btn attach-btn",
      "aria-label": t("composer.attach"),
      title: t("composer.attachHint"),
      onclick: () => ui.fileInput && ui.fileInput.click(),
    },
    "📎",
  );
  ui.micBtn = h(
    "button",
    {
      type: "button",
      class: "icon-btn tool-btn mic-btn",
      "aria-label": t("composer.voice"),
      title: t("composer.voice"),
      hidden: !recordingSupported(),
      onclick: () => {
        ui.composerError.textContent = "";
        stopMyTyping();
        if (ui.recorder) ui.recorder.start();
      },
    },
    "🎤",
  );
  ui.stagedList = h("ul", { class: "staged", "aria-label": t("composer.staged"), hidden: true });
  const recorder = new Recorder({
    onSend: (blob, name) => sendVoice(blob, name),
    onOpen: () => form.classList.add("recording"),
    onClose: () => {
      form.classList.remove("recording");
      if (ui.reply && ui.composer === form) ui.reply.focus();
    },
    onError: (text) => {
      if (ui.composer === form) ui.composerError.textContent = text;
    },
  });
  ui.recorder = recorder;
  const kbTool = kbComposerTool(() => ui.reply); // "📚": a link to a help-center article (kb.js)
  const form = h(
    "form",
    { class: "composer", novalidate: true },
    h("div", { class: "mode-tabs", role: "tablist", "aria-label": t("composer.modes") }, tabs),
    ui.stagedList,
    h("div", { class: "composer-box" }, ui.canned, kbTool.box, ui.replyLabel, ui.reply),
    recorder.el,
    h(
      "div",
      { class: "composer-foot" },
      h("div", { class: "composer-tools" }, ui.attachBtn, ui.micBtn, kbTool.button),
      ui.composerHint,
      ui.composerError,
      ui.counter,
      ui.sendBtn,
    ),
    ui.fileInput,
  );
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    send();
  });
  ui.reply.addEventListener("keydown", onReplyKeydown);
  ui.reply.addEventListener("input", onReplyInput);
  ui.reply.addEventListener("paste", onPaste);
  ui.reply.addEventListener("blur", () => {
    setTimeout(() => hideCanned(), 150);
    stopMyTyping();
  });
  requestAnimationFrame(() => autoGrow());
  renderStaged();
  return form;
}

export function setMode(mode) {
  state.mode = mode;
  renderComposerState();
  if (mode !== "reply") stopMyTyping();
  ui.reply.focus();
}

export function renderComposerState() {
  if (!ui.composer) return;
  const mode = state.mode;
  ui.composer.classList.remove("mode-reply", "mode-note", "mode-system");
  ui.composer.classList.add(`mode-${mode}`);
  for (const tab of ui.modeTabs) tab.setAttribute("aria-selected", tab.dataset.mode === mode ? "true" : "false");
  ui.replyLabel.textContent = t(mode === "reply" ? "composer.reply" : mode === "note" ? "composer.note" : "composer.system");
  ui.reply.placeholder = t(`composer.placeholder.${mode}`);
  ui.sendBtn.textContent = t(mode === "reply" ? "composer.send" : mode === "note" ? "composer.addNote" : "composer.sendSystem");
  ui.composerHint.textContent = t(`composer.hint.${mode}`);
  const s = state.tickets.get(state.currentId);
  const loaded = state.current && state.current.loaded;
  ui.reply.disabled = !loaded;
  ui.sendBtn.disabled = !loaded;
  ui.attachBtn.disabled = !loaded;
  ui.micBtn.disabled = !loaded;
  renderCounter();
  renderStaged();
  if (ui.closedNote) ui.closedNote.hidden = !(s && s.status === "closed");
}

/** From 80 % of the limit: "3 650 / 4 000"; past it, red, Send off and why (the text is
 * kept: the server would refuse it with 422 anyway, and nothing is cut silently). */
export function renderCounter() {
  if (!ui.counter || !ui.reply) return;
  const len = ui.reply.value.trim().length;
  const c = counterState(len, MAX_LEN, getLang());
  ui.counter.hidden = !c;
  ui.counter.textContent = c ? c.text : "";
  ui.counter.classList.toggle("full", Boolean(c && c.full));
  ui.counter.classList.toggle("over", Boolean(c && c.over));
  const over = Boolean(c && c.over);
  const loaded = Boolean(state.current && state.current.loaded);
  ui.sendBtn.disabled = !loaded || over;
  ui.reply.setAttribute("aria-invalid", over ? "true" : "false");
  if (over) ui.composerError.textContent = t("composer.overBy", { n: len - MAX_LEN, max: MAX_LEN });
  else if (ui.composerError.dataset.over) ui.composerError.textContent = "";
  ui.composerError.dataset.over = over ? "1" : "";
}

export function autoGrow() {
  const el = ui.reply;
  if (!el) return;
  el.style.height = "auto";
  el.style.height = `${Math.min(el.scrollHeight + 2, 220)}px`;
}

function onReplyKeydown(ev) {
  if (!ui.canned.hidden) {
    if (ev.key === "ArrowDown" || ev.key === "ArrowUp") {
      ev.preventDefault();
      moveCanned(ev.key === "ArrowDown" ? 1 : -1);
      return;
    }
    if ((ev.key === "Enter" && !ev.shiftKey) || ev.key === "Tab") {
      const active = ui.canned.querySelector("[aria-selected='true']");
      if (active) {
        ev.preventDefault();
        chooseCanned(Number(active.dataset.cannedId));
        return;
      }
    }
    if (ev.key === "Escape") {
      ev.preventDefault();
      hideCanned();
      return;
    }
  }
  if (ev.key === "Escape") {
    ev.preventDefault();
    ui.reply.blur(); // j/k work again
    return;
  }
  if (ev.key === "Enter" && !ev.shiftKey && !ev.isComposing && ev.keyCode !== 229) {
    ev.preventDefault();
    send();
  }
}

let lastTypingSent = 0;
let typingActive = false;
let typingIdleTimer = null;
let typingTicket = null;

export function onReplyInput() {
  autoGrow();
  ui.composerError.textContent = "";
  renderCounter();
  if (state.currentId) state.drafts.set(state.currentId, ui.reply.value);
  updateCanned();
  if (state.mode !== "reply") return;
  if (!ui.reply.value.trim()) {
    stopMyTyping();
    return;
  }
  const now = Date.now();
  if (!typingActive || now - lastTypingSent > TYPING_SEND_EVERY_MS || typingTicket !== state.currentId) {
    if (conn.live && conn.live.send({ type: "typing", ticketId: state.currentId, active: true })) {
      typingActive = true;
      typingTicket = state.currentId;
      lastTypingSent = now;
    }
  }
  clearTimeout(typingIdleTimer);
  typingIdleTimer = setTimeout(stopMyTyping, TYPING_IDLE_MS);
}

export function stopMyTyping() {
  clearTimeout(typingIdleTimer);
  if (typingActive && typingTicket && conn.live) {
    conn.live.send({ type: "typing", ticketId: typingTicket, active: false });
  }
  typingActive = false;
  typingTicket = null;
  lastTypingSent = 0;
}

function send() {
  const cur = state.current;
  if (!cur || !cur.loaded || !ui.reply) return;
  if (!ui.canned.hidden) hideCanned();
  const text = ui.reply.value.trim();
  const staged = state.mode === "reply" ? state.staged.get(cur.id) || [] : [];
  if (!text && !staged.length) {
    ui.reply.focus();
    return;
  }
  if (text.length > MAX_LEN) {
    renderCounter(); // says by how much; the text stays as it is
    return;
  }
  if (staged.length) {
    sendStaged(cur, staged, text);
    return;
  }
  queueText(cur, text, state.mode);
  ui.reply.value = "";
  state.drafts.delete(cur.id);
  autoGrow();
  renderCounter();
  stopMyTyping();
  renderMessages({ toBottom: true });
  ui.reply.focus();
  conn.outboxRunner.kick();
}

// Replies go over the dashboard's socket when it is up (no HTTP request per message); the
// server answers `ack` or an `error` naming the client_msg_id.
class SocketUnavailable extends Error {}
const socketSends = new Map(); // client_msg_id -> {resolve, reject, timer}
const SOCKET_ACK_MS = 8000;

function replyOverSocket(p) {
  return new Promise((resolve, reject) => {
    const frame = { type: "send", ticketId: p.ticketId, message: p.text, client_msg_id: p.cmid };
    if (p.mode === "note") frame.note = true;
    if (!conn.live || !conn.live.send(frame)) {
      reject(new SocketUnavailable("offline"));
      return;
    }
    const timer = setTimeout(() => {
      socketSends.delete(p.cmid);
      reject(new SocketUnavailable("no answer"));
    }, SOCKET_ACK_MS);
    socketSends.set(p.cmid, { resolve, reject, timer });
  });
}

export function settleSocketSend(f) {
  const waiting = f.client_msg_id ? socketSends.get(f.client_msg_id) : null;
  if (!waiting) return false;
  socketSends.delete(f.client_msg_id);
  clearTimeout(waiting.timer);
  if (f.type === "ack") waiting.resolve({ message: f.message });
  else waiting.reject(new ApiError(f.retry_after ? 429 : 400, f.code, f.message, f.retry_after));
  return true;
}

export function dropSocketSends() {
  // The socket closed: whatever had no answer is retried over HTTP (same client_msg_id).
  for (const [cmid, waiting] of socketSends) {
    clearTimeout(waiting.timer);
    waiting.reject(new SocketUnavailable("closed"));
    socketSends.delete(cmid);
  }
}

// The outbox (outbox.js): replies, notes and system notices wait in localStorage until the
// server has stored them, re-sent with backoff and at once when the server is back
// (kept in state.js `conn`, which the conversation and the files read too).

export function startOutbox() {
  stopOutbox();
  conn.outbox = new Outbox({ owner: state.me.id }).load();
  conn.outboxRunner = new OutboxRunner(conn.outbox, { send: transmit, onSent: outboxSent, onFailed: outboxFailed, onChange: outboxChanged });
  conn.outboxRunner.kick(); // what a previous page left
  restoreUploads();
}

export function stopOutbox() {
  if (conn.outboxRunner) conn.outboxRunner.stop();
  for (const p of uploadsWaiting.values()) p.cancelled = true; // (kept for the next sign-in)
  uploadsWaiting.clear();
  conn.outbox = null;
  conn.outboxRunner = null;
}

export function queueText(cur, text, mode) {
  const p = conn.outbox.add({ ticketId: cur.id, mode, text });
  cur.pending.set(p.cmid, p);
  return p;
}

/** One attempt; the same client_msg_id every time (the server stores it once). */
function transmit(p) {
  if (p.mode === "system") return api.system(p.ticketId, p.text, p.cmid);
  return replyOverSocket(p).catch((e) => {
    if (!(e instanceof SocketUnavailable)) throw e;
    // Not sent, or sent without an answer: HTTP with the same client_msg_id (idempotent).
    return p.mode === "note" ? api.note(p.ticketId, p.text, p.cmid) : api.reply(p.ticketId, p.text, p.cmid);
  });
}

function outboxSent(p, r) {
  clearOutboxError(p.cmid);
  const now = state.current;
  if (now && now.id === p.ticketId) {
    now.pending.delete(p.cmid);
    if (r && r.message) addMessage(now, r.message);
  }
  if (r && r.message) onMessage(r.message);
}

function outboxFailed(p, e) {
  // Waiting for the server is shown on the message itself; only a refusal speaks here.
  if (isTransient(e) || !ui.composerError) return;
  const now = state.current;
  if (!now || now.id !== p.ticketId) return;
  ui.composerError.textContent = errorText(e);
  ui.composerError.dataset.outbox = p.cmid;
}

function outboxChanged() {
  const now = state.current;
  if (now && now.loaded) renderMessages();
}

export function outboxAcked(cmid) {
  if (conn.outbox && conn.outbox.ack(cmid)) clearOutboxError(cmid);
}

function clearOutboxError(cmid) {
  const el = ui.composerError;
  if (!el || !el.dataset.outbox || (cmid && el.dataset.outbox !== cmid)) return;
  el.textContent = "";
  delete el.dataset.outbox;
}

/** The socket is back: send what waits now, and files that failed for want of a server. */
export function outboxServerBack() {
  if (conn.outboxRunner) conn.outboxRunner.wake();
  for (const p of uploadsWaiting.values()) if (p.failed && p.transient) enqueueUpload(p);
}

export function sendPending(p) {
  if (p.upload) return sendUpload(p);
  clearOutboxError(p.cmid);
  if (!conn.outbox || !conn.outbox.retry(p.cmid)) return;
  conn.outboxRunner.kick();
}

export function discardPending(p) {
  clearOutboxError(p.cmid);
  if (conn.outbox) conn.outbox.discard(p.cmid);
  const cur = state.current;
  if (cur && cur.pending.get(p.cmid) === p) cur.pending.delete(p.cmid);
  renderMessages();
}
