// Files, screenshots and voice messages in the composer: staging, upload, retry after reload.

import { upload } from "./api.js";
import { autoGrow, queueText, renderCounter, setMode, stopMyTyping } from "./composer.js";
import { addMessage, renderMessages } from "./conversation.js";
import { h, replaceChildren, uuid } from "./dom.js";
import { checkFile, formatSize, screenshotName } from "./files.js";
import { onMessage } from "./frames.js";
import { errorText } from "./helpers.js";
import { t } from "./i18n.js";
import { isTransient } from "./outbox.js";
import { conn, state, ui } from "./state.js";
import { dropUpload, keepUpload, keptUploads } from "./upload-store.js";

// ---------------------------------------------------------------- files, screenshots, voice

function canAttach() {
  return Boolean(state.view === "tickets" && state.current && state.current.loaded && ui.composer);
}

export function hasFiles(ev) {
  const types = ev.dataTransfer && ev.dataTransfer.types;
  return Boolean(types && [...types].includes("Files"));
}

function filesFrom(dt) {
  if (!dt) return [];
  const files = [...(dt.files || [])];
  if (files.length) return files;
  return [...(dt.items || [])]
    .filter((it) => it.kind === "file")
    .map((it) => it.getAsFile())
    .filter(Boolean);
}

export function onPaste(ev) {
  if (!canAttach()) return;
  const files = filesFrom(ev.clipboardData);
  if (!files.length) return;
  ev.preventDefault();
  ev.stopPropagation();
  stageFiles(files, true);
}

/** A screenshot pasted while nothing (or the conversation) has focus still lands here. */
export function onDocumentPaste(ev) {
  if (ev.defaultPrevented || !canAttach()) return;
  const target = ev.target;
  if (target && target.closest && target.closest("input, textarea, select, [contenteditable]")) return;
  onPaste(ev);
}

export function setupDropZone(pane) {
  let depth = 0;
  pane.dataset.drop = t("composer.dropHere");
  const off = () => {
    depth = 0;
    pane.classList.remove("drop-active");
  };
  pane.addEventListener("dragenter", (ev) => {
    if (!hasFiles(ev) || !canAttach()) return;
    ev.preventDefault();
    depth += 1;
    pane.classList.add("drop-active");
  });
  pane.addEventListener("dragover", (ev) => {
    if (!hasFiles(ev) || !canAttach()) return;
    ev.preventDefault();
    ev.dataTransfer.dropEffect = "copy";
    pane.classList.add("drop-active");
  });
  pane.addEventListener("dragleave", (ev) => {
    if (!hasFiles(ev)) return;
    depth = Math.max(0, depth - 1);
    if (!depth) off();
  });
  pane.addEventListener("drop", (ev) => {
    if (!hasFiles(ev)) return;
    ev.preventDefault();
    off();
    if (canAttach()) stageFiles(filesFrom(ev.dataTransfer), false);
  });
}

const MAX_STAGED = 10;

export function stageFiles(files, pasted) {
  const cur = state.current;
  if (!cur || !cur.loaded || !files.length) return;
  if (ui.recorder && ui.recorder.active) return;
  if (state.mode !== "reply") setMode("reply");
  const list = state.staged.get(cur.id) || [];
  const problems = [];
  for (const file of files) {
    const generic = !file.name || (pasted && /^image\.(png|jpe?g|gif|webp)$/i.test(file.name));
    const name = generic ? screenshotName(file) : file.name;
    const problem = checkFile(file);
    if (problem) {
      problems.push(`${name}: ${problem}`);
      continue;
    }
    if (list.length >= MAX_STAGED) {
      problems.push(t("composer.tooManyFiles", { n: MAX_STAGED }));
      break;
    }
    const image = /^image\/(png|jpeg|gif|webp)$/.test(file.type || "");
    list.push({ id: uuid(), file, name, url: image ? URL.createObjectURL(file) : null });
  }
  state.staged.set(cur.id, list);
  renderStaged();
  if (ui.composerError) ui.composerError.textContent = problems.join(" · ");
  if (ui.reply) ui.reply.focus();
}

