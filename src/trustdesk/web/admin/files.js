// Files, screenshots and voice messages in the conversation: how attachments look
// (image preview + lightbox, file card, audio player), the staged-file chips of the
// composer, and the voice recorder (MediaRecorder). Everything user-provided goes in as
// text (names) or as a same-origin URL (/api/admin/files/{id}, blob: previews).

import { fileUrl } from "./api.js";
import { h, replaceChildren } from "./dom.js";
import { getLang, t } from "./i18n.js";
import { fileProblem, MAX_FILE_BYTES } from "../shared/files.js";
import { formatSize as sharedFormatSize } from "../shared/format.js";

export { MAX_FILE_BYTES };
export const VOICE_MAX_MS = 5 * 60 * 1000;
export const ACCEPT = "image/png,image/jpeg,image/gif,image/webp,application/pdf,audio/webm,audio/ogg,.png,.jpg,.jpeg,.gif,.webp,.pdf,.webm,.ogg,.oga,.opus";
/** "1,2 МБ" / "1.2 MB" */
export function formatSize(bytes) {
  return sharedFormatSize(bytes, getLang());
}

/** "0:07" */
export function formatClock(ms) {
  const s = Math.max(0, Math.floor(ms / 1000));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
}

/** Why a picked file cannot be sent (before uploading it), or null. */
export function checkFile(file) {
  const problem = fileProblem(file, MAX_FILE_BYTES);
  return problem ? t(`error.${problem}`) : null;
}

/** The list's one-line preview of a file / voice message, or null for text. */
export function attachmentPreview(m) {
  if (m.kind === "voice" || (m.attachment && m.attachment.kind === "audio" && m.kind === "voice")) {
    return `🎤 ${t("att.voice")}`;
  }
  if (m.attachment) return `📎 ${m.attachment.name}`;
  if (m.kind === "file") return `📎 ${m.message}`;
  return null;
}

function fileIcon(a) {
  if (a.kind === "audio") return "🎵";
  if (a.mime === "application/pdf") return "📕";
  if (a.kind === "image") return "🖼️";
  return "📄";
}

function extOf(name) {
  const m = /\.([a-z0-9]{1,5})$/i.exec(name || "");
  return m ? m[1].toUpperCase() : "";
}

/**
 * Chromium's MediaRecorder writes WebM without a duration, so the player shows 0:00 and
 * no length. Seeking far past the end makes the browser find the real duration.
 */
export function fixDuration(audio) {
  audio.addEventListener("loadedmetadata", () => {
    if (audio.duration !== Infinity) return;
    const found = () => {
      if (!Number.isFinite(audio.duration)) return;
      audio.removeEventListener("durationchange", found);
      audio.currentTime = 0;
    };
    audio.addEventListener("durationchange", found);
    audio.currentTime = 1e101;
  });
  return audio;
}

let lightbox = null;

/** A full-size view of an image (native <dialog>: Esc and the backdrop close it). */
export function openLightbox(src, name, downloadHref) {
  if (!lightbox) {
    const img = h("img", { class: "lightbox-img", alt: "" });
    const caption = h("span", { class: "lightbox-name" });
    const download = h("a", { class: "btn soft small lightbox-download" }, `↓ ${t("att.download")}`);
    const close = h(
      "button",
      { type: "button", class: "btn ghost small lightbox-close", "aria-label": t("att.closePreview") },
      "✕",
    );
    const dlg = h(
      "dialog",
      { class: "lightbox" },
      h("div", { class: "lightbox-bar" }, caption, download, close),
      h("div", { class: "lightbox-body" }, img),
    );
    close.addEventListener("click", () => dlg.close());
    dlg.addEventListener("click", (ev) => {
      if (ev.target === dlg || ev.target.classList.contains("lightbox-body")) dlg.close();
    });
    dlg.addEventListener("close", () => img.removeAttribute("src"));
    document.body.appendChild(dlg);
    lightbox = { dlg, img, caption, download, close };
  }
  const lb = lightbox;
  lb.img.src = src;
  lb.img.alt = name;
  lb.caption.textContent = name;
  lb.dlg.setAttribute("aria-label", name);
  lb.close.setAttribute("aria-label", t("att.closePreview"));
  lb.download.textContent = `↓ ${t("att.download")}`;
  if (downloadHref) {
    lb.download.href = downloadHref;
    lb.download.setAttribute("download", name);
    lb.download.hidden = false;
  } else {
    lb.download.hidden = true;
  }
  if (!lb.dlg.open) lb.dlg.showModal();
  lb.close.focus();
}

