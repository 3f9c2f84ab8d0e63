// Voice messages: record with MediaRecorder (Opus in WebM or Ogg), a timer and a live level
// meter, cancel, listen before sending, at most 5 minutes (then it stops by itself).

import { h as el, pickVoiceMime, svgIcon } from "../shared/dom.js";
import { formatDuration } from "../shared/format.js";
import { audioPlayer, ICONS } from "./files.js";

export const MAX_VOICE_SECONDS = 5 * 60;
const BARS = 32;

export { pickVoiceMime };

function iconButton(className, label, icon, size = 20) {
  const b = el("button", className);
  b.type = "button";
  b.setAttribute("aria-label", label);
  b.title = label;
  b.append(svgIcon(icon, size));
  return b;
}

const STOP = "M7 5h10a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H7a2 2 0 0 1-2-2V7a2 2 0 0 1 2-2Z";
const TRASH =
  "M9 3a1 1 0 0 0-1 1v1H5a1 1 0 0 0 0 2h.09l.82 12.3A3 3 0 0 0 8.9 22h6.2a3 3 0 0 0 2.99-2.7L18.91 7H19a1 1 0 1 0 0-2h-3V4a1 1 0 0 0-1-1H9Zm1 6a1 1 0 0 1 1 1v7a1 1 0 1 1-2 0v-7a1 1 0 0 1 1-1Zm4 0a1 1 0 0 1 1 1v7a1 1 0 1 1-2 0v-7a1 1 0 0 1 1-1Z";
const SEND =
  "M3.4 20.4 20.85 12.92a1 1 0 0 0 0-1.84L3.4 3.6a.99.99 0 0 0-1.39.91L2 9.12c0 .5.37.93.87.99L17 12 2.87 13.88c-.5.07-.87.5-.87 1l.01 4.61c0 .71.73 1.2 1.39.91Z";

