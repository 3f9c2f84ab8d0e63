// "Nobody is there": the away message from /api/support/status with a form to leave an
// email, and the entry points of what the first open does not need: rating a closed ticket
// (rating.js), "My conversations" (history.js), emailing the transcript (transcript.js),
// each imported the first time it is needed. User text only ever goes in as text.


import { loadStyle } from "../shared/dom.js";

const EMAIL_RE = /^[^@\s<>]{1,64}@[^@\s<>]{1,190}\.[^@\s<>]{1,60}$/;

async function errorCode(res) {
  try {
    return String((await res.json())?.error?.code || "");
  } catch {
    return "";
  }
}

// ctx: { t, locale, api, fetchStatus({maxAge}), storage, ensureSession,
//        current(): {ticketId, status},
//        switchTicket(id), newConversation(), withScroll(fn), localize(text), summary(m),
//        contactEmail() }
export function createAway(ctx) {
  const { t } = ctx;
  const $ = (id) => document.getElementById(id);
  const X = {
    awayMessage: null,
    emailEnabled: false,
    contact: ctx.storage.get("trustdesk.contact") || "",
  };
  const tBtn = $("transcript-btn");
  const sheet = $("sheet");
  let prefetch = 0; // the timer that loads rating.js ahead (prefetchRating)

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
  async function refreshStatus(options) {
    const seq = ++statusSeq;
    try {
      const data = await ctx.fetchStatus(options);
      if (!data || seq !== statusSeq) return null;
      X.awayMessage = typeof data.away_message === "string" && data.away_message.trim() ? data.away_message : null;
      X.emailEnabled = data.email_enabled === true;
      renderAway();
      return data;
    } catch {
      return null;
    }
  }

  // ------------------------------------------------------------------------------ on demand

  const lazy = { rating: null, history: null, transcript: null };
  const loaded = { rating: null, history: null, transcript: null };
  const sub = { ...ctx, contact: () => X.contact, setContact };
  function load(name) {
    const base = import.meta.url;
    lazy[name] ||= (
      name === "rating"
        ? Promise.all([import("./rating.js"), loadStyle("./rating.css", base)]).then(([m]) =>
            m.createRating(sub),
          )
        : name === "history"
          ? Promise.all([import("./history.js"), loadStyle("./history.css", base)]).then(([m]) =>
              m.createHistory(sub),
            )
          : Promise.all([import("./transcript.js"), loadStyle("./transcript.css", base)]).then(
              ([m]) => m.createTranscript(sub),
            )
    ).then((made) => (loaded[name] = made));
    return lazy[name];
  }

  // A conversation can be closed at any moment: have rating.js at hand by then, loaded a
  // moment after there is one (so never on a first open, which has none).
  function prefetchRating() {
    if (!prefetch && !lazy.rating && ctx.current().ticketId) {
      prefetch = setTimeout(() => load("rating"), 1500);
    }
  }

  // Called whenever the ticket or its status changes.
  function syncRating() {
    renderAway(); // the away card steps aside while the ticket is closed
    const { ticketId, status } = ctx.current();
    if (!lazy.rating && status !== "closed") return undefined; // nothing asked yet
    // The first time, the list (rated on another device?) is asked while rating.js loads.
    const early =
      lazy.rating || !ticketId
        ? null
        : { ticketId, res: ctx.api("/api/support/tickets").catch(() => null) };
    return load("rating").then((r) => r.sync(early));
  }

  function renderTranscriptButton() {
    prefetchRating(); // called whenever the conversation changes
    tBtn.hidden = !(X.emailEnabled && ctx.current().ticketId);
    if (tBtn.hidden && !sheet.hidden) loaded.transcript?.closeSheet();
  }
  tBtn.addEventListener("click", async () => {
    const tr = await load("transcript");
    if (sheet.hidden) tr.openSheet();
    else tr.closeSheet();
  });

  const view = $("tickets-view");
  $("tickets-btn").addEventListener("click", async () => {
    const history = await load("history");
    if (view.hidden) history.openTickets();
    else history.closeTickets();
  });

  // Escape closes the innermost extra view first.
  function escape() {
    return Boolean(loaded.transcript?.closeSheet() || loaded.history?.closeTickets());
  }

  return {
    refreshStatus,
    renderAway,
    syncRating,
    renderTranscriptButton,
    escape,
    isAway: () => Boolean(X.awayMessage),
    contact: () => X.contact,
  };
}