/** What goes inside the bubble of a message with an attachment. */
export function attachmentBody(m, linkify) {
  const a = m.attachment;
  const url = fileUrl(a.id);
  const parts = [];
  if (a.kind === "image") {
    const img = h("img", {
      src: url,
      alt: a.name,
      loading: "lazy",
      decoding: "async",
      width: a.width || null,
      height: a.height || null,
    });
    if (a.width && a.height) img.style.aspectRatio = `${a.width} / ${a.height}`;
    parts.push(
      h(
        "button",
        {
          type: "button",
          class: "att-image",
          "aria-label": t("att.enlarge", { name: a.name }),
          title: a.name,
          onclick: () => openLightbox(url, a.name, url),
        },
        img,
      ),
    );
  } else if (a.kind === "audio") {
    const voice = m.kind === "voice";
    parts.push(
      h(
        "div",
        { class: `att-audio${voice ? " voice" : ""}` },
        h(
          "div",
          { class: "att-audio-head" },
          h("span", { class: "att-audio-icon", "aria-hidden": "true" }, voice ? "🎤" : "🎵"),
          h("span", { class: "att-audio-title" }, voice ? t("att.voice") : a.name),
          h(
            "a",
            {
              class: "att-dl-mini",
              href: url,
              download: a.name,
              "aria-label": t("att.downloadName", { name: a.name }),
              title: t("att.download"),
            },
            "↓",
          ),
        ),
        fixDuration(
          h("audio", {
            controls: true,
            preload: "metadata",
            src: url,
            "aria-label": voice ? t("att.voice") : a.name,
          }),
        ),
      ),
    );
  } else {
    parts.push(
      h(
        "div",
        { class: "att-file" },
        h(
          "span",
          { class: "att-file-icon", "aria-hidden": "true" },
          fileIcon(a),
          h("span", { class: "att-file-ext" }, extOf(a.name)),
        ),
        h(
          "span",
          { class: "att-file-text" },
          h("span", { class: "att-file-name", title: a.name }, a.name),
          h("span", { class: "att-file-size" }, formatSize(a.size)),
        ),
        h(
          "a",
          {
            class: "att-file-dl",
            href: url,
            download: a.name,
            "aria-label": t("att.downloadName", { name: a.name }),
            title: t("att.download"),
          },
          "↓",
        ),
      ),
    );
  }
  const caption = (m.message || "").trim();
  if (caption && caption !== a.name) parts.push(h("div", { class: "att-caption" }, linkify(caption)));
  return parts;
}

// ---------------------------------------------------------------- voice recorder

function pickMime() {
  if (typeof MediaRecorder === "undefined") return null;
  const options = ["audio/webm;codecs=opus", "audio/webm", "audio/ogg;codecs=opus", "audio/ogg"];
  for (const type of options) {
    try {
      if (MediaRecorder.isTypeSupported(type)) return type;
    } catch {
      /* keep looking */
    }
  }
  return "";
}

export function recordingSupported() {
  return Boolean(navigator.mediaDevices && navigator.mediaDevices.getUserMedia && typeof MediaRecorder !== "undefined");
}

