// Unread and seen: the red dot on the launcher counts operator replies that arrived while
// the panel was hidden; one chime per operator message, ever (not again on reload or on
// another page of the shop), muted with the bell; read receipts to the server when the
// customer sees them.

import { KEYS } from "./core.js";

/**
 * What one arriving message does to the counters.
 * @returns {{unread: number, notify: boolean}} the new unread count; whether to chime
 */
export function unreadAfter(m, { unread, seenId, notifiedId }, visible) {
  const fromOperator = m.sender_type === "admin" && m.id > seenId; // notices and the bot do not count
  return {
    unread: fromOperator && !visible ? unread + 1 : unread,
    notify: fromOperator && m.id > notifiedId,
  };
}

/** After the customer saw up to lastId: the seen id to keep, and whether to tell the server. */
export function seenAfter({ lastId, seenId, sentReadId, ticketId }) {
  return { seenId: Math.max(seenId, lastId), sendRead: Boolean(ticketId) && lastId > sentReadId };
}

// Sound: a short two-tone chime made with Web Audio, after a user gesture (autoplay
// rules), and the mute button (remembered in storage).
function installSound(app) {
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

export function install(app) {
  installSound(app);
  const { S, act, store, storage } = app;
  let sentReadId = 0; // the highest last_read_id the server has been told (this connection)

  store.subscribe(["unread"], () => act.reportUnread());

  function countUnread(m) {
    const next = unreadAfter(m, S, app.isVisible());
    store.set({ unread: next.unread });
    if (next.notify) {
      S.notifiedId = m.id;
      storage.set(KEYS.notified, JSON.stringify({ ticketId: S.ticketId, id: m.id }));
      act.chime();
    }
  }

  function markSeen() {
    if (!app.isVisible()) return;
    const next = seenAfter({ ...S, sentReadId });
    if (next.seenId > S.seenId) {
      S.seenId = next.seenId;
      storage.set(KEYS.seen, JSON.stringify({ ticketId: S.ticketId, id: S.seenId }));
    }
    store.set({ unread: 0 });
    if (!next.sendRead) return;
    if (act.wsSend({ type: "read", last_read_id: S.lastId })) {
      sentReadId = S.lastId;
    } else if (S.mode === "polling") {
      sentReadId = S.lastId;
      act
        .api("/api/support/read", {
          method: "POST",
          body: { ticketId: S.ticketId, last_read_id: S.lastId },
        })
        .catch(() => {
          sentReadId = 0;
        });
    }
  }

  Object.assign(act, {
    countUnread,
    markSeen,
    resetSentRead: () => {
      sentReadId = 0;
    },
    reportUnread: () => app.postParent({ type: "unread", count: S.unread }),
  });

  document.addEventListener("visibilitychange", () => {
    if (app.isVisible()) markSeen();
  });
}