// ctx: { t, locale, root: container element, onOpen(), onClose(), send(blob, mime, seconds),
//        error(text) }
export function createRecorder(ctx) {
  const mime = pickVoiceMime();
  const root = ctx.root;
  let state = "idle"; // idle | starting | recording | preview
  let stream = null;
  let recorder = null;
  let chunks = [];
  let startedAt = 0;
  let seconds = 0;
  let tick = 0;
  let raf = 0;
  let audioCtx = null;
  let analyser = null;
  let blob = null;
  let player = null;
  let discard = false;
  const levels = new Array(BARS).fill(0.12);

  function clear() {
    root.replaceChildren();
  }

  function showRecording() {
    clear();
    root.dataset.state = "recording";
    const cancel = iconButton("rec__btn rec__cancel", ctx.t("cancelRecording"), ICONS.close);
    cancel.addEventListener("click", () => cancelRecording());
    const dot = el("span", "rec__dot");
    dot.setAttribute("aria-hidden", "true");
    const timer = el("span", "rec__time", "0:00");
    timer.setAttribute("role", "timer");
    timer.id = "rec-time";
    const label = el("span", "sr-only", ctx.t("recording"));
    const meter = el("div", "rec__meter");
    meter.setAttribute("aria-hidden", "true");
    const bars = levels.map(() => {
      const s = el("span");
      meter.append(s);
      return s;
    });
    const limit = el("span", "rec__limit", formatDuration(MAX_VOICE_SECONDS));
    limit.setAttribute("aria-hidden", "true");
    const stop = iconButton("rec__stop", ctx.t("stopRecording"), STOP, 18);
    stop.addEventListener("click", () => stopRecording());
    root.append(cancel, dot, label, timer, meter, limit, stop);
    stop.focus();

    tick = setInterval(() => {
      seconds = (Date.now() - startedAt) / 1000;
      timer.textContent = formatDuration(seconds);
      if (seconds >= MAX_VOICE_SECONDS) stopRecording();
    }, 200);

    let sampledAt = 0;
    const draw = (now) => {
      // A new bar about 12 times a second: the bars scroll to the left.
      if (analyser && now - sampledAt > 80) {
        sampledAt = now;
        const data = new Uint8Array(analyser.fftSize);
        analyser.getByteTimeDomainData(data);
        let peak = 0;
        for (const v of data) peak = Math.max(peak, Math.abs(v - 128) / 128);
        levels.shift();
        levels.push(Math.min(1, 0.12 + Math.sqrt(peak) * 0.95));
      }
      bars.forEach((s, i) => {
        s.style.height = `${Math.round(levels[i] * 100)}%`;
      });
      raf = requestAnimationFrame(draw);
    };
    raf = requestAnimationFrame(draw);
  }

  function showPreview() {
    clear();
    root.dataset.state = "preview";
    const del = iconButton("rec__btn rec__delete", ctx.t("deleteRecording"), TRASH);
    del.addEventListener("click", () => finish());
    const url = URL.createObjectURL(blob);
    player = audioPlayer(ctx, {
      seed: String(blob.size),
      load: () => url,
      durationHint: seconds,
      playLabel: "listen",
    });
    player.box.classList.add("voice--preview");
    const send = iconButton("send-btn rec__send", ctx.t("sendVoice"), SEND);
    send.addEventListener("click", () => {
      const out = blob;
      const secs = seconds;
      finish();
      ctx.send(out, mime, secs);
    });
    root.append(del, player.box, send);
    send.focus();
  }

  async function start() {
    if (state !== "idle") return;
    if (!mime) {
      ctx.error(ctx.t("errMicUnsupported"));
      return;
    }
    state = "starting";
    try {
      stream = await navigator.mediaDevices.getUserMedia({
        audio: { echoCancellation: true, noiseSuppression: true },
      });
    } catch {
      state = "idle";
      ctx.error(ctx.t("errMic"));
      return;
    }
    try {
      recorder = new MediaRecorder(stream, { mimeType: mime, audioBitsPerSecond: 32000 });
    } catch {
      release();
      state = "idle";
      ctx.error(ctx.t("errMicUnsupported"));
      return;
    }
    chunks = [];
    discard = false;
    recorder.addEventListener("dataavailable", (ev) => {
      if (ev.data && ev.data.size) chunks.push(ev.data);
    });
    recorder.addEventListener("stop", () => {
      const parts = chunks;
      chunks = [];
      release();
      if (discard || !parts.length) {
        finish();
        return;
      }
      blob = new Blob(parts, { type: mime.split(";")[0] });
      state = "preview";
      showPreview();
    });
    try {
      const AC = window.AudioContext || window.webkitAudioContext;
      if (AC) {
        audioCtx = new AC();
        analyser = audioCtx.createAnalyser();
        analyser.fftSize = 2048;
        audioCtx.createMediaStreamSource(stream).connect(analyser);
      }
    } catch {
      analyser = null; // the meter is cosmetic
    }
    startedAt = Date.now();
    seconds = 0;
    levels.fill(0.12);
    recorder.start(250);
    state = "recording";
    ctx.onOpen();
    showRecording();
  }

  function stopTimers() {
    clearInterval(tick);
    cancelAnimationFrame(raf);
  }

  function release() {
    stopTimers();
    for (const track of stream?.getTracks() || []) track.stop();
    stream = null;
    analyser = null;
    audioCtx?.close().catch(() => {});
    audioCtx = null;
  }

  function stopRecording() {
    if (state !== "recording") return;
    seconds = Math.min(MAX_VOICE_SECONDS, (Date.now() - startedAt) / 1000);
    stopTimers();
    try {
      recorder.stop();
    } catch {
      finish();
    }
  }

  function cancelRecording() {
    if (state !== "recording") return;
    discard = true;
    stopRecording();
  }

  function finish() {
    player?.stop();
    player = null;
    blob = null;
    recorder = null;
    release();
    clear();
    root.dataset.state = "idle";
    const was = state;
    state = "idle";
    if (was !== "idle") ctx.onClose();
  }

  // Escape: cancel a recording, or drop the one waiting to be sent.
  function escape() {
    if (state === "recording") {
      cancelRecording();
      return true;
    }
    if (state === "preview") {
      finish();
      return true;
    }
    return false;
  }

  return {
    supported: Boolean(mime),
    start,
    escape,
    active: () => state !== "idle",
  };
}
