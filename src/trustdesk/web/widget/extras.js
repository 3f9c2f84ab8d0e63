// Beyond the chat itself: "nobody is there" (away message + email), rating a closed ticket,
// "My conversations" (several tickets), and emailing the transcript.
// User text only ever goes in as text.

import { h as el, svgIcon } from "../shared/dom.js";
import { readJson } from "../shared/format.js";

const EMAIL_RE = /^[^@\s<>]{1,64}@[^@\s<>]{1,190}\.[^@\s<>]{1,60}$/;
const STAR =
  "M12 2.5a1 1 0 0 1 .9.56l2.5 5.07 5.6.82a1 1 0 0 1 .55 1.7l-4.05 3.95.96 5.57a1 1 0 0 1-1.45 1.06L12 18.6l-5.01 2.63a1 1 0 0 1-1.45-1.06l.96-5.57-4.05-3.95a1 1 0 0 1 .55-1.7l5.6-.82 2.5-5.07A1 1 0 0 1 12 2.5Z";
const PLUS = "M12 4a1 1 0 0 1 1 1v6h6a1 1 0 1 1 0 2h-6v6a1 1 0 1 1-2 0v-6H5a1 1 0 1 1 0-2h6V5a1 1 0 0 1 1-1Z";
const CHEVRON = "M9.3 5.3a1 1 0 0 1 1.4 0l6 6a1 1 0 0 1 0 1.4l-6 6a1 1 0 1 1-1.4-1.4L14.58 12 9.3 6.7a1 1 0 0 1 0-1.4Z";

async function errorCode(res) {
  try {
    return String((await res.json())?.error?.code || "");
  } catch {
    return "";
  }
}

