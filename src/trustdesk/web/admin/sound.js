// A short, soft two-note chime made with Web Audio (no audio file needed).
// Muting is remembered in localStorage.

const MUTE_KEY = "trustdesk.admin.muted";
let ctx = null;
let lastPlayed = 0;

export function isMuted() {
  try {
    return localStorage.getItem(MUTE_KEY) === "1";
  } catch {
    return false;
  }
}

export function setMuted(muted) {
  try {
    localStorage.setItem(MUTE_KEY, muted ? "1" : "0");
  } catch {
    /* ignore */
  }
}

function audio() {
  const AC = window.AudioContext || window.webkitAudioContext;
  if (!AC) return null;
  if (!ctx) ctx = new AC();
  return ctx;
}

/** Browsers only allow audio after a user gesture: unlock on the first click / key. */
export function unlockAudio() {
  const unlock = () => {
    const c = audio();
    if (c && c.state === "suspended") c.resume().catch(() => {});
  };
  window.addEventListener("pointerdown", unlock, { once: true, capture: true });
  window.addEventListener("keydown", unlock, { once: true, capture: true });
}

/** Play the chime unless muted; returns true when a sound was started. */
export function chime() {
  if (isMuted()) return false;
  const now = Date.now();
  if (now - lastPlayed < 800) return false; // a burst of messages rings once
  lastPlayed = now;
  const c = audio();
  if (!c) return false;
  if (c.state === "suspended") c.resume().catch(() => {});
  const t0 = c.currentTime + 0.01;
  const notes = [
    [880, 0],
    [1318.5, 0.12],
  ];
  for (const [freq, offset] of notes) {
    const osc = c.createOscillator();
    const gain = c.createGain();
    osc.type = "sine";
    osc.frequency.value = freq;
    gain.gain.setValueAtTime(0.0001, t0 + offset);
    gain.gain.exponentialRampToValueAtTime(0.18, t0 + offset + 0.02);
    gain.gain.exponentialRampToValueAtTime(0.0001, t0 + offset + 0.35);
    osc.connect(gain).connect(c.destination);
    osc.start(t0 + offset);
    osc.stop(t0 + offset + 0.4);
  }
  document.documentElement.dataset.lastChime = String(now);
  return true;
}
