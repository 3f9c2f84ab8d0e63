// TrustDesk operator dashboard: login, the "Тикеты" inbox (list · conversation · customer
// panel), settings (canned responses, operators), live over /ws/operator.
//
// Rules kept everywhere: user text only through textContent (dom.js `h`), no inline
// scripts or styles (strict CSP), every message keyed by id so nothing shows twice.
//
// This file is the entry: sign-in and boot. Each feature has its own module (see README).

import { checkRequired2fa, forgotLink, resetToken, showReset, showTotpStep } from "./account.js";
import { api, setCsrf, setUnauthorizedHandler } from "./api.js";
import { hasFiles, onDocumentPaste } from "./composer-files.js";
import { startOutbox, stopMyTyping, stopOutbox } from "./composer.js";
import { focusAfterLogin, maybeMarkRead, openShortcuts, stepTicket } from "./conversation.js";
import { clear, h } from "./dom.js";
import { onFrame, onLiveState, sendVisibility, sweepTyping } from "./frames.js";
import { updateTitle } from "./helpers.js";
import { formatWait, getLang, setLang, t } from "./i18n.js";
import { fetchList, fetchOpenForBadges, loadCanned, loadOperators, renderList } from "./inbox.js";
import { installKeys } from "./keys.js";
import { Live } from "./live.js";
import { buildShell, onRoute, refreshPushState, renderBadges } from "./shell.js";
import { unlockAudio } from "./sound.js";
import { conn, root, state, ui } from "./state.js";

// ---------------------------------------------------------------- boot & login

export async function boot() {
  document.documentElement.lang = getLang();
  unlockAudio();
  setUnauthorizedHandler(() => {
    if (state.me) signOut(t("login.expired"));
  });
  if ("serviceWorker" in navigator) {
    navigator.serviceWorker.addEventListener("message", (ev) => {
      if (ev.data && ev.data.type === "open" && typeof ev.data.url === "string") {
        const url = new URL(ev.data.url, location.origin);
        if (url.origin === location.origin && url.hash) location.hash = url.hash;
      }
    });
  }
  document.addEventListener("visibilitychange", () => {
    sendVisibility();
    if (document.visibilityState === "visible") {
      maybeMarkRead();
      renderList();
      renderBadges();
    }
  });
  window.addEventListener("hashchange", onRoute);
  document.addEventListener("paste", onDocumentPaste);
  // j/k anywhere but in a field; the arrows only from the list or the page itself (they
  // scroll a conversation or a menu elsewhere); "?" the list of shortcuts (keys.js).
  const arrowsHere = (ev) =>
    !ev.key.startsWith("Arrow") || ev.target === document.body || Boolean(ev.target.closest?.(".ticket-list"));
  installKeys({
    next: (ev) => arrowsHere(ev) && stepTicket(1),
    prev: (ev) => arrowsHere(ev) && stepTicket(-1),
    help: () => (state.me ? (openShortcuts(), true) : false),
  });
  // A file dropped outside the conversation must not make the browser leave the dashboard.
  for (const type of ["dragover", "drop"]) {
    window.addEventListener(type, (ev) => {
      if (hasFiles(ev)) ev.preventDefault();
    });
  }
  setInterval(sweepTyping, 1000);
  if (resetToken()) return showReset(root, showLogin); // a "forgot password" mail's link
  try {
    const r = await api.me();
    signedIn(r);
  } catch (e) {
    showLogin(e.status === 401 ? null : e.status === 0 ? t("login.offline") : null);
  }
}

