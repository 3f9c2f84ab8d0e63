// Sound: a short two-tone chime made with Web Audio, after a user gesture (autoplay rules),
// and the mute button (remembered in storage).

import { KEYS } from "./core.js";

export function install(app) {
  const { S, els, act, store, storage, t } = app;
  let audio = null;
  let lastChime = 0;

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

  store.subscribe(["muted"], () => {
    storage.set(KEYS.muted, S.muted ? "1" : "0");
    renderMute();
  });
  els.mute.addEventListener("click", () => store.set({ muted: !S.muted }));
  renderMute();

  Object.assign(act, { chime });
}
