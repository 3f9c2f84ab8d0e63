// Files, screenshots and voice messages in the chat panel: uploads with progress, and the
// rendering of attachments (image preview + lightbox, file card, voice player).
// Downloads need the visitor's Bearer token, so every file is fetched with it and shown from
// a blob: URL (the CSP allows img-src/media-src blob:). User text only ever goes in as text.

import { h as el, svgIcon } from "../shared/dom.js";
import { formatDuration, formatSize } from "../shared/format.js";

export { formatDuration, formatSize, svgIcon };

export const ICONS = {
  play: "M8 5.14v13.72a1 1 0 0 0 1.52.85l11.02-6.86a1 1 0 0 0 0-1.7L9.52 4.29A1 1 0 0 0 8 5.14Z",
  pause: "M7 4.5A1.5 1.5 0 0 1 8.5 3h1A1.5 1.5 0 0 1 11 4.5v15A1.5 1.5 0 0 1 9.5 21h-1A1.5 1.5 0 0 1 7 19.5v-15Zm6 0A1.5 1.5 0 0 1 14.5 3h1A1.5 1.5 0 0 1 17 4.5v15a1.5 1.5 0 0 1-1.5 1.5h-1a1.5 1.5 0 0 1-1.5-1.5v-15Z",
  download: "M12 3a1 1 0 0 1 1 1v9.59l3.3-3.3a1 1 0 1 1 1.4 1.42l-5 5a1 1 0 0 1-1.4 0l-5-5a1 1 0 1 1 1.4-1.42l3.3 3.3V4a1 1 0 0 1 1-1ZM5 19a1 1 0 1 0 0 2h14a1 1 0 1 0 0-2H5Z",
  file: "M6 2h8.59L20 7.41V20a2 2 0 0 1-2 2H6a2 2 0 0 1-2-2V4a2 2 0 0 1 2-2Zm7 1.5V8h4.5L13 3.5Z",
  close: "M18.3 5.71a1 1 0 0 0-1.41 0L12 10.59 7.11 5.7A1 1 0 0 0 5.7 7.11L10.59 12 5.7 16.89a1 1 0 1 0 1.41 1.41L12 13.41l4.89 4.89a1 1 0 0 0 1.41-1.41L13.41 12l4.89-4.89a1 1 0 0 0 0-1.4Z",
  retry: "M17.65 6.35A7.96 7.96 0 0 0 12 4a8 8 0 1 0 7.74 10h-2.08A6 6 0 1 1 12 6c1.66 0 3.14.69 4.22 1.78L13 11h7V4l-2.35 2.35Z",
  mic: "M12 14a3 3 0 0 0 3-3V5a3 3 0 0 0-6 0v6a3 3 0 0 0 3 3Zm5.3-3a.75.75 0 0 1 1.5 0A6.8 6.8 0 0 1 12.75 17.7V20h2.5a.75.75 0 0 1 0 1.5h-6.5a.75.75 0 0 1 0-1.5h2.5v-2.3A6.8 6.8 0 0 1 5.2 11a.75.75 0 0 1 1.5 0 5.3 5.3 0 0 0 10.6 0Z",
};

function extOf(name, mime) {
  const m = /\.([a-z0-9]{1,5})$/i.exec(name || "");
  if (m) return m[1].toUpperCase();
  if (mime === "application/pdf") return "PDF";
  return "FILE";
}

// ---------------------------------------------------------------------------------------------
// Downloads: fetched with the Bearer token, cached as blob: URLs for the page's lifetime.

const blobs = new Map(); // attachment id -> Promise<{url, blob}>

export function fetchFile(id, token) {
  if (blobs.has(id)) return blobs.get(id);
  const p = fetch(`/api/support/files/${encodeURIComponent(id)}`, {
    headers: token ? { Authorization: `Bearer ${token}` } : {},
    credentials: "omit",
  }).then(async (res) => {
    if (!res.ok) throw new Error(`file ${res.status}`);
    const blob = await res.blob();
    return { blob, url: URL.createObjectURL(blob) };
  });
  p.catch(() => blobs.delete(id)); // a failure may be retried later
  blobs.set(id, p);
  return p;
}

// Seed the cache with what the customer just sent (no need to download it back).
export function rememberLocal(id, blob) {
  if (!id || !blob || blobs.has(id)) return;
  blobs.set(id, Promise.resolve({ blob, url: URL.createObjectURL(blob) }));
}

