// @ts-check
// What the browser can record a voice message in (MediaRecorder), best first; null if none.

const VOICE_TYPES = ["audio/webm;codecs=opus", "audio/ogg;codecs=opus", "audio/webm", "audio/ogg"];

/** @returns {string | null} */
export function pickVoiceMime() {
  if (typeof MediaRecorder !== "function" || !navigator.mediaDevices?.getUserMedia) return null;
  for (const m of VOICE_TYPES) {
    try {
      if (MediaRecorder.isTypeSupported(m)) return m;
    } catch {
      /* old browsers */
    }
  }
  return null;
}
