// Files, screenshots and voice messages out: POST /api/support/upload (the body is the
// file), with a progress row that can be cancelled, retried or dismissed. Not kept across
// reloads (a file cannot wait in localStorage). Loaded with the first file (composer.js).

import { h, svgIcon } from "../shared/dom.js";
import { formatDuration, formatSize, pad, uuid } from "../shared/format.js";
import { ICONS, rememberLocal, upload, uploadError } from "./files.js";

/** A pasted screenshot's name ("image.png" from every browser) made recognisable. */
export function pastedName(file, label, d = new Date()) {
  const name = file.name;
  if (name && !/^image\.(png|jpe?g|gif|webp)$/i.test(name)) return name;
  const ext = (/\/(png|jpeg|gif|webp)$/.exec(file.type)?.[1] ?? "png").replace("jpeg", "jpg");
  return `${label} ${pad(d.getHours())}-${pad(d.getMinutes())}-${pad(d.getSeconds())}.${ext}`;
}

/** voice-20261207-134501.webm */
export function voiceName(mime, d = new Date()) {
  const ext = /ogg/.test(mime) ? "ogg" : "webm";
  const day = `${d.getFullYear()}${pad(d.getMonth() + 1)}${pad(d.getDate())}`;
  return `voice-${day}-${pad(d.getHours())}${pad(d.getMinutes())}${pad(d.getSeconds())}.${ext}`;
}

export function install(app) {
  const { S, act, t, locale } = app;

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
    const row = act.buildRow({
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
    act.appendPending(row);
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

  // Our own upload is stored (messages.js): the progress row gives way to the real message.
  function uploadStored(up, att) {
    S.uploads.delete(up.cmid);
    if (att) rememberLocal(att.id, up.file);
    up.row.remove();
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
      const res = await act.api("/api/support/tickets");
      if (!res.ok) return false;
      const open = ((await res.json()).tickets || []).some((x) => x.status === "open");
      if (open) act.showToast(t("newTicketFirst"));
      return open;
    } catch {
      return false;
    }
  }

  async function queueUpload(file, { voice = false, seconds = 0, name = "" } = {}) {
    if (!file) return;
    if (await blockedByNewConversation()) return;
    if (file.size === 0) {
      act.showToast(t("errEmpty"));
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
    if (S.status === "closed") act.setStatus("open"); // a file reopens the ticket like a message
    act.start();
    sendUpload(up);
  }

  async function sendUpload(up) {
    if (!S.uploads.has(up.cmid)) return;
    up.row.dataset.state = "pending";
    up.row.classList.add("row--pending");
    act.setReceipt(up.row);
    up.ui.error.hidden = true;
    up.ui.bar.hidden = false;
    setProgress(up, 0);
    setUploadActions(up, ["cancel"]);
    try {
      await act.ensureSession();
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
        act.setTicket(data.ticketId);
        act.replayFromStart();
        act.reconnectNow();
      }
      act.handleMessage(data.message);
      if (S.uploads.has(up.cmid)) dropUpload(up); // stored in a ticket no longer on screen
      return;
    }
    if (res.status === 401) {
      act.dropToken();
      failUpload(up, { text: t("errUpload"), retry: true });
      return;
    }
    if (res.status === 404 && hadTicket && hadTicket === S.ticketId) act.forgetTicket();
    failUpload(up, uploadError(t, res.status, res.body));
  }

  function failUpload(up, { text, retry }) {
    up.row.dataset.state = "failed";
    act.setReceipt(up.row);
    up.ui.bar.hidden = true;
    up.ui.error.textContent = text;
    up.ui.error.hidden = false;
    setUploadActions(up, retry ? ["retry", "dismiss"] : ["dismiss"]);
  }

  function uploadFiles(list, { pasted = false } = {}) {
    const files = [...(list || [])].filter((f) => f && typeof f.size === "number");
    for (const file of files.slice(0, 10)) {
      queueUpload(file, { name: pasted ? pastedName(file, t("screenshot")) : file.name });
    }
  }

  function sendVoice(blob, mime, seconds) {
    const name = voiceName(mime);
    const file = new File([blob], name, { type: mime.split(";")[0] });
    queueUpload(file, { voice: true, seconds, name });
  }

  act.uploadStored = uploadStored;
  return { uploadFiles, sendVoice };
}