export async function download(att, token) {
  const { url } = await fetchFile(att.id, token);
  const a = document.createElement("a");
  a.href = url;
  a.download = att.name || "file";
  a.rel = "noopener";
  document.body.append(a);
  a.click();
  a.remove();
}

// ---------------------------------------------------------------------------------------------
// Uploads: XMLHttpRequest for the progress events. Body = the file's bytes.

export function upload({ file, name, ticketId, clientMsgId, caption, voice, token, onProgress }) {
  const xhr = new XMLHttpRequest();
  // The name and caption are the customer's text: headers, never the URL (access logs keep URLs).
  const q = new URLSearchParams();
  if (ticketId) q.set("ticketId", ticketId);
  if (clientMsgId) q.set("client_msg_id", clientMsgId);
  if (voice) q.set("voice", "true");
  const promise = new Promise((resolve) => {
    xhr.open("POST", `/api/support/upload?${q.toString()}`);
    if (token) xhr.setRequestHeader("Authorization", `Bearer ${token}`);
    const fileName = (name || file.name || "file").slice(0, 255);
    xhr.setRequestHeader("X-TrustDesk-Name", encodeURIComponent(fileName));
    if (caption) xhr.setRequestHeader("X-TrustDesk-Caption", encodeURIComponent(caption.slice(0, 4000)));
    xhr.setRequestHeader("Content-Type", "application/octet-stream");
    xhr.responseType = "text";
    xhr.upload.onprogress = (ev) => {
      if (ev.lengthComputable && ev.total > 0) onProgress?.(ev.loaded / ev.total);
    };
    xhr.onload = () => {
      let body = null;
      try {
        body = JSON.parse(xhr.responseText || "null");
      } catch {
        body = null;
      }
      resolve({
        status: xhr.status,
        body,
        retryAfter: Number(xhr.getResponseHeader("Retry-After")) || 0,
      });
    };
    xhr.onerror = () => resolve({ status: 0, body: null, retryAfter: 0 });
    xhr.onabort = () => resolve({ status: -1, body: null, retryAfter: 0 });
    xhr.ontimeout = () => resolve({ status: 0, body: null, retryAfter: 0 });
    xhr.send(file);
  });
  return { promise, abort: () => xhr.abort() };
}

// A clear, translated reason for a refused upload (null = worth retrying as is).
export function uploadError(t, status, body) {
  const code = String(body?.error?.code || "");
  const message = String(body?.error?.message || "");
  if (status === 413 || code === "file_too_large" || code === "payload_too_large") {
    if (code === "quota_exceeded") return { text: t("errQuota"), retry: false };
    const mib = /(\d+)\s*MiB/.exec(message);
    const max = mib ? Number(mib[1]) : 10;
    return { text: t("errTooLarge", { max }), retry: false };
  }
  if (status === 415 || code === "unsupported_type") return { text: t("errType"), retry: false };
  if (code === "bad_image") return { text: t("errBadImage"), retry: false };
  if (code === "empty_file") return { text: t("errEmpty"), retry: false };
  if (status === 429) return { text: t("errRate"), retry: true };
  if (status === 0) return { text: t("errNetwork"), retry: true };
  if (status === 404) return { text: t("errUpload"), retry: false };
  return { text: t("errUpload"), retry: status >= 500 };
}

// ---------------------------------------------------------------------------------------------
// Rendering an attachment inside a bubble.

// ctx: { t, locale, token(): string, openImage(att, url) }
export function renderAttachment(att, ctx) {
  if (att.kind === "image") return renderImage(att, ctx);
  if (att.kind === "audio") return renderAudio(att, ctx);
  return renderFileCard(att, ctx);
}

function renderImage(att, ctx) {
  const btn = el("button", "att-img is-loading");
  btn.type = "button";
  btn.setAttribute("aria-label", `${ctx.t("openImage")}: ${att.name}`);
  btn.dataset.attId = att.id;
  const w = Number(att.width) || 0;
  const h = Number(att.height) || 0;
  if (w > 0 && h > 0) {
    // Reserve the right shape before the bytes arrive, so nothing jumps.
    const ratio = Math.min(Math.max(w / h, 0.5), 2.4);
    btn.style.aspectRatio = String(ratio);
    if (w < 240) btn.style.width = `${Math.max(w, 80)}px`;
  }
  const img = el("img", "att-img__img");
  img.alt = att.name || "";
  img.decoding = "async";
  btn.append(img);
  fetchFile(att.id, ctx.token())
    .then(({ url }) => {
      img.addEventListener("load", () => btn.classList.remove("is-loading"), { once: true });
      img.src = url;
    })
    .catch(() => {
      btn.classList.remove("is-loading");
      btn.classList.add("is-broken");
      btn.append(el("span", "att-img__broken", ctx.t("fileUnavailable")));
    });
  btn.addEventListener("click", () => {
    fetchFile(att.id, ctx.token())
      .then(({ url }) => ctx.openImage(att, url))
      .catch(() => {});
  });
  return btn;
}

