// The composer: Enter sends, Shift+Enter is a new line, the button is disabled while empty
// or too long; the emoji panel; help-center suggestions for a first question (kb.js, on
// demand); files chosen, pasted or dropped and the voice recorder hand over to uploads.js
// and voice.js, loaded the first time they are needed.

import { h, loadStyle, pickVoiceMime } from "../shared/dom.js";
import { LIMITS } from "./core.js";

/** Whether the composer's text can be sent. */
export function canSend(text, max = LIMITS.MAX_CHARS) {
  const s = String(text).trim();
  return s.length > 0 && s.length <= max;
}

export function install(app) {
  const { S, els, act, locale } = app;

  function autosize() {
    const input = els.input;
    input.style.height = "auto";
    input.style.height = `${Math.min(input.scrollHeight, 140)}px`;
  }

  function updateSendButton() {
    els.send.disabled = !canSend(els.input.value);
  }

  function kbInput() {
    const text = els.input.value;
    if (S.ticketId || (!app.kb && text.trim().length < 3)) return;
    app.kb ||= import("./kb.js").then((m) =>
      m.createKb({ locale, api: act.api, ensureSession: act.ensureSession, els }),
    );
    app.kb.then((kb) => kb.input(text)).catch(() => 0);
  }

  els.input.addEventListener("input", () => {
    autosize();
    updateSendButton();
    kbInput();
    if (els.input.value.trim()) act.signalTyping();
    else act.stopTyping();
  });

  els.input.addEventListener("keydown", (ev) => {
    if (ev.key === "Enter" && !ev.shiftKey && !ev.isComposing && ev.keyCode !== 229) {
      ev.preventDefault();
      submit();
    }
  });

  els.input.addEventListener("blur", () => act.stopTyping());

  els.form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    submit();
  });

  function submit() {
    const text = els.input.value.trim();
    if (!canSend(text)) return;
    els.input.value = "";
    autosize();
    updateSendButton();
    act.stopTyping();
    toggleEmoji(false);
    app.kb?.then((kb) => kb.sent(text));
    act.queueMessage(text);
    els.input.focus();
  }

  // Emoji panel: its buttons are made when it first opens (emoji.js).
  let emojiMade = null;
  function makeEmoji() {
    emojiMade ||= import("./emoji.js").then(({ EMOJI }) => {
      for (const emoji of EMOJI) {
        const b = h("button", "emoji", emoji);
        b.type = "button";
        b.setAttribute("aria-label", emoji);
        b.addEventListener("click", () => insertAtCursor(emoji));
        els.emojiPanel.append(b);
      }
    });
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
    if (show) makeEmoji();
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

  // Files (uploads.js) and voice (voice.js + uploads.js), on demand.
  let uploads = null;
  function loadUploads() {
    uploads ||= Promise.all([
      import("./uploads.js"),
      loadStyle("./uploads.css", import.meta.url),
    ]).then(([m]) => m.install(app));
    return uploads;
  }
  const uploadFiles = (list, opts) => loadUploads().then((u) => u.uploadFiles(list, opts));

  els.attach.addEventListener("click", () => {
    toggleEmoji(false);
    els.fileInput.click();
  });
  els.fileInput.addEventListener("change", () => {
    const files = [...(els.fileInput.files || [])];
    els.fileInput.value = "";
    uploadFiles(files);
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
  const isFileDrag = (ev) => [...(ev.dataTransfer?.types || [])].includes("Files");

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
    uploadFiles([...(ev.dataTransfer.files || [])]);
  });

  // Voice messages: the recorder is made on the first click of the microphone.
  let recorder = null;
  els.mic.hidden = !pickVoiceMime();
  els.mic.addEventListener("click", async () => {
    recorder ||= Promise.all([
      import("./voice.js"),
      loadUploads(),
      loadStyle("./voice.css", import.meta.url),
      loadStyle("./files.css", import.meta.url), // the player of the preview
    ]).then(([voice, u]) =>
      voice.createRecorder({
        t: app.t,
        locale,
        root: els.recorder,
        onOpen() {
          toggleEmoji(false);
          els.form.hidden = true;
          els.recorder.hidden = false;
          act.stopTyping();
        },
        onClose() {
          els.recorder.hidden = true;
          els.form.hidden = false;
          els.input.focus({ preventScroll: true });
        },
        send: (blob, mime, seconds) => u.sendVoice(blob, mime, seconds),
        error: (text) => act.showToast(text),
      }),
    );
    recorderNow = await recorder;
    recorderNow.start();
  });
  let recorderNow = null;

  Object.assign(act, {
    updateSendButton,
    toggleEmoji,
    escapeRecorder: () => Boolean(recorderNow?.escape()),
    escapeEmoji() {
      if (els.emojiPanel.hidden) return false;
      toggleEmoji(false);
      els.emojiBtn.focus();
      return true;
    },
  });
}