// ctx: { t, locale, api, storage, current(): {ticketId, status}, switchTicket(id),
//        newConversation(), withScroll(fn), localize(text), summary(message), contactEmail() }
export function createExtras(ctx) {
  const { t } = ctx;
  const $ = (id) => document.getElementById(id);
  const X = {
    awayMessage: null,
    emailEnabled: false,
    contact: ctx.storage.get("trustdesk.contact") || "",
    rated: readJson(ctx.storage, "trustdesk.rated", {}),
    checkedRating: new Set(),
  };

  // ------------------------------------------------------------------------------ away + email

  const away = $("away");
  const awayText = $("away-text");
  const contactForm = $("contact-form");
  const contactEmail = $("contact-email");
  const contactError = $("contact-error");
  const contactDone = $("contact-done");
  const contactDoneText = $("contact-done-text");

  function setContact(email) {
    X.contact = email;
    ctx.storage.set("trustdesk.contact", email);
    renderAway();
  }

  function renderAway() {
    // A closed ticket says "write if you need anything" already (and asks for a rating).
    const show = Boolean(X.awayMessage) && ctx.current().status !== "closed";
    ctx.withScroll(() => {
      away.hidden = !show;
      if (!show) return;
      awayText.textContent = ctx.localize(X.awayMessage);
      const known = X.contact || ctx.contactEmail();
      const editing = contactForm.dataset.editing === "1";
      contactForm.hidden = Boolean(known) && !editing;
      contactDone.hidden = !known || editing;
      if (known) contactDoneText.textContent = t("emailSaved", { email: known });
    });
    renderTranscriptButton();
  }

  contactForm.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const email = contactEmail.value.trim();
    contactError.hidden = true;
    if (!EMAIL_RE.test(email)) {
      contactError.textContent = t("invalidEmail");
      contactError.hidden = false;
      contactEmail.focus();
      return;
    }
    const btn = contactForm.querySelector("button[type=submit]");
    btn.disabled = true;
    try {
      await ctx.ensureSession();
      const res = await ctx.api("/api/support/contact", { method: "POST", body: { email } });
      if (!res.ok) {
        const code = await errorCode(res);
        contactError.textContent = t(code === "invalid_email" || res.status === 422 ? "invalidEmail" : "errGeneric");
        contactError.hidden = false;
        return;
      }
      contactForm.dataset.editing = "";
      setContact(email);
      $("contact-change")?.focus();
    } catch {
      contactError.textContent = t("errNetworkShort");
      contactError.hidden = false;
    } finally {
      btn.disabled = false;
    }
  });

  $("contact-change").addEventListener("click", () => {
    contactForm.dataset.editing = "1";
    contactEmail.value = X.contact || ctx.contactEmail() || "";
    renderAway();
    contactEmail.focus();
  });

  let statusSeq = 0;
  async function refreshStatus() {
    const seq = ++statusSeq;
    try {
      const res = await fetch("/api/support/status", { cache: "no-store", credentials: "omit" });
      if (!res.ok || seq !== statusSeq) return null;
      const data = await res.json();
      X.awayMessage = typeof data.away_message === "string" && data.away_message.trim() ? data.away_message : null;
      X.emailEnabled = data.email_enabled === true;
      renderAway();
      return data;
    } catch {
      return null;
    }
  }

  // ------------------------------------------------------------------------------ rating

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
    X.rated[ticketId] = value;
    const keep = Object.entries(X.rated).slice(-50); // bounded
    X.rated = Object.fromEntries(keep);
    ctx.storage.set("trustdesk.rated", JSON.stringify(X.rated));
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
  async function syncRating() {
    const { ticketId, status } = ctx.current();
    renderAway(); // the away card steps aside while the ticket is closed
    if (!ticketId || status !== "closed") {
      if (rateTicket && (rateTicket !== ticketId || status === "open")) hideRating();
      return;
    }
    if (rateTicket === ticketId && !rate.hidden) return; // already asking (or thanked)
    if (X.rated[ticketId]) return; // don't ask again for that ticket
    if (!X.checkedRating.has(ticketId)) {
      // Rated from another device or tab? The list knows.
      X.checkedRating.add(ticketId);
      try {
        const res = await ctx.api("/api/support/tickets");
        if (res.ok) {
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

  // ------------------------------------------------------------------------------ tickets view

  const app = $("app");
  const view = $("tickets-view");
  const list = $("tickets-list");
  const listState = $("tickets-state");
  const ticketsBtn = $("tickets-btn");
  let returnFocus = null;

  function timeLabel(iso) {
    const d = new Date(iso);
    if (Number.isNaN(d.getTime())) return "";
    const now = new Date();
    const sameDay = d.toDateString() === now.toDateString();
    const loc = ctx.locale === "en" ? "en-GB" : "ru-RU";
    if (sameDay) return d.toLocaleTimeString(loc, { hour: "2-digit", minute: "2-digit" });
    return d.toLocaleDateString(loc, { day: "numeric", month: "short" });
  }

  function renderTickets(tickets) {
    list.replaceChildren();
    const current = ctx.current().ticketId;
    listState.hidden = tickets.length > 0;
    if (!tickets.length) listState.textContent = t("noTickets");
    for (const tk of tickets) {
      const li = el("li");
      const b = el("button", `tk tk--${tk.status === "open" ? "open" : "closed"}`);
      b.type = "button";
      b.dataset.ticket = tk.ticketId;
      if (tk.ticketId === current) {
        b.setAttribute("aria-current", "true");
        b.classList.add("is-current");
      }
      const top = el("span", "tk__top");
      const chip = el("span", "tk__status", t(tk.status === "open" ? "statusOpen" : "statusClosed"));
      top.append(chip);
      if (tk.ticketId === current) top.append(el("span", "tk__current", t("currentTicket")));
      if (tk.rating) {
        const r = el("span", "tk__rating", `★ ${tk.rating}`);
        r.setAttribute("aria-label", t("rateN", { n: tk.rating }));
        top.append(r);
      }
      top.append(el("span", "tk__time", timeLabel(tk.last_message?.created_at || tk.updated_at)));
      const last = tk.last_message;
      let text = t("noMessages");
      let who = "";
      if (last) {
        text = ctx.summary(last);
        if (last.sender_type === "customer") who = `${t("you")}: `;
        else if (last.sender_type === "admin" && last.sender_name) who = `${last.sender_name}: `;
      }
      const line = el("span", "tk__last");
      if (who) line.append(el("span", "tk__who", who));
      line.append(document.createTextNode(text));
      const num = el("span", "tk__num", tk.ticketId);
      const body = el("span", "tk__body");
      body.append(top, line, num);
      const chev = svgIcon(CHEVRON, 18, "tk__chev");
      b.append(body, chev);
      b.addEventListener("click", () => {
        closeTickets();
        if (tk.ticketId !== ctx.current().ticketId) ctx.switchTicket(tk.ticketId);
      });
      li.append(b);
      list.append(li);
    }
  }

  async function loadTickets() {
    listState.hidden = false;
    listState.textContent = t("loading");
    try {
      await ctx.ensureSession();
      const res = await ctx.api("/api/support/tickets");
      if (!res.ok) throw new Error(`tickets ${res.status}`);
      const data = await res.json();
      if (!view.hidden) renderTickets(Array.isArray(data.tickets) ? data.tickets : []);
      return data.tickets || [];
    } catch {
      listState.textContent = t("ticketsError");
      listState.hidden = false;
      return [];
    }
  }

  function openTickets() {
    returnFocus = document.activeElement;
    view.hidden = false;
    app.classList.add("show-tickets");
    ticketsBtn.setAttribute("aria-expanded", "true");
    ticketsBtn.classList.add("is-active");
    $("new-ticket").focus();
    loadTickets();
  }

  function closeTickets() {
    if (view.hidden) return false;
    view.hidden = true;
    app.classList.remove("show-tickets");
    ticketsBtn.setAttribute("aria-expanded", "false");
    ticketsBtn.classList.remove("is-active");
    if (returnFocus && document.contains(returnFocus)) returnFocus.focus({ preventScroll: true });
    return true;
  }

  ticketsBtn.addEventListener("click", () => {
    if (view.hidden) openTickets();
    else closeTickets();
  });
  $("tickets-back").addEventListener("click", () => {
    closeTickets();
    document.getElementById("input")?.focus();
  });
  const newBtn = $("new-ticket");
  newBtn.prepend(svgIcon(PLUS, 18));
  newBtn.addEventListener("click", () => {
    closeTickets();
    ctx.newConversation();
  });

  // ------------------------------------------------------------------------------ transcript

  const tBtn = $("transcript-btn");
  const sheet = $("sheet");
  const tForm = $("transcript-form");
  const tEmail = $("transcript-email");
  const tStatus = $("transcript-status");

  function renderTranscriptButton() {
    tBtn.hidden = !(X.emailEnabled && ctx.current().ticketId);
    if (tBtn.hidden && !sheet.hidden) closeSheet();
  }

  function openSheet() {
    sheet.hidden = false;
    tStatus.hidden = true;
    tStatus.dataset.kind = "";
    tForm.hidden = false;
    tEmail.value = X.contact || ctx.contactEmail() || "";
    tEmail.focus();
  }

  function closeSheet() {
    if (sheet.hidden) return false;
    sheet.hidden = true;
    tBtn.focus({ preventScroll: true });
    return true;
  }

  tBtn.addEventListener("click", () => (sheet.hidden ? openSheet() : closeSheet()));
  $("transcript-cancel").addEventListener("click", closeSheet);
  tForm.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const email = tEmail.value.trim();
    const say = (text, kind) => {
      tStatus.textContent = text;
      tStatus.dataset.kind = kind;
      tStatus.hidden = false;
    };
    if (email && !EMAIL_RE.test(email)) {
      say(t("invalidEmail"), "error");
      tEmail.focus();
      return;
    }
    const { ticketId } = ctx.current();
    if (!ticketId) return;
    const btn = tForm.querySelector("button[type=submit]");
    btn.disabled = true;
    try {
      const res = await ctx.api("/api/support/transcript", {
        method: "POST",
        body: email ? { ticketId, email } : { ticketId },
      });
      if (res.ok) {
        const data = await res.json();
        if (email) setContact(email);
        tForm.hidden = true;
        say(t("transcriptSent", { email: data.sent_to || email }), "ok");
        setTimeout(() => {
          if (tForm.hidden) closeSheet();
        }, 4000);
        return;
      }
      const code = await errorCode(res);
      if (res.status === 429) say(t("transcriptWait"), "error");
      else if (code === "email_required" || code === "invalid_email") say(t("invalidEmail"), "error");
      else say(t("errGeneric"), "error");
    } catch {
      say(t("errNetworkShort"), "error");
    } finally {
      btn.disabled = false;
    }
  });

  // Escape closes the innermost extra view first.
  function escape() {
    return closeSheet() || closeTickets();
  }

  return {
    refreshStatus,
    renderAway,
    syncRating,
    renderTranscriptButton,
    loadTickets,
    openTickets,
    closeTickets,
    escape,
    isAway: () => Boolean(X.awayMessage),
    contact: () => X.contact,
  };
}