function renderFileCard(att, ctx) {
  const card = el("div", "att-file");
  card.dataset.attId = att.id;
  const badge = el("span", "att-file__icon");
  badge.append(svgIcon(ICONS.file, 22));
  badge.append(el("span", "att-file__ext", extOf(att.name, att.mime).slice(0, 4)));
  badge.setAttribute("aria-hidden", "true");
  const info = el("span", "att-file__info");
  const name = el("span", "att-file__name", att.name || ctx.t("file"));
  name.title = att.name || "";
  info.append(name, el("span", "att-file__size", formatSize(att.size, ctx.locale)));
  const btn = el("button", "att-file__dl");
  btn.type = "button";
  btn.setAttribute("aria-label", `${ctx.t("download")}: ${att.name}`);
  btn.title = ctx.t("download");
  btn.append(svgIcon(ICONS.download, 20));
  btn.addEventListener("click", () => {
    btn.classList.add("is-busy");
    download(att, ctx.token())
      .catch(() => ctx.notify?.(ctx.t("fileUnavailable")))
      .finally(() => btn.classList.remove("is-busy"));
  });
  card.append(badge, info, btn);
  return card;
}

// A waveform-like bar track: deterministic heights from the id (no decoding needed).
function bars(seed, count) {
  let x = 2166136261;
  for (const ch of String(seed)) x = Math.imul(x ^ ch.charCodeAt(0), 16777619);
  const out = [];
  for (let i = 0; i < count; i++) {
    x = Math.imul(x ^ (x >>> 13), 1274126177) >>> 0;
    const base = 0.3 + 0.7 * Math.abs(Math.sin(i / 2.2 + (x % 7)));
    out.push(Math.min(1, Math.max(0.18, base * (0.55 + (x % 100) / 220))));
  }
  return out;
}