function showLogin(message) {
  state.me = null;
  clear(root);
  root.className = "login-screen";
  const email = h("input", {
    id: "login-email",
    name: "email",
    type: "email",
    autocomplete: "username",
    inputmode: "email",
    autocapitalize: "off",
    spellcheck: "false",
    required: true,
  });
  const password = h("input", {
    id: "login-password",
    name: "password",
    type: "password",
    autocomplete: "current-password",
    required: true,
  });
  const error = h("p", { class: "form-error", role: "alert" }, message || "");
  error.hidden = !message;
  const submit = h("button", { type: "submit", class: "btn primary block" }, t("login.submit"));
  let lockTimer = null;

  const form = h(
    "form",
    { class: "login-card", novalidate: true, "aria-labelledby": "login-title" },
    h("div", { class: "login-brand" }, h("img", { src: "/admin/icon.svg", alt: "", width: 40, height: 40 }), h("span", null, "TrustDesk")),
    h("h1", { id: "login-title" }, t("login.title")),
    h("p", { class: "muted" }, t("login.subtitle")),
    h("label", { for: "login-email" }, t("login.email")),
    email,
    h("label", { for: "login-password" }, t("login.password")),
    password,
    forgotLink(root, showLogin),
    error,
    submit,
  );
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    if (submit.disabled) return;
    const showError = (text) => {
      error.textContent = text;
      error.hidden = false;
    };
    if (!email.value.trim() || !password.value) {
      showError(t("login.wrong"));
      (email.value.trim() ? password : email).focus();
      return;
    }
    submit.disabled = true;
    submit.textContent = t("login.busy");
    let locked = false;
    try {
      const r = await api.login(email.value.trim(), password.value);
      if (r.totp_required) return showTotpStep(root, r.pending, { signedIn, back: showLogin });
      signedIn(r);
      return;
    } catch (e) {
      if (e.status === 401 || e.status === 400 || e.status === 422) {
        showError(t("login.wrong"));
        password.select();
      } else if (e.status === 429) {
        locked = true;
        showError(
          e.retryAfter ? t("login.locked", { wait: formatWait(e.retryAfter) }) : t("login.lockedNoWait"),
        );
        clearTimeout(lockTimer);
        lockTimer = setTimeout(
          () => {
            submit.disabled = false;
            error.hidden = true;
          },
          Math.min((e.retryAfter || 30) * 1000, 15 * 60 * 1000),
        );
      } else if (e.status === 0) {
        showError(t("login.offline"));
      } else {
        showError(t("login.failed", { msg: e.message }));
      }
    }
    submit.textContent = t("login.submit");
    if (!locked) submit.disabled = false;
  });

  const langBtn = h(
    "button",
    {
      type: "button",
      class: "btn ghost lang-toggle",
      "aria-label": t("header.lang"),
      title: t("header.lang"),
      onclick: () => {
        setLang(getLang() === "ru" ? "en" : "ru");
        showLogin();
      },
    },
    t("header.langShort"),
  );
  root.append(
    h("main", { class: "login-wrap" }, h("div", { class: "login-top" }, langBtn), form, h("p", { class: "login-foot muted" }, t("app.tagline"))),
  );
  updateTitle();
  email.focus();
}

function signedIn(r) {
  state.me = r.operator;
  setCsrf(r.csrf_token);
  state.operators.set(r.operator.id, { ...r.operator, online: true });
  startOutbox();
  buildShell();
  onRoute();
  loadInitial();
  checkRequired2fa(() => (location.hash = "#/settings/account"));
}

async function loadInitial() {
  const jobs = [fetchList(), loadOperators(), loadCanned()];
  if (state.filter !== "open") jobs.push(fetchOpenForBadges());
  await Promise.allSettled(jobs);
  if (!state.me) return;
  focusAfterLogin();
  conn.live = new Live({
    since: () => state.maxId,
    onFrame,
    onState: onLiveState,
    onAuthLost: async () => {
      try {
        await api.me();
        if (conn.live) conn.live.scheduleRetry(); // a refused handshake, but the session is fine
      } catch (e) {
        if (e.status === 401 && state.me) signOut(t("login.expired"));
        else if (conn.live) conn.live.scheduleRetry();
      }
    },
  });
  conn.live.start();
  refreshPushState();
}

export async function signOut(message) {
  if (ui.recorder) ui.recorder.cancel();
  if (conn.live) conn.live.stop();
  stopOutbox();
  delete document.documentElement.dataset.live;
  conn.live = null;
  stopMyTyping();
  Object.assign(state, {
    me: null,
    view: null,
    tickets: new Map(),
    searchIds: null,
    listLoaded: false,
    currentId: null,
    current: null,
    typing: new Map(),
    operators: new Map(),
    canned: [],
    maxId: 0,
    announcedUpTo: Infinity,
    drafts: new Map(),
    staged: new Map(),
  });
  for (const k of Object.keys(ui)) delete ui[k];
  showLogin(message);
}