function unstage(item) {
  const list = state.staged.get(state.currentId) || [];
  const next = list.filter((x) => x !== item);
  if (item.url) URL.revokeObjectURL(item.url);
  if (next.length) state.staged.set(state.currentId, next);
  else state.staged.delete(state.currentId);
  renderStaged();
  if (ui.reply) ui.reply.focus();
}

export function renderStaged() {
  const el = ui.stagedList;
  if (!el) return;
  const list = state.staged.get(state.currentId) || [];
  el.hidden = !list.length;
  replaceChildren(
    el,
    list.map((item) =>
      h(
        "li",
        { class: "staged-item", title: item.name },
        item.url
          ? h("img", { class: "staged-thumb", src: item.url, alt: "" })
          : h("span", { class: "staged-icon", "aria-hidden": "true" }, item.file.type === "application/pdf" ? "📕" : /^audio\//.test(item.file.type) ? "🎵" : "📄"),
        h(
          "span",
          { class: "staged-text" },
          h("span", { class: "staged-name" }, item.name),
          h("span", { class: "staged-size" }, formatSize(item.file.size)),
        ),
        h(
          "button",
          {
            type: "button",
            class: "staged-remove",
            "aria-label": t("composer.unstage", { name: item.name }),
            title: t("composer.unstageShort"),
            onclick: () => unstage(item),
          },
          "✕",
        ),
      ),
    ),
  );
  if (ui.composerHint) {
    ui.composerHint.textContent = list.length
      ? t("composer.hint.files", { n: list.length })
      : t(`composer.hint.${state.mode}`);
  }
}

/** The staged files go out as messages; the text (if any) becomes the first one's caption. */
export function sendStaged(cur, staged, text) {
  state.staged.delete(cur.id);
  let caption = text || null;
  // The caption travels in a request header: a very long one goes as its own message.
  if (caption && encodeURIComponent(caption).length > 6000) {
    queueText(cur, caption, "reply");
    conn.outboxRunner.kick();
    caption = null;
  }
  ui.reply.value = "";
  state.drafts.delete(cur.id);
  autoGrow();
  renderCounter();
  stopMyTyping();
  staged.forEach((item, i) =>
    queueUpload(cur, { file: item.file, name: item.name, caption: i === 0 ? caption : null, thumb: item.url }),
  );
  renderStaged();
  ui.reply.focus();
}

export function sendVoice(blob, name) {
  const cur = state.current;
  if (!cur || !cur.loaded) return;
  queueUpload(cur, { file: blob, name, voice: true });
}

function queueUpload(cur, { file, name, caption = null, voice = false, thumb = null }) {
  const p = pendingUpload({ cmid: uuid(), ticketId: cur.id, file, name, caption, voice, thumb });
  cur.pending.set(p.cmid, p);
  renderMessages({ toBottom: true });
  keepUpload(state.me.id, p); // (upload-store.js: survives a reload)
  enqueueUpload(p);
}

function pendingUpload({ cmid, ticketId, file, name, caption, voice, thumb }) {
  const p = { cmid, upload: true, mode: "reply", ticketId, file, name, caption, voice, thumb };
  Object.assign(p, { progress: 0, failed: false, error: null, el: null, queued: true });
  uploadsWaiting.set(cmid, p);
  return p;
}

/** One at a time, in the order picked: the customer sees them in that order. */
export function enqueueUpload(p) {
  uploadQueue = uploadQueue.then(() => (p.cancelled || !uploadsWaiting.has(p.cmid) ? null : sendUpload(p)));
}

let uploadQueue = Promise.resolve();
// Every upload not yet stored, of any ticket (the open one's are also in its `pending`).
export const uploadsWaiting = new Map();

/** After sign-in: the uploads a previous page of this operator left, sent again. */
export async function restoreUploads() {
  const me = state.me;
  for (const row of await keptUploads(me.id)) {
    if (state.me !== me || uploadsWaiting.has(row.cmid)) continue;
    const image = !row.voice && String(row.file.type || "").startsWith("image/");
    const p = pendingUpload({ ...row, thumb: image ? URL.createObjectURL(row.file) : null });
    const cur = state.current;
    if (cur && cur.id === p.ticketId) {
      cur.pending.set(p.cmid, p);
      if (cur.loaded) renderMessages({ toBottom: true });
    }
    enqueueUpload(p);
  }
}

function forgetUpload(p) {
  if (p.thumb) URL.revokeObjectURL(p.thumb);
  p.thumb = null;
  uploadsWaiting.delete(p.cmid);
  dropUpload(p.cmid);
  const cur = state.current;
  if (cur && cur.pending.get(p.cmid) === p) cur.pending.delete(p.cmid);
}

export async function sendUpload(p) {
  p.queued = false;
  p.failed = false;
  p.error = null;
  p.progress = 0;
  p.cancelled = false;
  p.el = null;
  if (state.current && state.current.id === p.ticketId) renderMessages();
  const handle = upload(
    { ticketId: p.ticketId, name: p.name, clientMsgId: p.cmid, caption: p.caption, voice: p.voice },
    p.file,
    (f) => {
      p.progress = f;
      updateUploadProgress(p);
    },
  );
  p.handle = handle;
  try {
    const r = await handle.promise;
    p.handle = null;
    forgetUpload(p);
    const now = state.current;
    if (now && now.id === p.ticketId && r.message) addMessage(now, r.message);
    if (r.message) onMessage(r.message);
    else if (now && now.id === p.ticketId) renderMessages();
  } catch (e) {
    p.handle = null;
    if (p.cancelled) return;
    p.failed = true;
    p.transient = isTransient(e); // re-sent when the server is back (outboxServerBack)
    p.error = errorText(e);
    p.el = null;
    if (state.current && state.current.id === p.ticketId) renderMessages();
  }
}

function cancelUpload(p) {
  p.cancelled = true;
  if (p.handle) p.handle.abort();
  forgetUpload(p);
  renderMessages();
}

function updateUploadProgress(p) {
  if (!p.bar) return;
  p.bar.value = p.progress;
  if (p.pct) p.pct.textContent = `${Math.round(p.progress * 100)}%`;
}

export function uploadPendingEl(p) {
  const title = p.voice ? `🎤 ${t("att.voice")}` : p.name;
  p.bar = null;
  p.pct = null;
  let status;
  if (p.failed) {
    status = h(
      "span",
      { class: "upload-failed", role: "alert" },
      `⚠ ${p.error}`,
      h("button", { type: "button", class: "link-btn", onclick: () => sendUpload(p) }, t("upload.retry")),
      h("button", { type: "button", class: "link-btn muted-link", onclick: () => cancelUpload(p) }, t("upload.discard")),
    );
  } else {
    p.pct = h("span", { class: "upload-pct" }, `${Math.round(p.progress * 100)}%`);
    status = h(
      "span",
      { class: "upload-status" },
      h("span", null, t(p.queued ? "upload.queued" : "upload.sending")),
      p.queued ? null : p.pct,
      h(
        "button",
        {
          type: "button",
          class: "link-btn muted-link",
          "aria-label": t("upload.cancel", { name: p.name }),
          onclick: () => cancelUpload(p),
        },
        t("settings.cancel"),
      ),
    );
    p.bar = h("progress", {
      class: "upload-bar",
      max: "1",
      value: p.progress,
      "aria-label": t("upload.progress", { name: p.name }),
    });
  }
  return h(
    "div",
    { class: `msg admin mine pending upload${p.failed ? " failed" : ""}` },
    h("div", { class: "msg-author" }, state.me.name),
    h(
      "div",
      { class: "bubble att-bubble" },
      h(
        "div",
        { class: "upload-card" },
        p.thumb
          ? h("img", { class: "upload-thumb", src: p.thumb, alt: "" })
          : h("span", { class: "upload-icon", "aria-hidden": "true" }, p.voice ? "🎤" : "📄"),
        h(
          "span",
          { class: "att-file-text" },
          h("span", { class: "att-file-name" }, title),
          h("span", { class: "att-file-size" }, formatSize(p.file.size)),
        ),
      ),
      p.bar,
    ),
    h("div", { class: "msg-meta" }, status),
  );
}