// A voice/audio player: play/pause, a seekable waveform, the time. A real <audio> underneath.
export function audioPlayer(ctx, { seed, load, durationHint = 0, playLabel = "play" }) {
  const box = el("div", "voice");
  const btn = el("button", "voice__play");
  btn.type = "button";
  btn.setAttribute("aria-label", ctx.t(playLabel));
  btn.append(svgIcon(ICONS.play, 18, "i-play"), svgIcon(ICONS.pause, 18, "i-pause"));
  const wave = el("div", "voice__wave");
  wave.setAttribute("role", "slider");
  wave.setAttribute("aria-label", ctx.t("voiceProgress"));
  wave.setAttribute("aria-valuemin", "0");
  wave.setAttribute("aria-valuemax", "100");
  wave.setAttribute("aria-valuenow", "0");
  wave.tabIndex = 0;
  const heights = bars(seed, 30);
  const spans = heights.map((v) => {
    const s = el("span");
    s.style.height = `${Math.round(v * 100)}%`;
    wave.append(s);
    return s;
  });
  const time = el("span", "voice__time", formatDuration(durationHint));
  const audio = document.createElement("audio");
  audio.preload = "metadata";
  audio.className = "voice__audio";
  box.append(btn, wave, time, audio);

  let duration = durationHint;
  let fixing = false;
  function render() {
    const d = duration > 0 ? duration : 0;
    const p = d ? Math.min(1, audio.currentTime / d) : 0;
    const n = Math.round(p * spans.length);
    spans.forEach((s, i) => s.classList.toggle("is-played", i < n));
    wave.setAttribute("aria-valuenow", String(Math.round(p * 100)));
    time.textContent = formatDuration(audio.paused && audio.currentTime === 0 ? d : audio.currentTime);
    box.classList.toggle("is-playing", !audio.paused);
    btn.setAttribute("aria-label", ctx.t(audio.paused ? playLabel : "pause"));
  }
  audio.addEventListener("loadedmetadata", () => {
    if (Number.isFinite(audio.duration)) {
      duration = audio.duration;
      render();
      return;
    }
    // MediaRecorder's WebM has no duration in its header: seek far to make the browser find it.
    fixing = true;
    audio.currentTime = 1e101;
  });
  audio.addEventListener("durationchange", () => {
    if (Number.isFinite(audio.duration) && audio.duration > 0) {
      duration = audio.duration;
      if (fixing) {
        fixing = false;
        audio.currentTime = 0;
      }
      render();
    }
  });
  audio.addEventListener("timeupdate", () => {
    if (!fixing) render();
  });
  audio.addEventListener("play", render);
  audio.addEventListener("pause", render);
  audio.addEventListener("ended", () => {
    audio.currentTime = 0;
    render();
  });

  let loading = null;
  function ensure() {
    if (!loading) {
      box.classList.add("is-loading");
      loading = Promise.resolve(load())
        .then((url) => {
          audio.src = url;
          box.classList.remove("is-loading");
        })
        .catch((err) => {
          loading = null;
          box.classList.remove("is-loading");
          box.classList.add("is-broken");
          throw err;
        });
    }
    return loading;
  }
  btn.addEventListener("click", () => {
    ensure()
      .then(() => {
        if (audio.paused) {
          for (const other of document.querySelectorAll("audio")) if (other !== audio) other.pause();
          return audio.play();
        }
        audio.pause();
        return undefined;
      })
      .catch(() => {});
  });
  function seekTo(p) {
    ensure()
      .then(() => {
        if (duration > 0) audio.currentTime = Math.max(0, Math.min(1, p)) * duration;
        render();
      })
      .catch(() => {});
  }
  wave.addEventListener("click", (ev) => {
    const r = wave.getBoundingClientRect();
    if (r.width > 0) seekTo((ev.clientX - r.left) / r.width);
  });
  wave.addEventListener("keydown", (ev) => {
    if (!(duration > 0)) return;
    const step = ev.key === "ArrowRight" ? 5 : ev.key === "ArrowLeft" ? -5 : 0;
    if (!step) return;
    ev.preventDefault();
    seekTo((audio.currentTime + step) / duration);
  });
  // Voice messages are small: load now so the length shows at once.
  ensure().catch(() => {});
  render();
  return { box, audio, stop: () => audio.pause() };
}

function renderAudio(att, ctx) {
  const player = audioPlayer(ctx, {
    seed: att.id,
    load: () => fetchFile(att.id, ctx.token()).then(({ url }) => url),
  });
  player.box.dataset.attId = att.id;
  return player.box;
}

// ---------------------------------------------------------------------------------------------
// Lightbox: a full-panel view of an image, with download and close.

export function createLightbox(ctx) {
  const root = el("div", "lightbox");
  root.hidden = true;
  root.setAttribute("role", "dialog");
  root.setAttribute("aria-modal", "true");
  root.setAttribute("aria-label", ctx.t("imageViewer"));
  const bar = el("div", "lightbox__bar");
  const name = el("span", "lightbox__name");
  const dl = el("button", "lightbox__btn");
  dl.type = "button";
  dl.setAttribute("aria-label", ctx.t("download"));
  dl.title = ctx.t("download");
  dl.append(svgIcon(ICONS.download, 20));
  const close = el("button", "lightbox__btn");
  close.type = "button";
  close.setAttribute("aria-label", ctx.t("closeImage"));
  close.title = ctx.t("closeImage");
  close.append(svgIcon(ICONS.close, 20));
  bar.append(name, dl, close);
  const stage = el("div", "lightbox__stage");
  const img = el("img", "lightbox__img");
  img.alt = "";
  stage.append(img);
  root.append(bar, stage);

  let current = null;
  let returnFocus = null;
  function open(att, url) {
    current = att;
    name.textContent = att.name || "";
    img.alt = att.name || "";
    img.src = url;
    returnFocus = document.activeElement;
    root.hidden = false;
    close.focus();
  }
  function hide() {
    if (root.hidden) return false;
    root.hidden = true;
    img.removeAttribute("src");
    current = null;
    returnFocus?.focus?.();
    return true;
  }
  close.addEventListener("click", hide);
  stage.addEventListener("click", (ev) => {
    if (ev.target === stage) hide();
  });
  dl.addEventListener("click", () => {
    if (current) download(current, ctx.token()).catch(() => {});
  });
  return { root, open, hide, isOpen: () => !root.hidden };
}