function stamp() {
  const d = new Date();
  const p = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}-${p(d.getHours())}${p(d.getMinutes())}${p(d.getSeconds())}`;
}

/** A pasted screenshot is called "image.png" by every browser: give it a useful name. */
export function screenshotName(file) {
  const ext = (file.type || "image/png").split("/")[1] || "png";
  return `screenshot-${stamp()}.${ext === "jpeg" ? "jpg" : ext}`;
}

/**
 * The recorder panel in the composer. States: idle → recording → preview → (send | cancel).
 * opts: {onSend(blob, name, durationMs), onOpen(), onClose(), onError(text)}
 */
export class Recorder {
  constructor(opts) {
    this.opts = opts;
    this.state = "idle";
    this.el = h("div", { class: "recorder", hidden: true });
    this.stream = null;
    this.rec = null;
    this.chunks = [];
    this.startedAt = 0;
    this.elapsed = 0;
    this.tick = null;
    this.limit = null;
    this.blob = null;
    this.url = null;
  }

  get active() {
    return this.state !== "idle";
  }

  async start() {
    if (this.state !== "idle") return;
    if (!recordingSupported()) {
      this.opts.onError(t("voice.unsupported"));
      return;
    }
    this.state = "starting";
    let stream;
    try {
      stream = await navigator.mediaDevices.getUserMedia({ audio: true });
    } catch (e) {
      this.state = "idle";
      const name = e && e.name;
      this.opts.onError(
        name === "NotAllowedError" || name === "SecurityError"
          ? t("voice.denied")
          : name === "NotFoundError"
            ? t("voice.noMic")
            : t("voice.failed"),
      );
      return;
    }
    if (this.state !== "starting") {
      // Cancelled while the browser was asking for permission.
      for (const tr of stream.getTracks()) tr.stop();
      return;
    }
    const mime = pickMime();
    let rec;
    try {
      rec = mime ? new MediaRecorder(stream, { mimeType: mime }) : new MediaRecorder(stream);
    } catch {
      for (const tr of stream.getTracks()) tr.stop();
      this.state = "idle";
      this.opts.onError(t("voice.unsupported"));
      return;
    }
    this.stream = stream;
    this.rec = rec;
    this.chunks = [];
    rec.addEventListener("dataavailable", (ev) => {
      if (ev.data && ev.data.size) this.chunks.push(ev.data);
    });
    rec.addEventListener("stop", () => this.onStopped());
    rec.start(250);
    this.startedAt = Date.now();
    this.elapsed = 0;
    this.state = "recording";
    this.tick = setInterval(() => this.renderTimer(), 250);
    this.limit = setTimeout(() => this.stop(), VOICE_MAX_MS);
    this.opts.onOpen();
    this.render();
  }

  stop() {
    if (this.state !== "recording") return;
    this.elapsed = Date.now() - this.startedAt;
    this.state = "stopping";
    clearInterval(this.tick);
    clearTimeout(this.limit);
    try {
      this.rec.stop();
    } catch {
      this.onStopped();
    }
    this.render();
  }

  onStopped() {
    for (const tr of this.stream ? this.stream.getTracks() : []) tr.stop();
    this.stream = null;
    if (this.state === "idle") return; // cancelled: throw it away
    const type = (this.rec && this.rec.mimeType ? this.rec.mimeType : "audio/webm").split(";")[0];
    this.blob = new Blob(this.chunks, { type });
    this.chunks = [];
    this.rec = null;
    if (!this.blob.size) {
      this.reset();
      this.opts.onError(t("voice.failed"));
      return;
    }
    this.url = URL.createObjectURL(this.blob);
    this.state = "preview";
    this.render();
  }

  send() {
    if (this.state !== "preview" || !this.blob) return;
    const ext = this.blob.type.includes("ogg") ? "ogg" : "webm";
    const blob = this.blob;
    const ms = this.elapsed;
    this.reset();
    this.opts.onSend(blob, `voice-${stamp()}.${ext}`, ms);
  }

  cancel() {
    this.reset();
  }

  reset() {
    const was = this.state;
    this.state = "idle";
    clearInterval(this.tick);
    clearTimeout(this.limit);
    if (this.rec && this.rec.state !== "inactive") {
      try {
        this.rec.stop();
      } catch {
        /* ignore */
      }
    }
    for (const tr of this.stream ? this.stream.getTracks() : []) tr.stop();
    this.stream = null;
    this.rec = null;
    this.chunks = [];
    if (this.url) URL.revokeObjectURL(this.url);
    this.url = null;
    this.blob = null;
    this.render();
    if (was !== "idle") this.opts.onClose();
  }

  renderTimer() {
    if (!this.timerEl || this.state !== "recording") return;
    const ms = Date.now() - this.startedAt;
    this.timerEl.textContent = `${formatClock(ms)} / ${formatClock(VOICE_MAX_MS)}`;
    if (this.barEl) this.barEl.style.width = `${Math.min(100, (ms / VOICE_MAX_MS) * 100)}%`;
  }

  render() {
    const el = this.el;
    this.timerEl = null;
    this.barEl = null;
    if (this.state === "idle" || this.state === "starting") {
      el.hidden = true;
      replaceChildren(el);
      return;
    }
    el.hidden = false;
    const cancel = h(
      "button",
      {
        type: "button",
        class: "icon-btn rec-cancel",
        "aria-label": t("voice.cancel"),
        title: t("voice.cancel"),
        onclick: () => this.cancel(),
      },
      "🗑",
    );
    if (this.state === "recording" || this.state === "stopping") {
      this.timerEl = h("span", { class: "rec-timer", role: "timer", "aria-live": "off" });
      this.barEl = h("span", { class: "rec-progress-fill" });
      replaceChildren(
        el,
        cancel,
        h(
          "div",
          { class: "rec-live" },
          h("span", { class: "rec-dot", "aria-hidden": "true" }),
          h("span", { class: "rec-label" }, t("voice.recording")),
          this.timerEl,
          h("span", { class: "rec-progress", "aria-hidden": "true" }, this.barEl),
        ),
        h(
          "button",
          {
            type: "button",
            class: "btn danger small rec-stop",
            "aria-label": t("voice.stop"),
            disabled: this.state === "stopping",
            onclick: () => this.stop(),
          },
          h("span", { class: "rec-stop-square", "aria-hidden": "true" }),
          t("voice.stopShort"),
        ),
      );
      this.renderTimer();
      return;
    }
    // preview
    const audio = fixDuration(
      h("audio", { controls: true, preload: "metadata", src: this.url, class: "rec-audio", "aria-label": t("voice.preview") }),
    );
    replaceChildren(
      el,
      cancel,
      h("div", { class: "rec-preview" }, audio, h("span", { class: "rec-duration" }, formatClock(this.elapsed))),
      h(
        "button",
        { type: "button", class: "btn primary small rec-send", onclick: () => this.send() },
        t("voice.send"),
      ),
    );
  }
}
