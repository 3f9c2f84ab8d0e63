// The "Ждут ответа" view of the ticket list: tickets whose customer waits for an operator's
// answer (waiting_since, actions/escalation.py), longest first, each with "ждёт 7 мин"
// kept current by one timer for the whole page. GET /api/admin/support/tickets?status=waiting.

import { h } from "./dom.js";
import { t } from "./i18n.js";

const TICK_MS = 15_000;
let timer = null;

/** Whole minutes waited at `now` (ms), never negative. */
export function waitedMinutes(since, now = Date.now()) {
  const start = Date.parse(since);
  if (Number.isNaN(start)) return 0;
  return Math.max(0, Math.floor((now - start) / 60_000));
}

/** "ждёт 7 мин" / "waiting 7 min"; under a minute: "ждёт < 1 мин"; hours past 90 min. */
export function waitingLabel(since, now = Date.now(), tr = t) {
  const m = waitedMinutes(since, now);
  if (m < 1) return tr("waiting.lessThanMinute");
  if (m < 90) return tr("waiting.minutes", { n: m });
  return tr("waiting.hours", { h: Math.floor(m / 60), m: m % 60 });
}

/** Is this summary in the waiting view? (open, waiting, not snoozed) */
export function isWaiting(s) {
  return Boolean(s && s.status === "open" && s.waiting_since && !s.snoozed_until);
}

/** Longest wait first; equal starts by ticket number. */
export function byWait(a, b) {
  const d = Date.parse(a.waiting_since) - Date.parse(b.waiting_since);
  return d || String(a.ticketId).localeCompare(String(b.ticketId));
}

/** Overdue: waited at least `minutes` (the escalation setting; 0: never). */
export function overdue(since, minutes, now = Date.now()) {
  return minutes > 0 && waitedMinutes(since, now) >= minutes;
}

/**
 * The row's chip, or null: always in the waiting view, elsewhere only once overdue.
 * `minutes`: the escalation setting N (alerts.js knows it).
 */
export function waitingChip(s, { inView, minutes }) {
  if (!isWaiting(s)) return null;
  const late = overdue(s.waiting_since, minutes);
  if (!inView && !late) return null;
  return h(
    "span",
    { class: `waiting-chip${late ? " late" : ""}`, dataset: { since: s.waiting_since, n: String(minutes) } },
    `⏱ ${waitingLabel(s.waiting_since)}`,
  );
}

/** Keep every chip on the page current (one timer; started once). */
export function startWaitingClock() {
  if (timer) return;
  timer = setInterval(() => {
    for (const el of document.querySelectorAll(".waiting-chip[data-since]")) {
      el.textContent = `⏱ ${waitingLabel(el.dataset.since)}`;
      el.classList.toggle("late", overdue(el.dataset.since, Number(el.dataset.n) || 0));
    }
  }, TICK_MS);
}
