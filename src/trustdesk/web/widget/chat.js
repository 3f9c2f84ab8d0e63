// TrustDesk chat panel: runs inside the iframe served by TrustDesk (/widget/frame.html).
// Plain ES modules, no build step, no framework. User text is only ever inserted as text.
//
// Delivery model: storage is the truth. We keep the highest message id we have and ask for
// everything after it (WebSocket "hello" with `since`, or long polling with `after`). Every
// message is keyed by id, so replays and retries never show anything twice. Outgoing
// messages carry a client_msg_id and wait in a persisted outbox until the server has them.
//
// This file only boots: core.js builds the shared state (`app`), each feature's install()
// adds its part (DOM listeners, store subscriptions, frame handlers in app.frames, entry
// points in app.act). What the first open does not need is imported on demand: files.js
// with the first attachment, uploads.js with the first file, voice.js with the microphone,
// emoji.js with the emoji panel, kb.js with a first question, polling.js when a WebSocket
// cannot be had, identity.js when the shop names its customer, rating.js, history.js and
// transcript.js when asked for (away.js).

import * as composer from "./composer.js";
import * as connection from "./connection.js";
import * as conversation from "./conversation.js";
import { createApp } from "./core.js";
import { createAway } from "./away.js";
import { localizeServerText } from "./i18n.js";
import * as messages from "./messages.js";
import * as outbox from "./outbox.js";
import * as parent from "./parent.js";
import * as typing from "./typing.js";
import * as unread from "./unread.js";
import * as view from "./view.js";

const app = createApp();
const { S, els, act, t, locale } = app;

function applyTranslations() {
  document.documentElement.lang = locale;
  document.title = t("frameTitle");
  for (const node of document.querySelectorAll("[data-i18n]")) {
    node.textContent = t(node.dataset.i18n);
  }
  for (const node of document.querySelectorAll("[data-i18n-label]")) {
    node.setAttribute("aria-label", t(node.dataset.i18nLabel));
  }
  for (const node of document.querySelectorAll("[data-i18n-placeholder]")) {
    node.setAttribute("placeholder", t(node.dataset.i18nPlaceholder));
  }
  const title = (app.params.get("title") || "").trim().slice(0, 60);
  if (title) document.getElementById("title").textContent = title; // text, never HTML
  const color = app.params.get("color");
  if (color && /^#[0-9a-f]{3,8}$/i.test(color)) {
    document.documentElement.style.setProperty("--accent", color);
  }
  if (!app.EMBEDDED) document.body.classList.add("standalone");
  document.body.classList.remove("is-loading");
}

applyTranslations();
for (const feature of [view, conversation, typing, unread, outbox, messages]) {
  feature.install(app);
}
for (const feature of [connection, composer, parent]) feature.install(app);

// Escape closes the innermost thing open, else the panel.
document.addEventListener("keydown", (ev) => {
  if (ev.key !== "Escape") return;
  if (act.escapeLightbox()) return;
  if (app.extras?.escape()) return;
  if (act.escapeRecorder()) return;
  if (act.escapeToast()) return;
  if (act.escapeEmoji()) return;
  if (app.EMBEDDED) app.postParent({ type: "close" });
});


app.extras = createAway({
  t,
  locale,
  api: act.api,
  fetchStatus: act.fetchStatus,
  storage: app.storage,
  ensureSession: act.ensureSession,
  current: () => ({ ticketId: S.ticketId, status: S.status }),
  switchTicket: act.switchTicket,
  newConversation: act.newConversation,
  withScroll: (fn) => act.withScroll(fn, { quiet: true }),
  localize: (text) => localizeServerText(locale, text),
  summary: act.summary,
  contactEmail: () => S.identityEmail,
});
act.renderStatus();
act.updateSendButton();
if (!S.ticketId) act.loadGreeting();
for (const item of S.outbox) act.renderPending(item);
if (app.EMBEDDED && !app.PARENT_ORIGIN) {
  // Embedded by a page we cannot verify: do nothing at all.
  els.app.hidden = true;
} else {
  app.postParent({ type: "ready" });
  if (S.open || S.token) act.start();
}
