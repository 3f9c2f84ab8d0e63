// Rating a closed ticket: five stars, then an optional comment; asked once per ticket (on
// this device, or from the list when rated elsewhere). Loaded when a ticket is closed.

import { h as el, svgIcon } from "../shared/dom.js";
import { readJson } from "../shared/format.js";

const STAR =
  "M12 2.5a1 1 0 0 1 .9.56l2.5 5.07 5.6.82a1 1 0 0 1 .55 1.7l-4.05 3.95.96 5.57a1 1 0 0 1-1.45 1.06L12 18.6l-5.01 2.63a1 1 0 0 1-1.45-1.06l.96-5.57-4.05-3.95a1 1 0 0 1 .55-1.7l5.6-.82 2.5-5.07A1 1 0 0 1 12 2.5Z";

// ctx: as away.js's; returns {sync()} (called whenever the ticket or its status changes).
export function createRating(ctx) {
  const { t } = ctx;
  const $ = (id) => document.getElementById(id);
  const S = { rated: readJson(ctx.storage, "trustdesk.rated", {}), checkedRating: new Set() };

  const rate = $("rate");
  const stars = $("stars");
  const rateHint = $("rate-hint");
  const rateForm = $("rate-form");
  const rateComment = $("rate-comment");
  const rateThanks = $("rate-thanks");
  const rateError = $("rate-error");
  const rateTitle = $("rate-title");
  let rateTicket = null;
  let score = 0;
  const starButtons = [];
  for (let n = 1; n <= 5; n++) {
    const b = el("button", "star");
    b.type = "button";
    b.dataset.score = String(n);
    b.setAttribute("aria-label", t("rateN", { n }));
    b.setAttribute("aria-pressed", "false");
    b.append(svgIcon(STAR, 30));
    b.addEventListener("click", () => choose(n));
    b.addEventListener("mouseenter", () => paint(n, true));
    b.addEventListener("mouseleave", () => paint(score, false));
    stars.append(b);
    starButtons.push(b);
  }

  function paint(n, hover) {
    starButtons.forEach((b, i) => {
      b.classList.toggle("is-on", i < n);
      b.setAttribute("aria-pressed", String(!hover && i < score));
    });
    rateHint.textContent = n ? t(`rate${n}`) : t("rateHint");
    rateHint.classList.toggle("is-chosen", n > 0);
  }

  function markRated(ticketId, value) {
    S.rated[ticketId] = value;
    const keep = Object.entries(S.rated).slice(-50); // bounded
    S.rated = Object.fromEntries(keep);
    ctx.storage.set("trustdesk.rated", JSON.stringify(S.rated));
  }

  async function postRating(comment) {
    const res = await ctx.api("/api/support/rate", {
      method: "POST",
      body: { ticketId: rateTicket, score, comment: comment || null },
    });
    if (res.ok) return true;
    if (res.status === 409 || res.status === 404) {
      hideRating(); // reopened meanwhile, or not ours any more
      return false;
    }
    throw new Error(`rate ${res.status}`);
  }

  async function choose(n) {
    if (!rateTicket) return;
    score = n;
    paint(n, false);
    rateError.hidden = true;
    try {
      if (!(await postRating(""))) return;
      markRated(rateTicket, n);
      starButtons.forEach((b) => {
        b.disabled = false;
      });
      ctx.withScroll(() => {
        rate.classList.add("is-rated");
        rateTitle.textContent = t("rateThanks");
        rateForm.hidden = false;
      });
      rateComment.focus({ preventScroll: true });
    } catch {
      rateError.textContent = t("errGeneric");
      rateError.hidden = false;
    }
  }

  rateForm.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const comment = rateComment.value.trim();
    if (!comment || !score) return;
    const btn = rateForm.querySelector("button[type=submit]");
    btn.disabled = true;
    rateError.hidden = true;
    try {
      if (!(await postRating(comment.slice(0, 1000)))) return;
      ctx.withScroll(() => {
        rateForm.hidden = true;
        rateThanks.textContent = t("rateCommentThanks");
        rateThanks.hidden = false;
      });
    } catch {
      rateError.textContent = t("errGeneric");
      rateError.hidden = false;
    } finally {
      btn.disabled = false;
    }
  });

  function showRating(ticketId) {
    if (rateTicket === ticketId && !rate.hidden) return;
    rateTicket = ticketId;
    score = 0;
    paint(0, false);
    rateComment.value = "";
    rateForm.hidden = true;
    rateThanks.hidden = true;
    rateError.hidden = true;
    rate.classList.remove("is-rated");
    rateTitle.textContent = t("rateTitle");
    ctx.withScroll(() => {
      rate.hidden = false;
    });
  }

  function hideRating() {
    rate.hidden = true;
    rateTicket = null;
  }

  // Called whenever the ticket or its status changes.
  // `early`: {ticketId, res}, the list asked for while this module loaded (away.js).
  async function syncRating(early = null) {
    const { ticketId, status } = ctx.current();
    if (!ticketId || status !== "closed") {
      if (rateTicket && (rateTicket !== ticketId || status === "open")) hideRating();
      return;
    }
    if (rateTicket === ticketId && !rate.hidden) return; // already asking (or thanked)
    if (S.rated[ticketId]) return; // don't ask again for that ticket
    if (!S.checkedRating.has(ticketId)) {
      // Rated from another device or tab? The list knows.
      S.checkedRating.add(ticketId);
      try {
        const res = await (early?.ticketId === ticketId ? early.res : ctx.api("/api/support/tickets"));
        if (res?.ok) {
          const mine = ((await res.json()).tickets || []).find((x) => x.ticketId === ticketId);
          if (mine && mine.rating) {
            markRated(ticketId, mine.rating);
            return;
          }
        }
      } catch {
        /* ask anyway */
      }
      const now = ctx.current();
      if (now.ticketId !== ticketId || now.status !== "closed") return;
    }
    showRating(ticketId);
  }

  return { sync: syncRating };
}
