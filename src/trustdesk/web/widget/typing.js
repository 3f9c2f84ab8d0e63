// Typing, both ways: "the operator is typing…" under the log (until their message, their
// stop, or the TTL the server gave), and our own typing signal (at most every 3 s, stopped
// after 4 s without a key).

export const TYPING_TTL_MS = 6000;
export const TYPING_MAX_MS = 30000;
export const RESEND_MS = 3000;
export const IDLE_MS = 4000;

/** How long an operator's typing indicator stays without news, from the frame's ttl (s). */
export function typingTtlMs(ttlSeconds) {
  const ttl = Number(ttlSeconds);
  return ttl > 0 ? Math.min(ttl * 1000, TYPING_MAX_MS) : TYPING_TTL_MS;
}

/** Whether a typing frame of ours concerns the open conversation and comes from an operator. */
export function isOperatorTyping(frame, ticketId) {
  return frame.sender_type === "admin" && (!frame.ticketId || frame.ticketId === ticketId);
}

/** Whether our "typing: true" must be (re)sent now. */
export function shouldSignal({ active, sentAt }, now) {
  return !active || now - sentAt > RESEND_MS;
}

export function install(app) {
  const { S, els, act, frames, t } = app;
  let hideTimer = 0;

  function showTyping(name, ttlSeconds) {
    els.typingText.textContent = name ? t("operatorTyping", { name }) : t("typing");
    act.withScroll(
      () => {
        els.typing.hidden = false;
      },
      { quiet: true },
    );
    clearTimeout(hideTimer);
    hideTimer = setTimeout(hideTyping, typingTtlMs(ttlSeconds));
  }

  function hideTyping() {
    clearTimeout(hideTimer);
    els.typing.hidden = true;
  }

  frames.on("typing", (f) => {
    if (!isOperatorTyping(f, S.ticketId)) return;
    if (f.active) showTyping(f.name, f.ttl);
    else hideTyping();
  });

  const mine = { active: false, sentAt: 0 };
  let idleTimer = 0;

  function signalTyping() {
    if (!S.ticketId) return;
    const now = Date.now();
    if (shouldSignal(mine, now) && act.wsSend({ type: "typing", active: true })) {
      mine.active = true;
      mine.sentAt = now;
    }
    clearTimeout(idleTimer);
    idleTimer = setTimeout(stopTyping, IDLE_MS);
  }

  function stopTyping() {
    clearTimeout(idleTimer);
    if (mine.active) act.wsSend({ type: "typing", active: false });
    mine.active = false;
  }

  Object.assign(act, { showTyping, hideTyping, signalTyping, stopTyping });
}
