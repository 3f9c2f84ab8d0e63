// TrustDesk operator dashboard: login, the "Тикеты" inbox (list · conversation · customer
// panel), settings (canned responses, operators), live over /ws/operator.
//
// Rules kept everywhere: user text only through textContent (dom.js `h`), no inline
// scripts or styles (strict CSP), every message keyed by id so nothing shows twice.

import { buildAccountCard, checkRequired2fa, forgotLink, resetToken, showReset, showTotpStep } from "./account.js";
import { ApiError, api, request, setCsrf, setUnauthorizedHandler, upload } from "./api.js";
import { Outbox, OutboxRunner, isTransient } from "./outbox.js";
import { dropUpload, keepUpload, keptUploads } from "./upload-store.js";
import {
  clear,
  dayLabel,
  describeBrowser,
  fullWhen,
  h,
  hhmm,
  hueOf,
  initials,
  replaceChildren,
  safeHref,
  shortWhen,
  uuid,
} from "./dom.js";
import {
  ACCEPT,
  attachmentBody,
  attachmentPreview,
  checkFile,
  formatSize,
  Recorder,
  recordingSupported,
  screenshotName,
} from "./files.js";
import { formatWait, getLang, has, noticeText, setLang, t } from "./i18n.js";
import { counterState, installKeys, isTextField, showShortcuts, stepId } from "./keys.js";
import { buildIntegrations } from "./integrations.js";
import { buildKbPage, kbComposerTool, kbFromAnswer } from "./kb.js";
import { buildAuditCard } from "./audit.js";
import { channelChip, channelKey } from "./channels.js";
import { buildChannelSettingsCard } from "./channel-settings.js";
import { customerHistoryCard } from "./customer-history.js";
import { buildLabelsCard, labelChips, labelFilter, labelMatches, labelParam, mergeButton, ticketLabels } from "./labels.js";
import { buildRoutingCard, headerMarker, rowMarkers, teamFilter, teamMatches, teamParam, ticketRoutingCard } from "./routing.js";
import { Live } from "./live.js";
import { enablePush, pushActive, pushSupported } from "./push.js";
import { buildReport } from "./report.js";
import { buildSelftestCard } from "./selftest.js";
import { chime, isMuted, setMuted, unlockAudio } from "./sound.js";
import { buildWidgetPage, leaveWidgetPage, onSettingsChanged, renderSiteNotices } from "./widget-settings.js";

const FILTERS = ["open", "mine", "unassigned", "snoozed", "closed"];
const TYPING_TTL_MS = 6000;
const TYPING_SEND_EVERY_MS = 2500;
const TYPING_IDLE_MS = 4000;
const MAX_LEN = 4000;

const root = document.getElementById("app");

const state = {
  me: null,
  view: null, // "tickets" | "report" | "settings" (null until the first route)
  filter: "open",
  q: "",
  tickets: new Map(), // ticketId -> TicketSummary (all we know of)
  searchIds: null, // Set of ids matching the current `q` (server-side search)
  listLoaded: false,
  listError: null,
  listSeq: 0,
  currentId: null,
  current: null, // {id, messages: Map, pending: Map, loaded, error, lastReadSent}
  typing: new Map(), // ticketId -> Map(key -> {name, sender_type, until})
  operators: new Map(), // id -> {id, name, email, role, active, online}
  canned: [],
  maxId: 0,
  announcedUpTo: Infinity, // customer messages above this id still ring (set once live)
  connected: true,
  mode: "reply", // composer mode: "reply" | "note" | "system"
  drafts: new Map(),
  staged: new Map(), // ticketId -> [{id, file, name, url}] files picked but not sent yet
  reportDays: 30,
  showInfo: false,
  push: "off", // "on" | "off" | "unsupported"
};

const ui = {}; // live references into the current DOM
// What labels.js (labels on tickets, merging two tickets) needs of this module.
const labelCtx = {
  errorText: (e) => errorText(e),
  toast: (m, kind) => toast(m, kind),
  confirm: (o) => confirmDialog(o),
  onTicket: (s) => onTicket(s),
  refresh: () => {
    refreshCurrent();
    if (state.current) loadRelated(state.current);
  },
};
let live = null;

// ---------------------------------------------------------------- helpers

function opName(id) {
  const o = state.operators.get(id);
  return o ? o.name : "";
}

const DEFAULT_GUEST = "Гость"; // the server's name for an anonymous customer (older rows)
const NUMBERED_GUEST = /^Гость #(\d+)$/; // actions/customers.py display_name

function guestName(name) {
  if (!name || name === DEFAULT_GUEST) return t("guest");
  const n = NUMBERED_GUEST.exec(name);
  return n ? t("guestN", { n: n[1] }) : name;
}

function customerName(s) {
  return guestName(s && s.customer_name);
}

function isViewing(ticketId) {
  return (
    state.view === "tickets" &&
    state.currentId === ticketId &&
    state.current &&
    state.current.loaded &&
    document.visibilityState === "visible"
  );
}

function ts(iso) {
  const n = Date.parse(iso);
  return Number.isNaN(n) ? 0 : n;
}

function avatar(name, { size = "", online = null, seed = name } = {}) {
  const el = h(
    "span",
    { class: `avatar ${size}`, "aria-hidden": "true" },
    initials(name),
    online === null ? null : h("span", { class: `presence-dot ${online ? "on" : "off"}` }),
  );
  el.style.setProperty("--hue", String(hueOf(seed)));
  return el;
}

/** Text with http(s) links made clickable; every piece inserted as text. */
function linkify(text) {
  const out = [];
  const re = /\bhttps?:\/\/[^\s<>"']+/g;
  let last = 0;
  let m;
  while ((m = re.exec(text))) {
    let url = m[0];
    const trail = url.match(/[.,!?;:)]+$/);
    if (trail) url = url.slice(0, -trail[0].length);
    if (m.index > last) out.push(text.slice(last, m.index));
    const href = safeHref(url);
    out.push(href ? h("a", { href, target: "_blank", rel: "noopener noreferrer" }, url) : url);
    last = m.index + url.length;
  }
  if (last < text.length) out.push(text.slice(last));
  return out;
}

let toastTimer = null;
function toast(message, kind = "info") {
  if (!ui.toast) return;
  replaceChildren(ui.toast, h("div", { class: `toast-card ${kind}` }, message));
  ui.toast.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => {
    if (ui.toast) ui.toast.hidden = true;
  }, 5000);
}

function errorText(e) {
  if (e.code && has(`error.${e.code}`)) return t(`error.${e.code}`);
  if (e.status === 413) return t("error.file_too_large");
  if (e.status === 415) return t("error.unsupported_type");
  if (e.status === 404) return t("error.not_found");
  if (e.status === 422 || e.status === 400) return t("error.invalid");
  if (e.status === 403) return t("error.forbidden");
  if (e.status === 429) return t("error.rate");
  if (e.status === 0) return t("login.offline");
  return t("error.generic", { msg: e.message });
}

function totalUnread() {
  let n = 0;
  for (const s of state.tickets.values()) n += s.unread > 0 ? s.unread : 0;
  return n;
}

function updateTitle() {
  if (!state.me) {
    document.title = `${t("title.login")} — TrustDesk`;
    return;
  }
  const n = totalUnread();
  const name =
    state.view === "settings"
      ? t("title.settings")
      : state.view === "widget"
        ? t("widget.heading")
        : state.view === "report"
        ? t("title.report")
        : state.view === "kb"
        ? t("kb.heading")
        : t("title.tickets");
  document.title = `${n > 0 ? `(${n}) ` : ""}${name} — TrustDesk`;
}

// ---------------------------------------------------------------- boot & login

async function boot() {
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
  live = new Live({
    since: () => state.maxId,
    onFrame,
    onState: onLiveState,
    onAuthLost: async () => {
      try {
        await api.me();
        if (live) live.scheduleRetry(); // a refused handshake, but the session is fine
      } catch (e) {
        if (e.status === 401 && state.me) signOut(t("login.expired"));
        else if (live) live.scheduleRetry();
      }
    },
  });
  live.start();
  refreshPushState();
}

async function signOut(message) {
  if (ui.recorder) ui.recorder.cancel();
  if (live) live.stop();
  stopOutbox();
  delete document.documentElement.dataset.live;
  live = null;
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

// ---------------------------------------------------------------- shell

function buildShell() {
  clear(root);
  root.className = "app";
  const me = state.me;

  ui.navBadge = h("span", { class: "nav-badge", hidden: true });
  ui.navTickets = h(
    "a",
    { href: "#/tickets", class: "nav-item", dataset: { view: "tickets" } },
    h("span", { class: "nav-icon", "aria-hidden": "true" }, "💬"),
    h("span", { class: "nav-label" }, t("nav.tickets")),
    ui.navBadge,
  );
  ui.navReport = h(
    "a",
    { href: "#/report", class: "nav-item", dataset: { view: "report" } },
    h("span", { class: "nav-icon", "aria-hidden": "true" }, "📊"),
    h("span", { class: "nav-label" }, t("nav.report")),
  );
  ui.navKb = h(
    "a",
    { href: "#/kb", class: "nav-item", dataset: { view: "kb" } },
    h("span", { class: "nav-icon", "aria-hidden": "true" }, "📚"),
    h("span", { class: "nav-label" }, t("nav.kb")),
  );
  ui.navSettings = h(
    "a",
    { href: "#/settings", class: "nav-item", dataset: { view: "settings" } },
    h("span", { class: "nav-icon", "aria-hidden": "true" }, "⚙️"),
    h("span", { class: "nav-label" }, t("nav.settings")),
  );
  ui.navWidget =
    me.role === "admin"
      ? h(
          "a",
          { href: "#/widget", class: "nav-item", dataset: { view: "widget" } },
          h("span", { class: "nav-icon", "aria-hidden": "true" }, "🧩"),
          h("span", { class: "nav-label" }, t("nav.widget")),
        )
      : null;

  ui.team = h("div", { class: "team-stack", role: "group", "aria-label": t("header.team") });
  ui.muteBtn = h("button", { type: "button", class: "icon-btn", onclick: toggleMute });
  ui.pushBtn = h(
    "button",
    { type: "button", class: "btn soft push-btn", onclick: onEnablePush },
    h("span", { "aria-hidden": "true" }, "🔔 "),
    h("span", { class: "push-label" }, t("header.push")),
  );
  ui.pushBtn.hidden = true;
  const langBtn = h(
    "button",
    {
      type: "button",
      class: "btn ghost lang-toggle",
      "aria-label": t("header.lang"),
      title: t("header.lang"),
      onclick: () => switchLang(getLang() === "ru" ? "en" : "ru"),
    },
    t("header.langShort"),
  );
  const whoami = h(
    "div",
    { class: "whoami" },
    avatar(me.name, { seed: me.email || me.name }),
    h(
      "span",
      { class: "whoami-text" },
      h("strong", { class: "whoami-name" }, me.name),
      h("span", { class: "whoami-role" }, t(`role.${me.role}`) || me.role),
    ),
  );
  const logout = h(
    "button",
    { type: "button", class: "btn ghost", onclick: onLogout },
    t("header.logout"),
  );
  ui.connBanner = h("div", { class: "conn-banner", role: "status", hidden: true }, t("conn.offline"));
  ui.siteNotices = h("div", { class: "site-notices", hidden: true });
  ui.main = h("main", { class: "main", id: "main" });
  ui.toast = h("div", { class: "toast", role: "status", "aria-live": "polite", hidden: true });

  root.append(
    h(
      "header",
      { class: "topbar" },
      h(
        "a",
        { class: "brand", href: "#/tickets" },
        h("img", { src: "/admin/icon.svg", alt: "", width: 28, height: 28 }),
        h("span", { class: "brand-name" }, "TrustDesk"),
        h("span", { class: "brand-sub" }, "Trust Store"),
      ),
      h("div", { class: "topbar-spacer" }),
      ui.team,
      ui.pushBtn,
      ui.muteBtn,
      langBtn,
      whoami,
      logout,
    ),
    ui.connBanner,
    ui.siteNotices,
    h(
      "div",
      { class: "shell" },
      h("nav", { class: "rail", "aria-label": t("nav.main") }, ui.navTickets, ui.navReport, ui.navKb, ui.navWidget, ui.navSettings),
      ui.main,
    ),
    ui.toast,
  );
  renderMute();
  renderTeam();
  renderBadges();
  if (me.role === "admin") renderSiteNotices(ui.siteNotices, { errorText, toast });
}

function switchLang(lang) {
  setLang(lang);
  const keepDraft = ui.reply ? ui.reply.value : null;
  if (keepDraft !== null && state.currentId) state.drafts.set(state.currentId, keepDraft);
  buildShell();
  state.view = null; // force the main view to be rebuilt
  onRoute();
  refreshPushState();
}

function renderBadges() {
  if (!ui.navBadge) return;
  const n = totalUnread();
  ui.navBadge.textContent = n > 99 ? "99+" : String(n);
  ui.navBadge.hidden = n === 0;
  ui.navBadge.setAttribute("aria-label", t("list.unread", { n }));
  updateTitle();
}

function renderNav() {
  for (const link of [ui.navTickets, ui.navReport, ui.navKb, ui.navWidget, ui.navSettings]) {
    if (!link) continue;
    const active = link.dataset.view === state.view;
    link.classList.toggle("active", active);
    if (active) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
}

function renderMute() {
  if (!ui.muteBtn) return;
  const muted = isMuted();
  ui.muteBtn.textContent = muted ? "🔇" : "🔊";
  const label = muted ? t("header.unmute") : t("header.mute");
  ui.muteBtn.setAttribute("aria-label", label);
  ui.muteBtn.title = label;
  ui.muteBtn.setAttribute("aria-pressed", muted ? "true" : "false");
  if (ui.soundToggle) ui.soundToggle.checked = !muted;
}

function toggleMute() {
  setMuted(!isMuted());
  renderMute();
}

function renderTeam() {
  if (!ui.team) return;
  const online = [...state.operators.values()].filter((o) => o.online && o.active !== false);
  online.sort((a, b) => (a.id === state.me.id ? -1 : b.id === state.me.id ? 1 : a.name.localeCompare(b.name)));
  const items = online.slice(0, 5).map((o) => {
    const el = h("span", { class: "team-member", title: `${o.name} · ${t("info.online")}` }, avatar(o.name, { online: true, seed: o.email || o.name }));
    return el;
  });
  replaceChildren(
    ui.team,
    items,
    online.length > 5 ? h("span", { class: "team-more" }, `+${online.length - 5}`) : null,
  );
  ui.team.title = online.map((o) => o.name).join(", ");
  if (ui.teamList) renderTeamList();
}

async function refreshPushState() {
  if (!ui.pushBtn) return;
  if (!pushSupported()) {
    state.push = "unsupported";
  } else {
    state.push = (await pushActive()) ? "on" : "off";
  }
  ui.pushBtn.hidden = state.push !== "off";
}

async function onEnablePush() {
  ui.pushBtn.disabled = true;
  try {
    const r = await enablePush();
    if (r.ok) {
      state.push = "on";
      ui.pushBtn.hidden = true;
      toast(t("header.pushOn"), "ok");
    } else if (r.reason === "denied") {
      toast(t("header.pushDenied"), "warn");
    } else if (r.reason === "unsupported") {
      toast(t("header.pushUnsupported"), "warn");
    } else {
      toast(t("header.pushFailed"), "warn");
    }
  } catch (e) {
    toast(`${t("header.pushFailed")}: ${e.message || e}`, "warn");
  } finally {
    ui.pushBtn.disabled = false;
  }
}

async function onLogout() {
  try {
    await api.logout();
  } catch {
    /* the session may already be gone */
  }
  signOut(null);
}

// ---------------------------------------------------------------- routing

function parseRoute() {
  const hash = location.hash.replace(/^#\/?/, "");
  const [section, ...rest] = hash.split("/");
  if (section === "settings") return { view: "settings", ticketId: null };
  if (section === "widget" && state.me && state.me.role === "admin") return { view: "widget", ticketId: null };
  if (section === "report") return { view: "report", ticketId: null };
  if (section === "kb") return { view: "kb", ticketId: null };
  // "#/ticket/ID" too: the server's push notifications link there.
  const id =
    (section === "tickets" || section === "ticket") && rest.length
      ? decodeURIComponent(rest.join("/"))
      : null;
  return { view: "tickets", ticketId: id || null };
}

function onRoute() {
  if (!state.me) return;
  const r = parseRoute();
  if (r.view !== state.view) {
    state.view = r.view;
    leaveWidgetPage();
    if (r.view === "widget") {
      leaveTicket();
      dropInboxRefs();
      buildWidgetPage(ui.main, { errorText, toast });
    } else if (r.view === "settings") {
      leaveTicket();
      buildSettings();
    } else if (r.view === "kb") {
      leaveTicket();
      dropInboxRefs();
      buildKbPage(ui.main, { errorText, toast, me: state.me });
    } else if (r.view === "report") {
      leaveTicket();
      dropInboxRefs();
      buildReport(ui.main, { errorText, days: state.reportDays, onDays: (d) => (state.reportDays = d) });
    } else {
      buildInbox();
    }
  }
  if (r.view === "tickets") openTicket(r.ticketId);
  renderNav();
  updateTitle();
}

// ---------------------------------------------------------------- data loading

function filterParams(filter) {
  if (filter === "closed") return { status: "closed" };
  if (filter === "snoozed") return { status: "snoozed" }; // routing.js
  if (filter === "mine") return { status: "open", filter: "mine" };
  if (filter === "unassigned") return { status: "open", filter: "unassigned" };
  return { status: "open" };
}

function matchesFilter(s) {
  if (state.searchIds && !state.searchIds.has(s.ticketId)) return false;
  if (!labelMatches(s) || !teamMatches(s)) return false;
  // A snoozed ticket is open but only in "Отложенные" until its time (routing.js).
  if (state.filter === "snoozed") return s.status === "open" && Boolean(s.snoozed_until);
  if (s.snoozed_until && state.filter !== "closed") return false;
  switch (state.filter) {
    case "closed":
      return s.status === "closed";
    case "mine":
      return s.status === "open" && s.assignee && s.assignee.id === state.me.id;
    case "unassigned":
      return s.status === "open" && !s.assignee;
    default:
      return s.status === "open";
  }
}

function noteMax(id) {
  if (typeof id === "number" && id > state.maxId) state.maxId = id;
}

function upsertTicket(s) {
  if (!s || !s.ticketId) return null;
  const prev = state.tickets.get(s.ticketId);
  const next = { ...(prev || {}), ...s };
  // A slow HTTP answer must not roll back a newer live message.
  if (prev && prev.last_message && (!s.last_message || s.last_message.id < prev.last_message.id)) {
    next.last_message = prev.last_message;
    if (ts(prev.updated_at) > ts(s.updated_at)) next.updated_at = prev.updated_at;
  }
  if (prev && prev.customer_last_read_id > (s.customer_last_read_id || 0)) {
    next.customer_last_read_id = prev.customer_last_read_id;
  }
  if (isViewing(s.ticketId)) next.unread = 0;
  if (next.last_message) noteMax(next.last_message.id);
  state.tickets.set(s.ticketId, next);
  return next;
}

async function fetchList() {
  const seq = ++state.listSeq;
  const params = filterParams(state.filter);
  try {
    const r = await api.tickets({ ...params, q: state.q.trim(), label: labelParam(), team: teamParam() });
    if (seq !== state.listSeq) return;
    for (const s of r.tickets || []) upsertTicket(s);
    state.searchIds = state.q.trim() ? new Set((r.tickets || []).map((s) => s.ticketId)) : null;
    state.listLoaded = true;
    state.listError = null;
  } catch (e) {
    if (seq !== state.listSeq) return;
    if (e.status === 401) return;
    state.listError = errorText(e);
  }
  renderList();
  renderBadges();
  maybeMarkRead();
}

/** When the list shows closed tickets, still know the open ones for the unread badges. */
async function fetchOpenForBadges() {
  try {
    const r = await api.tickets({ status: "open" });
    for (const s of r.tickets || []) upsertTicket(s);
    renderBadges();
    renderList();
  } catch {
    /* the badge catches up with the next live frame */
  }
}

let refetchTimer = null;
function scheduleRefetch() {
  clearTimeout(refetchTimer);
  refetchTimer = setTimeout(fetchList, 250);
}

async function loadOperators() {
  try {
    const r = await api.operators();
    for (const o of r.operators || []) {
      const prev = state.operators.get(o.id) || {};
      state.operators.set(o.id, { ...prev, ...o, online: o.online ?? prev.online ?? false });
    }
  } catch {
    /* presence frames fill this in */
  }
  renderTeam();
  renderAssign();
  if (ui.opsList) renderOperatorsTable();
}

async function loadCanned() {
  try {
    const r = await api.canned();
    state.canned = r.canned || [];
  } catch {
    state.canned = [];
  }
  if (ui.cannedList) renderCannedList();
}

// ---------------------------------------------------------------- live frames

let bannerTimer = null;
function onLiveState(connected, first) {
  state.connected = connected;
  document.documentElement.dataset.live = connected ? "on" : "off";
  clearTimeout(bannerTimer);
  if (connected) {
    if (ui.connBanner) ui.connBanner.hidden = true;
    if (document.visibilityState !== "visible") sendVisibility();
    if (!first) resync();
    outboxServerBack();
  } else {
    dropSocketSends();
    bannerTimer = setTimeout(() => {
      if (!state.connected && ui.connBanner) ui.connBanner.hidden = false;
    }, 1500);
    // Customer typing cannot be trusted while we hear nothing.
    state.typing.clear();
    renderTyping();
  }
}

/** Hidden dashboards still get browser push; the server needs to know which we are. */
function sendVisibility() {
  if (live) live.send({ type: "visibility", visible: document.visibilityState === "visible" });
}

function resync() {
  fetchList();
  if (state.filter !== "open") fetchOpenForBadges();
  refreshCurrent();
  loadOperators();
}

function onFrame(f) {
  switch (f.type) {
    case "ready":
      if (state.announcedUpTo === Infinity) state.announcedUpTo = state.maxId;
      for (const o of f.operators || []) {
        const prev = state.operators.get(o.id) || {};
        state.operators.set(o.id, { ...prev, ...o });
      }
      renderTeam();
      renderAssign();
      break;
    case "message":
      if (f.message) onMessage(f.message);
      break;
    case "ticket":
      onTicket(f.ticket);
      break;
    case "typing":
      onTyping(f);
      break;
    case "read":
      onRead(f);
      break;
    case "presence":
      onPresence(f);
      break;
    case "resync":
      resync();
      break;
    case "settings_changed":
      onSettingsChanged(f.settings);
      if (state.me.role === "admin") renderSiteNotices(ui.siteNotices, { errorText, toast });
      break;
    case "origin_blocked":
      if (state.me.role === "admin") renderSiteNotices(ui.siteNotices, { errorText, toast });
      break;
    case "ack":
      settleSocketSend(f);
      break;
    case "error":
      if (settleSocketSend(f)) break;
      if (f.code === "unauthorized") signOut(t("login.expired"));
      break;
    default:
      break;
  }
}

function onMessage(m) {
  noteMax(m.id);
  if (m.client_msg_id) outboxAcked(m.client_msg_id);
  const s = state.tickets.get(m.ticket_id);
  if (!s) {
    scheduleRefetch();
  } else if (isPublic(m) && (!s.last_message || m.id > s.last_message.id)) {
    // Only a customer / operator / bot message (not a notice, not a note) is the preview
    // and moves the ticket up, as the server's updated_at and last_public_message_id.
    s.last_message = m;
    if (ts(m.created_at) >= ts(s.updated_at)) s.updated_at = m.created_at;
    if (m.sender_type === "customer" && m.kind !== "note") {
      if (!isViewing(m.ticket_id)) s.unread = (s.unread || 0) + 1;
      // A customer message on a closed ticket reopens it (the ticket frame confirms).
      if (s.status === "closed") s.status = "open";
    }
  }
  if (m.sender_type === "customer") clearTyping(m.ticket_id, "customer");
  if (m.sender_type === "admin" && m.operator_id) clearTyping(m.ticket_id, `op${m.operator_id}`);
  announce(m);
  const cur = state.current;
  if (cur && cur.id === m.ticket_id && cur.loaded) {
    addMessage(cur, m);
    renderMessages();
    maybeMarkRead();
  }
  if (state.searchIds && s) scheduleRefetch();
  renderList();
  renderBadges();
}

function isPublic(m) {
  return m.sender_type !== "system" && m.kind !== "note";
}

/** A new customer message rings once (the ticket frame may come before the message). */
function announce(m) {
  if (!m || m.sender_type !== "customer" || m.kind === "note") return;
  if (m.id <= state.announcedUpTo) return;
  state.announcedUpTo = m.id;
  const focused = isViewing(m.ticket_id) && document.hasFocus();
  if (!focused) chime();
}

function onTicket(ticket) {
  if (!ticket) return;
  announce(ticket.last_message);
  const s = upsertTicket(ticket);
  if (state.searchIds) scheduleRefetch();
  renderList();
  renderBadges();
  if (state.currentId === ticket.ticketId) {
    renderConvHeader();
    renderInfo();
    renderMessages();
    renderComposerState();
    maybeMarkRead();
  }
  return s;
}

function typingKey(f) {
  return f.sender_type === "customer" ? "customer" : `op${f.operator_id ?? f.name}`;
}

function onTyping(f) {
  if (!f.ticketId) return;
  if (f.sender_type === "admin" && f.operator_id === state.me.id) return; // my own echo
  const key = typingKey(f);
  let m = state.typing.get(f.ticketId);
  if (f.active) {
    if (!m) state.typing.set(f.ticketId, (m = new Map()));
    const ttl = typeof f.ttl === "number" && f.ttl > 0 ? f.ttl * 1000 : TYPING_TTL_MS;
    m.set(key, { name: f.name, sender_type: f.sender_type, until: Date.now() + ttl });
  } else if (m) {
    m.delete(key);
    if (!m.size) state.typing.delete(f.ticketId);
  }
  renderTyping();
  renderListTyping();
}

function clearTyping(ticketId, key) {
  const m = state.typing.get(ticketId);
  if (m && m.delete(key)) {
    if (!m.size) state.typing.delete(ticketId);
    renderTyping();
    renderListTyping();
  }
}

function sweepTyping() {
  const now = Date.now();
  let changed = false;
  for (const [id, m] of state.typing) {
    for (const [k, v] of m) {
      if (v.until <= now) {
        m.delete(k);
        changed = true;
      }
    }
    if (!m.size) state.typing.delete(id);
  }
  if (changed) {
    renderTyping();
    renderListTyping();
  }
}

function onRead(f) {
  const s = state.tickets.get(f.ticketId);
  if (!s) return;
  if (f.reader === "customer") {
    if (f.last_read_id > (s.customer_last_read_id || 0)) {
      s.customer_last_read_id = f.last_read_id;
      if (state.currentId === f.ticketId) renderMessages();
    }
  } else if (f.reader === "admin" && f.operator_id === state.me.id && s.unread) {
    // I read it in another tab.
    if (!s.last_message || f.last_read_id >= s.last_message.id) {
      s.unread = 0;
      renderList();
      renderBadges();
    }
  }
}

function onPresence(f) {
  if (f.kind === "operator" && f.operator) {
    const prev = state.operators.get(f.operator.id) || { active: true };
    state.operators.set(f.operator.id, { ...prev, ...f.operator, online: Boolean(f.online) });
    renderTeam();
    renderAssign();
    if (ui.opsList) renderOperatorsTable();
  } else if (f.kind === "visitor" && f.ticketId) {
    const s = state.tickets.get(f.ticketId);
    if (!s) return;
    s.visitor = {
      ...(s.visitor || {}),
      online: Boolean(f.online),
      page_url: f.page_url ?? s.visitor?.page_url ?? null,
      user_agent: f.user_agent ?? s.visitor?.user_agent ?? null,
    };
    if (!f.online) clearTyping(f.ticketId, "customer");
    renderList();
    if (state.currentId === f.ticketId) {
      renderConvHeader();
      renderInfo();
    }
  }
}

// ---------------------------------------------------------------- inbox layout

function buildInbox() {
  ui.search = h("input", {
    type: "search",
    class: "search",
    placeholder: t("list.search"),
    "aria-label": t("list.searchLabel"),
    value: state.q,
  });
  let searchTimer = null;
  ui.search.addEventListener("input", () => {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(() => {
      state.q = ui.search.value;
      fetchList();
    }, 250);
  });
  ui.filterBtns = FILTERS.map((f) =>
    h(
      "button",
      {
        type: "button",
        class: "filter",
        dataset: { filter: f },
        "aria-pressed": f === state.filter ? "true" : "false",
        onclick: () => setFilter(f),
      },
      t(`filter.${f}`),
    ),
  );
  ui.listCount = h("span", { class: "list-count" });
  ui.list = h("ul", { class: "ticket-list", "aria-labelledby": "list-heading" });
  ui.listPane = h(
    "section",
    { class: "list-pane", "aria-labelledby": "list-heading" },
    h(
      "div",
      { class: "list-head" },
      h("h1", { id: "list-heading" }, t("list.heading")),
      ui.listCount,
    ),
    h(
      "div",
      { class: "search-wrap" },
      ui.search,
      labelFilter(() => {
        renderList();
        fetchList();
      }),
      teamFilter(() => {
        renderList();
        fetchList();
      }),
    ),
    h("div", { class: "filters", role: "group", "aria-label": t("list.filters") }, ui.filterBtns),
    h("div", { class: "list-scroll" }, ui.list),
  );
  ui.convPane = h("section", { class: "conv-pane" });
  setupDropZone(ui.convPane);
  ui.infoPane = h("aside", { class: "info-pane", "aria-label": t("ticket.info") });
  ui.inbox = h("div", { class: "inbox" }, ui.listPane, ui.convPane, ui.infoPane);
  replaceChildren(ui.main, ui.inbox);
  ui.cannedList = null;
  ui.opsList = null;
  ui.soundToggle = null;
  renderList();
  // The conversation is (re)built by openTicket.
  const id = state.currentId;
  state.currentId = undefined;
  state.current = null;
  if (!id) openTicket(null);
}

function setFilter(f) {
  if (f === state.filter) return;
  state.filter = f;
  state.searchIds = state.q.trim() ? state.searchIds : null;
  for (const b of ui.filterBtns || []) b.setAttribute("aria-pressed", b.dataset.filter === f ? "true" : "false");
  renderList();
  fetchList();
}

function sortedTickets() {
  const items = [...state.tickets.values()].filter(matchesFilter);
  items.sort((a, b) => {
    const d = ts(b.updated_at) - ts(a.updated_at);
    if (d) return d;
    return (b.last_message?.id || 0) - (a.last_message?.id || 0);
  });
  return items;
}

function previewOf(s) {
  const m = s.last_message;
  if (!m) return { text: t("list.noMessages"), cls: "" };
  if (m.kind === "note") return { text: `🔒 ${noticeText(m)}`, cls: "note" };
  const body = attachmentPreview(m) ?? m.message;
  if (m.sender_type === "admin") {
    const who = m.operator_id === state.me.id ? t("you") : m.sender_name;
    return { text: `${who}: ${body}`, cls: "" };
  }
  if (m.sender_type === "system") return { text: noticeText(m), cls: "system" };
  if (m.sender_type === "bot") return { text: `🤖 ${m.message}`, cls: "" };
  return { text: body, cls: "customer" };
}

/** The preview as real text: it can be selected and found with Ctrl+F. */
function previewEl(text, cls) {
  const flat = String(text).replace(/\s+/g, " ").slice(0, 200);
  return h("span", { class: `row-preview ${cls}`, title: flat }, flat);
}

function typingText(ticketId) {
  const m = state.typing.get(ticketId);
  if (!m || !m.size) return null;
  return t("list.typing");
}

function renderList() {
  if (!ui.list || state.view !== "tickets") return;
  const items = sortedTickets();
  ui.listCount.textContent = state.listLoaded ? String(items.length) : "";
  if (!state.listLoaded && !state.listError) {
    replaceChildren(ui.list, h("li", { class: "list-empty" }, t("list.loading")));
    return;
  }
  if (state.listError && !items.length) {
    replaceChildren(ui.list, h("li", { class: "list-empty error" }, state.listError));
    return;
  }
  if (!items.length) {
    const key = state.q.trim() ? "list.empty.search" : `list.empty.${state.filter}`;
    replaceChildren(ui.list, h("li", { class: "list-empty" }, t(key)));
    return;
  }
  const lang = getLang();
  replaceChildren(
    ui.list,
    items.map((s) => {
      const p = previewOf(s);
      const typing = typingText(s.ticketId);
      const active = s.ticketId === state.currentId;
      const unread = s.unread > 0 ? s.unread : 0;
      const name = customerName(s);
      return h(
        "li",
        null,
        h(
          "a",
          {
            href: `#/tickets/${encodeURIComponent(s.ticketId)}`,
            class: `ticket-row${active ? " active" : ""}${unread ? " has-unread" : ""}${s.status === "closed" ? " closed" : ""}`,
            dataset: { ticketId: s.ticketId },
            "aria-current": active ? "true" : null,
          },
          avatar(name, { online: Boolean(s.visitor && s.visitor.online), seed: s.ticketId }),
          h(
            "span",
            { class: "row-main" },
            h(
              "span",
              { class: "row-top" },
              h("span", { class: "row-name" }, name),
              h("span", { class: "row-id" }, s.ticketId),
              h(
                "time",
                { class: "row-time", datetime: s.last_message?.created_at || s.updated_at },
                shortWhen(s.last_message?.created_at || s.updated_at, lang),
              ),
            ),
            previewEl(typing || p.text, typing ? "typing" : p.cls),
            h(
              "span",
              { class: "row-tags" },
              h("span", { class: `pill status-${s.status}` }, t(`status.${s.status}`)),
              channelChip(s),
              h(
                "span",
                { class: `row-assignee${s.assignee ? "" : " none"}` },
                s.assignee ? `👤 ${s.assignee.name}` : t("list.unassigned"),
              ),
              labelChips(s.labels),
              rowMarkers(s),
              unread
                ? h(
                    "span",
                    { class: "row-badge", "aria-label": t("list.unread", { n: unread }) },
                    unread > 99 ? "99+" : String(unread),
                  )
                : null,
            ),
          ),
        ),
      );
    }),
  );
}

/** Cheap update of only the previews when someone starts or stops typing. */
function renderListTyping() {
  if (!ui.list) return;
  for (const a of ui.list.querySelectorAll(".ticket-row")) {
    const s = state.tickets.get(a.dataset.ticketId);
    if (!s) continue;
    const typing = typingText(s.ticketId);
    const p = previewOf(s);
    a.querySelector(".row-preview").replaceWith(previewEl(typing || p.text, typing ? "typing" : p.cls));
  }
}

// ---------------------------------------------------------------- conversation

function leaveTicket() {
  stopMyTyping();
  if (ui.recorder) ui.recorder.cancel();
  if (ui.reply && state.currentId) state.drafts.set(state.currentId, ui.reply.value);
  state.currentId = null;
  state.current = null;
}

async function openTicket(id) {
  if (id === state.currentId && (state.current || !id)) return;
  if (ui.reply && state.currentId) state.drafts.set(state.currentId, ui.reply.value);
  stopMyTyping();
  state.currentId = id;
  state.current = id
    ? { id, messages: new Map(), pending: new Map(), loaded: false, error: null, lastReadSent: 0 }
    : null;
  if (state.current && outbox) for (const p of outbox.forTicket(id)) state.current.pending.set(p.cmid, p);
  if (state.current) for (const p of uploadsWaiting.values()) if (p.ticketId === id) state.current.pending.set(p.cmid, p);
  state.mode = "reply";
  state.showInfo = false;
  if (ui.inbox) ui.inbox.classList.toggle("has-ticket", Boolean(id));
  buildConversation();
  renderList();
  if (!id) return;
  const cur = state.current;
  try {
    const r = await api.ticket(id);
    if (state.current !== cur) return;
    cur.loaded = true;
    for (const m of r.messages || []) addMessage(cur, m);
    cur.lastReadSent = Math.max(0, ...[...cur.messages.keys()]);
    const s = upsertTicket(r.ticket);
    if (s) s.unread = 0;
  } catch (e) {
    if (state.current !== cur) return;
    if (e.status === 401) return;
    cur.error = e.status === 404 ? t("ticket.notFound") : errorText(e);
  }
  renderConversation({ toBottom: true });
  renderList();
  renderBadges();
  maybeMarkRead();
  if (cur.loaded) {
    focusReply();
    loadRelated(cur);
    loadContext(cur);
  }
}

/** Focus the reply box, unless the operator is typing somewhere else (the search box). */
function focusReply() {
  const active = document.activeElement;
  if (!ui.reply || ui.reply.disabled || (active !== ui.reply && isTextField(active))) return;
  ui.reply.focus({ preventScroll: true });
}

/** After login: the open ticket's reply box, else the first ticket (so j/k and Enter work). */
function focusAfterLogin() {
  if (state.current) return focusReply();
  const active = document.activeElement;
  if (active && active !== document.body && active !== document.documentElement) return;
  const first = ui.list && ui.list.querySelector("a.ticket-row");
  if (first) first.focus({ preventScroll: true });
}

/** j/k, arrows: the next or previous ticket in the list as shown. */
function stepTicket(delta) {
  if (state.view !== "tickets" || !ui.list) return false;
  const ids = sortedTickets().map((x) => x.ticketId);
  const id = stepId(ids, state.currentId, delta);
  if (!id) return false;
  if (id !== state.currentId) location.hash = `#/tickets/${encodeURIComponent(id)}`;
  const row = ui.list.querySelector(`a.ticket-row[data-ticket-id="${CSS.escape(id)}"]`);
  if (row) row.scrollIntoView({ block: "nearest" });
  return true;
}

function openShortcuts() {
  showShortcuts({
    title: t("keys.title"),
    close: t("keys.close"),
    rows: [
      [["j", "↓"], t("keys.next")],
      [["k", "↑"], t("keys.prev")],
      [["Enter"], t("keys.send")],
      [["Shift", "Enter"], t("keys.newline")],
      [["Esc"], t("keys.leave")],
      [["?"], t("keys.help")],
    ],
  });
}

/** The shop's orders of a signed-in customer (TRUSTDESK_CONTEXT_URL), after the ticket. */
async function loadContext(cur) {
  const s = state.tickets.get(cur.id);
  if (!s || !s.customer_id) return;
  try {
    const r = await request("GET", `/api/admin/support/ticket/${encodeURIComponent(cur.id)}/context`);
    if (state.current !== cur) return;
    cur.context = r;
  } catch {
    if (state.current !== cur) return;
    cur.context = { orders: [], error: "unavailable" };
  }
  renderInfo();
}

/** The same customer's other conversations (when the server knows them). */
async function loadRelated(cur) {
  try {
    const r = await api.related(cur.id);
    if (state.current !== cur) return;
    cur.related = (r.tickets || []).filter((x) => x.ticketId !== cur.id);
    renderInfo();
  } catch {
    /* optional: older servers do not have it */
  }
}

/** After a reconnect: fetch the open ticket again, merging by id. */
async function refreshCurrent() {
  const cur = state.current;
  if (!cur || !cur.loaded) return;
  try {
    const r = await api.ticket(cur.id);
    if (state.current !== cur) return;
    for (const m of r.messages || []) addMessage(cur, m);
    upsertTicket(r.ticket);
    renderConversation();
  } catch {
    /* next reconnect tries again */
  }
}

function addMessage(cur, m) {
  noteMax(m.id);
  if (m.client_msg_id) outboxAcked(m.client_msg_id);
  cur.messages.set(m.id, m);
  if (m.client_msg_id && cur.pending.has(m.client_msg_id)) {
    cur.pending.delete(m.client_msg_id);
    return;
  }
  // The live echo can beat the HTTP answer; without an id to match, match my own text.
  if (!state.me || m.operator_id === null || m.operator_id === undefined) {
    if (m.sender_type !== "system") return;
  } else if (m.operator_id !== state.me.id) {
    return;
  }
  const mode = m.kind === "note" ? "note" : m.sender_type === "system" ? "system" : "reply";
  for (const [cmid, p] of cur.pending) {
    if (p.mode === mode && p.text === m.message && !p.failed) {
      cur.pending.delete(cmid);
      break;
    }
  }
}

function maybeMarkRead() {
  const cur = state.current;
  if (!cur || !cur.loaded || !isViewing(cur.id)) return;
  const s = state.tickets.get(cur.id);
  let last = 0;
  for (const id of cur.messages.keys()) if (id > last) last = id;
  if (s && s.unread) {
    s.unread = 0;
    renderList();
    renderBadges();
  }
  if (last > cur.lastReadSent) {
    cur.lastReadSent = last;
    const frame = { type: "read", ticketId: cur.id, last_read_id: last };
    if (!(live && live.send(frame))) api.read(cur.id, last).catch(() => {});
  }
}

function buildConversation() {
  if (!ui.convPane) return;
  if (ui.recorder) ui.recorder.cancel();
  for (const k of ["convHeader", "msgs", "typingEl", "composer", "reply", "closedNote", "canned", "recorder", "stagedList"]) {
    ui[k] = null;
  }
  if (!state.currentId) {
    replaceChildren(
      ui.convPane,
      h(
        "div",
        { class: "conv-empty" },
        h("div", { class: "conv-empty-icon", "aria-hidden": "true" }, "💬"),
        h("h2", null, t("empty.title")),
        h("p", { class: "muted" }, t("empty.text")),
      ),
    );
    clear(ui.infoPane);
    ui.inbox.classList.remove("show-info");
    return;
  }
  ui.convHeader = h("div", { class: "conv-header" });
  ui.msgs = h("div", { class: "messages", role: "log", "aria-live": "polite", "aria-relevant": "additions" });
  ui.typingEl = h("div", { class: "typing-line", "aria-live": "polite" });
  ui.closedNote = h("div", { class: "closed-note", hidden: true }, t("ticket.closedBanner"));
  ui.composer = buildComposer();
  replaceChildren(
    ui.convPane,
    ui.convHeader,
    h("div", { class: "messages-scroll" }, ui.msgs, ui.typingEl),
    ui.closedNote,
    ui.composer,
  );
  ui.msgsScroll = ui.convPane.querySelector(".messages-scroll");
  ui.msgsScroll.addEventListener("scroll", () => {
    if (ui.msgsScroll.scrollTop < 4 && ui.msgs) ui.msgsScroll.dataset.top = "1";
  });
  replaceChildren(ui.msgs, h("div", { class: "conv-loading" }, t("list.loading")));
  renderConvHeader();
  renderInfo();
  renderComposerState(); // disabled until the history is loaded
}

function renderConversation({ toBottom = false } = {}) {
  if (!ui.msgs) return;
  renderConvHeader();
  renderMessages({ toBottom });
  renderTyping();
  renderInfo();
  renderComposerState();
}

function renderConvHeader() {
  if (!ui.convHeader || !state.current) return;
  const s = state.tickets.get(state.currentId);
  const back = h(
    "a",
    { href: "#/tickets", class: "icon-btn back-btn", "aria-label": t("ticket.back"), title: t("ticket.back") },
    "←",
  );
  if (!s) {
    replaceChildren(
      ui.convHeader,
      back,
      h("div", { class: "conv-title" }, h("h2", null, state.currentId), state.current.error ? h("span", { class: "muted" }, state.current.error) : null),
    );
    return;
  }
  const name = customerName(s);
  const online = Boolean(s.visitor && s.visitor.online);
  const mine = s.assignee && s.assignee.id === state.me.id;
  const actions = h("div", { class: "conv-actions" });
  if (!mine && s.status === "open") {
    actions.append(
      h("button", { type: "button", class: "btn soft", onclick: () => assign(state.me.id) }, `✋ ${t("ticket.take")}`),
    );
  }
  if (s.status === "open") {
    actions.append(
      h("button", { type: "button", class: "btn danger-soft", onclick: closeTicket }, t("ticket.close")),
    );
  } else {
    actions.append(h("button", { type: "button", class: "btn primary", onclick: reopenTicket }, t("ticket.reopen")));
  }
  actions.append(mergeButton(s, labelCtx));
  actions.append(
    h(
      "button",
      {
        type: "button",
        class: "icon-btn info-btn",
        "aria-label": t("ticket.info"),
        title: t("ticket.info"),
        "aria-expanded": state.showInfo ? "true" : "false",
        onclick: () => {
          state.showInfo = !state.showInfo;
          ui.inbox.classList.toggle("show-info", state.showInfo);
          renderConvHeader();
        },
      },
      "ℹ︎",
    ),
  );
  const sub = [
    h("span", { class: `pill status-${s.status}` }, t(`status.${s.status}`)),
    h("span", { class: `online-text ${online ? "on" : "off"}` }, online ? t("info.online") : t("info.offline")),
  ];
  replaceChildren(
    ui.convHeader,
    back,
    avatar(name, { size: "lg", online, seed: s.ticketId }),
    h(
      "div",
      { class: "conv-title" },
      h("h2", null, name, h("span", { class: "conv-id" }, s.ticketId)),
      h("div", { class: "conv-sub" }, sub, s.assignee ? h("span", { class: "muted" }, `👤 ${s.assignee.name}`) : null, headerMarker(s)),
    ),
    actions,
    ticketLabels(s, labelCtx),
  );
  ui.inbox.classList.toggle("show-info", state.showInfo);
}

function receiptFor() {
  return h("span", { class: "receipt" });
}

/** Consecutive messages of one author (within 5 minutes) share one name label. */
function authorKey(m) {
  return m.sender_type === "system" ? null : `${m.kind}|${m.sender_type}|${m.operator_id ?? ""}|${m.sender_name}`;
}

function messageEl(m, s, cont = false) {
  const time = h("time", { datetime: m.created_at, title: fullWhen(m.created_at, getLang()) }, hhmm(m.created_at));
  const base = { dataset: { id: String(m.id) } };
  const author = (...parts) => (cont ? null : h("div", { class: "msg-author" }, ...parts));
  const cls = cont ? " cont" : "";
  if (m.sender_type === "system") {
    // A notice, also an operators-only one (assignment, priority, snooze: kind note) is an
    // event in the ticket's life, drawn as a pill, not as a note someone wrote.
    const internal = m.kind === "note";
    return h(
      "div",
      { ...base, class: `msg system${internal ? " internal" : ""}`, title: internal ? t("notice.internal") : null },
      h("div", { class: "system-pill" }, noticeText(m)),
      h("div", { class: "msg-meta" }, time),
    );
  }
  if (m.kind === "note") {
    return h(
      "div",
      { ...base, class: `msg note${cls}` },
      author(t("sender.note"), h("span", { class: "muted" }, ` · ${m.sender_name}`)),
      h("div", { class: "bubble" }, linkify(noticeText(m))),
      h("div", { class: "msg-meta" }, time),
    );
  }
  const att = m.attachment ? ` has-att with-${m.attachment.kind}` : "";
  const body = () =>
    m.attachment
      ? h("div", { class: "bubble att-bubble" }, attachmentBody(m, linkify))
      : h("div", { class: "bubble" }, linkify(m.message));
  if (m.sender_type === "admin") {
    const mine = m.operator_id === state.me.id;
    return h(
      "div",
      { ...base, class: `msg admin${mine ? " mine" : ""}${cls}${att}` },
      author(m.sender_name, mine ? h("span", { class: "muted" }, ` (${t("you")})`) : null, " 👤"),
      body(),
      h("div", { class: "msg-meta" }, time, receiptFor(), state.me.role === "admin" && !m.attachment ? kbFromAnswer(m) : null),
    );
  }
  if (m.sender_type === "bot") {
    return h(
      "div",
      { ...base, class: `msg bot${cls}` },
      author(t("sender.bot")),
      h("div", { class: "bubble" }, linkify(m.message)),
      h("div", { class: "msg-meta" }, time),
    );
  }
  return h(
    "div",
    { ...base, class: `msg customer${cls}${att}` },
    author(t("sender.guest", { name: m.sender_name ? guestName(m.sender_name) : customerName(s) })),
    body(),
    h("div", { class: "msg-meta" }, time),
  );
}

function pendingEl(p) {
  if (p.upload) return p.el || (p.el = uploadPendingEl(p));
  const cls = p.mode === "note" ? "note" : p.mode === "system" ? "system" : "admin mine";
  // (outbox.js) failed: refused for good; attempts without failed: waiting for the server.
  const waiting = !p.failed && p.attempts > 0 && !p.sending;
  const pstate = p.failed ? "failed" : waiting ? "waiting" : "sending";
  const status = p.failed
    ? h(
        "span",
        { class: "pending-status" },
        h("button", { type: "button", class: "link-btn failed", onclick: () => sendPending(p) }, `⚠ ${t("ticket.failed")}`),
        h("button", { type: "button", class: "link-btn muted-link", onclick: () => discardPending(p) }, t("ticket.discard")),
      )
    : waiting
      ? h(
          "span",
          { class: "pending-status waiting", role: "status" },
          h("span", { class: "receipt pending", "aria-hidden": "true" }, "🕓"),
          ` ${t("ticket.waiting")} `,
          h("button", { type: "button", class: "link-btn", onclick: () => sendPending(p) }, t("ticket.retryNow")),
        )
      : h("span", { class: "receipt pending", title: t("ticket.sending") }, "🕓");
  const data = { dataset: { cmid: p.cmid, pending: pstate } };
  if (p.mode === "system") {
    return h("div", { class: `msg ${cls} pending`, ...data }, h("div", { class: "system-pill" }, p.text), h("div", { class: "msg-meta" }, status));
  }
  return h(
    "div",
    { class: `msg ${cls} pending`, ...data },
    h("div", { class: "msg-author" }, p.mode === "note" ? t("sender.note") : state.me.name),
    h("div", { class: "bubble" }, p.text),
    h("div", { class: "msg-meta" }, status),
  );
}

function renderMessages({ toBottom = false } = {}) {
  const cur = state.current;
  if (!ui.msgs || !cur) return;
  if (!cur.loaded) {
    if (cur.error) replaceChildren(ui.msgs, h("div", { class: "conv-loading error" }, cur.error));
    return;
  }
  const scroller = ui.msgsScroll;
  const nearBottom = scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < 120;
  const s = state.tickets.get(cur.id);
  const lang = getLang();
  // Elements are kept per message id and only appended to, so a new message does not
  // disturb what the operator is reading or selecting.
  if (!cur.els) cur.els = new Map();
  if (!cur.days) cur.days = new Map();
  const items = [];
  let lastDay = null;
  let prev = null;
  const msgs = [...cur.messages.values()].sort((a, b) => a.id - b.id);
  for (const m of msgs) {
    const day = new Date(m.created_at).toDateString();
    if (day !== lastDay) {
      if (!cur.days.has(day)) {
        cur.days.set(day, h("div", { class: "day-sep" }, h("span", null, dayLabel(m.created_at, lang))));
      }
      items.push(cur.days.get(day));
      lastDay = day;
      prev = null;
    }
    const key = authorKey(m);
    const cont =
      prev !== null && key !== null && authorKey(prev) === key && ts(m.created_at) - ts(prev.created_at) < 5 * 60_000;
    let cached = cur.els.get(m.id);
    if (!cached || cached.cont !== cont) {
      cached = { el: messageEl(m, s, cont), cont };
      cur.els.set(m.id, cached);
    }
    updateReceipt(cached.el, m, s);
    items.push(cached.el);
    prev = m;
  }
  for (const p of cur.pending.values()) items.push(pendingEl(p));
  const kids = ui.msgs.children;
  let i = 0;
  while (i < items.length && i < kids.length && kids[i] === items[i]) i += 1;
  while (kids.length > i) ui.msgs.removeChild(ui.msgs.lastChild);
  for (const el of items.slice(i)) ui.msgs.appendChild(el);
  if (toBottom || nearBottom) scroller.scrollTop = scroller.scrollHeight;
}

/** ✓ delivered / ✓✓ read by the customer, updated in place on read frames. */
function updateReceipt(el, m, s) {
  const r = el.querySelector(".receipt");
  if (!r || m.sender_type !== "admin" || m.kind === "note") return;
  const read = Boolean(s && m.id <= (s.customer_last_read_id || 0));
  if (r.classList.contains("read") === read && r.textContent) return;
  r.classList.toggle("read", read);
  r.textContent = read ? "✓✓" : "✓";
  const label = read ? t("ticket.read") : t("ticket.sent");
  r.title = label;
  r.setAttribute("aria-label", label);
}

function renderTyping() {
  if (!ui.typingEl) return;
  const m = state.typing.get(state.currentId);
  if (!m || !m.size) {
    clear(ui.typingEl);
    ui.typingEl.classList.remove("on");
    return;
  }
  const s = state.tickets.get(state.currentId);
  const names = [...m.values()].map((v) => (v.sender_type === "customer" ? `👥 ${customerName(s)}` : `👤 ${v.name}`));
  const scroller = ui.msgsScroll;
  const nearBottom = scroller && scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < 120;
  replaceChildren(
    ui.typingEl,
    h("span", { class: "typing-dots", "aria-hidden": "true" }, h("i"), h("i"), h("i")),
    h("span", { class: "typing-text" }, t("ticket.typing", { name: names.join(", ") })),
  );
  ui.typingEl.classList.add("on");
  if (nearBottom) scroller.scrollTop = scroller.scrollHeight;
}

// ---------------------------------------------------------------- customer panel

function renderInfo() {
  if (!ui.infoPane) return;
  const s = state.tickets.get(state.currentId);
  if (!s) {
    clear(ui.infoPane);
    ui.assignSelect = null;
    ui.teamList = null;
    return;
  }
  const lang = getLang();
  const name = customerName(s);
  const online = Boolean(s.visitor && s.visitor.online);
  const pageUrl = s.visitor && s.visitor.page_url;
  const href = pageUrl && safeHref(pageUrl);
  const ua = s.visitor && s.visitor.user_agent;
  const dl = (rows) =>
    h(
      "dl",
      { class: "facts" },
      rows.filter(Boolean).map(([k, v]) => [h("dt", null, k), h("dd", null, v)]),
    );

  ui.assignSelect = h("select", { id: "assign-select", class: "select", "aria-label": t("info.assignLabel") });
  ui.assignSelect.addEventListener("change", () => {
    const v = ui.assignSelect.value;
    assign(v ? Number(v) : null);
  });
  ui.teamList = h("ul", { class: "team-list" });

  const keep = ui.infoPane.contains(document.activeElement) ? document.activeElement : null;
  replaceChildren(
    ui.infoPane,
    h(
      "div",
      { class: "info-close-row" },
      h(
        "button",
        {
          type: "button",
          class: "icon-btn info-close",
          "aria-label": t("ticket.hideInfo"),
          title: t("ticket.hideInfo"),
          onclick: () => {
            state.showInfo = false;
            ui.inbox.classList.remove("show-info");
            renderConvHeader();
          },
        },
        "✕",
      ),
    ),
    h(
      "section",
      { class: "info-card customer-card" },
      avatar(name, { size: "xl", online, seed: s.ticketId }),
      nameBlock(s, name),
      h("p", { class: `online-text ${online ? "on" : "off"}`, dataset: { visitorOnline: online ? "1" : "0" } }, online ? t("info.online") : t("info.offline")),
      dl([
        s.customer_email
          ? [t("info.email"), h("a", { href: `mailto:${s.customer_email}` }, s.customer_email)]
          : null,
        s.customer_id ? [t("info.customerId"), s.customer_id] : null,
        // An email or Telegram customer has no page and no browser: where they write from.
        channelKey(s.channel) ? [t("info.channel"), t(channelKey(s.channel))] : null,
        channelKey(s.channel) ? null : [
          t("info.page"),
          pageUrl
            ? href
              ? h("a", { href, target: "_blank", rel: "noopener noreferrer", class: "page-url", title: pageUrl }, pageUrl)
              : h("span", { class: "page-url" }, pageUrl)
            : h("span", { class: "muted" }, t("info.unknown")),
        ],
        channelKey(s.channel)
          ? null
          : [t("info.browser"), ua ? h("span", { title: ua }, describeBrowser(ua)) : h("span", { class: "muted" }, t("info.unknown"))],
      ]),
    ),
    relatedCard(), // the customer's conversations in every channel, under the customer
    h(
      "section",
      { class: "info-card" },
      h("h3", null, t("info.ticket")),
      dl([
        [t("info.ticket"), s.ticketId],
        [t("info.status"), h("span", { class: `pill status-${s.status}` }, t(`status.${s.status}`))],
        [t("info.created"), fullWhen(s.created_at, lang)],
      ]),
      h("label", { for: "assign-select", class: "field-label" }, t("info.assignee")),
      ui.assignSelect,
    ),
    ticketRoutingCard(s, labelCtx),
    ordersCard(),
    ratingCard(s),
    h("section", { class: "info-card" }, h("h3", null, t("info.team")), ui.teamList),
    dataCard(s),
  );
  // (the kept cards, routing.js and labels, are moved into the new pane: moving a node
  // blurs it, so the element that had the focus gets it back)
  if (keep && keep.isConnected && document.activeElement !== keep) keep.focus({ preventScroll: true });
  renderAssign();
  renderTeamList();
}

/** The customer's name, with "edit" for any operator (PATCH …/customer; "" clears it). */
function nameBlock(s, name) {
  const edit = state.nameEdit && state.nameEdit.ticketId === s.ticketId ? state.nameEdit : null;
  if (!edit) {
    return h(
      "div",
      { class: "customer-name-row" },
      h("h3", { class: "customer-name" }, name),
      h(
        "button",
        {
          type: "button",
          class: "icon-btn name-edit-btn",
          "aria-label": t("info.editName"),
          title: t("info.editName"),
          onclick: () => {
            state.nameEdit = { ticketId: s.ticketId, value: s.customer_own_name || "", focus: true };
            renderInfo();
          },
        },
        "✎",
      ),
    );
  }
  const input = h("input", {
    id: "customer-name-input",
    class: "input small",
    maxlength: 100,
    autocomplete: "off",
    placeholder: t("info.namePlaceholder"),
    "aria-label": t("info.nameLabel"),
  });
  input.value = edit.value;
  input.addEventListener("input", () => (edit.value = input.value));
  const cancel = () => {
    state.nameEdit = null;
    renderInfo();
    const btn = ui.infoPane && ui.infoPane.querySelector(".name-edit-btn");
    if (btn) btn.focus();
  };
  input.addEventListener("keydown", (ev) => {
    if (ev.key === "Escape") {
      ev.preventDefault();
      ev.stopPropagation();
      cancel();
    }
  });
  const form = h(
    "form",
    { class: "name-edit", novalidate: true },
    input,
    h("button", { type: "submit", class: "btn primary small" }, t("info.nameSave")),
    h("button", { type: "button", class: "btn ghost small", onclick: cancel }, t("info.nameCancel")),
  );
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    try {
      const r = await request("PATCH", `/api/admin/support/ticket/${encodeURIComponent(s.ticketId)}/customer`, {
        name: input.value,
      });
      state.nameEdit = null;
      onTicket(r.ticket);
      renderInfo();
      renderConvHeader();
    } catch (e) {
      toast(errorText(e), "warn");
    }
  });
  if (edit.focus) {
    edit.focus = false;
    requestAnimationFrame(() => input.isConnected && input.focus());
  }
  return form;
}

/** "Заказы": what the shop's hook answered (nothing at all when no hook is set). */
function ordersCard() {
  const ctx = state.current && state.current.context;
  if (!ctx || (!ctx.error && !(ctx.orders || []).length)) return null;
  const lang = getLang();
  const money = (o) => {
    const n = Number(o.total);
    if (o.total == null || !Number.isFinite(n)) return o.total || "";
    try {
      return new Intl.NumberFormat(lang, o.currency ? { style: "currency", currency: o.currency } : {}).format(n);
    } catch {
      return `${new Intl.NumberFormat(lang).format(n)} ${o.currency || ""}`.trim();
    }
  };
  const day = (d) => {
    const when = d ? new Date(d) : null;
    return when && !Number.isNaN(when.getTime())
      ? new Intl.DateTimeFormat(lang, {
          day: "numeric",
          month: "short",
          year: "numeric",
          ...(/^\d{4}-\d{2}-\d{2}$/.test(d) ? { timeZone: "UTC" } : {}), // a bare date: that day
        }).format(when)
      : d || "";
  };
  const rows = (ctx.orders || []).map((o) => {
    const href = o.url && safeHref(o.url);
    return h(
      "li",
      { class: "order" },
      href
        ? h("a", { href, target: "_blank", rel: "noopener noreferrer", class: "order-number" }, o.number)
        : h("span", { class: "order-number" }, o.number),
      o.status ? h("span", { class: "pill order-status" }, o.status) : null,
      h("span", { class: "order-total" }, money(o)),
      h("span", { class: "muted order-date" }, day(o.date)),
    );
  });
  return h(
    "section",
    { class: "info-card orders-card" },
    h("h3", null, t("info.orders")),
    ctx.error ? h("p", { class: "muted orders-error", title: ctx.error }, t("info.ordersError")) : h("ul", { class: "order-list" }, rows),
  );
}

function ratingCard(s) {
  const r = s.rating;
  if (!r || !r.score) return null;
  const score = Math.max(0, Math.min(5, Math.round(r.score)));
  const stars = [1, 2, 3, 4, 5].map((i) => h("span", { class: `star${i <= score ? " on" : ""}`, "aria-hidden": "true" }, "★"));
  return h(
    "section",
    { class: "info-card rating-card", dataset: { score: String(score) } },
    h("h3", null, t("info.rating")),
    h(
      "div",
      { class: "rating" },
      h("span", { class: "stars", role: "img", "aria-label": t("info.ratingLabel", { n: score }) }, stars),
      h("span", { class: "rating-score" }, `${score}/5`),
      h("span", { class: "rating-word" }, t(`rating.${score}`)),
    ),
    r.comment
      ? h("blockquote", { class: "rating-comment" }, r.comment)
      : h("p", { class: "muted rating-nocomment" }, t("info.noComment")),
  );
}

function dataCard(s) {
  if (!state.me || state.me.role !== "admin") return null;
  const exportBtn = h(
    "button",
    { type: "button", class: "btn ghost small" },
    h("span", { "aria-hidden": "true" }, "⬇ "),
    t("info.export"),
  );
  exportBtn.addEventListener("click", () => exportCustomer(s.ticketId, exportBtn));
  return h(
    "section",
    { class: "info-card data-card" },
    h("h3", null, t("info.data")),
    h("p", { class: "muted data-help" }, t("info.dataHelp")),
    h(
      "div",
      { class: "data-actions" },
      exportBtn,
      h(
        "button",
        { type: "button", class: "btn danger-soft small", onclick: () => deleteCustomer(s) },
        h("span", { "aria-hidden": "true" }, "🗑 "),
        t("info.delete"),
      ),
    ),
  );
}

function relatedCard() {
  return customerHistoryCard(state.current && state.current.related, getLang()); // customer-history.js
}

function renderAssign() {
  const sel = ui.assignSelect;
  if (!sel) return;
  const s = state.tickets.get(state.currentId);
  if (!s) return;
  const current = s.assignee ? s.assignee.id : null;
  const ops = [...state.operators.values()].filter((o) => o.active !== false || o.id === current);
  if (current && !ops.some((o) => o.id === current)) ops.push({ id: current, name: s.assignee.name });
  ops.sort((a, b) => a.name.localeCompare(b.name));
  replaceChildren(
    sel,
    h("option", { value: "" }, t("info.nobody")),
    ops.map((o) =>
      h(
        "option",
        { value: String(o.id) },
        `${o.name}${o.id === state.me.id ? ` (${t("you")})` : ""}${o.online ? " ●" : ""}`,
      ),
    ),
  );
  sel.value = current ? String(current) : "";
}

function renderTeamList() {
  if (!ui.teamList) return;
  const ops = [...state.operators.values()].filter((o) => o.active !== false);
  ops.sort((a, b) => Number(Boolean(b.online)) - Number(Boolean(a.online)) || a.name.localeCompare(b.name));
  replaceChildren(
    ui.teamList,
    ops.map((o) =>
      h(
        "li",
        { class: "team-row", dataset: { operatorId: String(o.id), online: o.online ? "1" : "0" } },
        avatar(o.name, { online: Boolean(o.online), seed: o.email || o.name }),
        h("span", { class: "team-name" }, o.name, o.id === state.me.id ? h("span", { class: "muted" }, ` (${t("you")})`) : null),
        h("span", { class: `online-text ${o.online ? "on" : "off"}` }, o.online ? t("info.online") : t("info.offline")),
      ),
    ),
  );
}

// ---------------------------------------------------------------- actions

async function assign(operatorId) {
  const id = state.currentId;
  if (!id) return;
  try {
    const r = await api.assign(id, operatorId);
    onTicket(r.ticket);
  } catch (e) {
    toast(errorText(e), "warn");
    renderAssign();
  }
}

async function closeTicket() {
  const id = state.currentId;
  try {
    const r = await api.close(id);
    applyStatusResult(id, r);
  } catch (e) {
    toast(errorText(e), "warn");
  }
}

async function reopenTicket() {
  const id = state.currentId;
  try {
    const r = await api.reopen(id);
    applyStatusResult(id, r);
  } catch (e) {
    toast(errorText(e), "warn");
  }
}

function applyStatusResult(id, r) {
  if (r.message && state.current && state.current.id === id) addMessage(state.current, r.message);
  if (r.message) onMessage(r.message);
  if (r.ticket) onTicket(r.ticket);
  renderConversation();
}

// ---------------------------------------------------------------- composer

function buildComposer() {
  const tabs = ["reply", "note", "system"].map((mode) =>
    h(
      "button",
      {
        type: "button",
        role: "tab",
        class: "mode-tab",
        dataset: { mode },
        "aria-selected": mode === state.mode ? "true" : "false",
        onclick: () => setMode(mode),
      },
      t(`composer.${mode}Tab`),
    ),
  );
  ui.modeTabs = tabs;
  ui.replyLabel = h("label", { for: "reply-box", class: "sr-only" }, t("composer.reply"));
  ui.reply = h("textarea", {
    id: "reply-box",
    rows: 2,
    "aria-describedby": "reply-counter",
    "aria-autocomplete": "list",
    "aria-controls": "canned-pop",
  });
  ui.reply.value = state.drafts.get(state.currentId) || "";
  ui.canned = h("ul", { id: "canned-pop", class: "canned-pop", role: "listbox", "aria-label": t("composer.canned"), hidden: true });
  ui.sendBtn = h("button", { type: "submit", class: "btn primary send-btn" }, t("composer.send"));
  ui.composerHint = h("span", { class: "composer-hint" });
  ui.composerError = h("span", { class: "composer-error", role: "alert" });
  ui.counter = h("span", { id: "reply-counter", class: "reply-counter", hidden: true, "aria-live": "polite" });
  ui.fileInput = h("input", {
    type: "file",
    class: "file-input",
    multiple: true,
    accept: ACCEPT,
    hidden: true,
    tabindex: "-1",
  });
  ui.fileInput.addEventListener("change", () => {
    const files = [...(ui.fileInput.files || [])];
    ui.fileInput.value = "";
    stageFiles(files, false);
  });
  ui.attachBtn = h(
    "button",
    {
      type: "button",
      class: "icon-btn tool-btn attach-btn",
      "aria-label": t("composer.attach"),
      title: t("composer.attachHint"),
      onclick: () => ui.fileInput && ui.fileInput.click(),
    },
    "📎",
  );
  ui.micBtn = h(
    "button",
    {
      type: "button",
      class: "icon-btn tool-btn mic-btn",
      "aria-label": t("composer.voice"),
      title: t("composer.voice"),
      hidden: !recordingSupported(),
      onclick: () => {
        ui.composerError.textContent = "";
        stopMyTyping();
        if (ui.recorder) ui.recorder.start();
      },
    },
    "🎤",
  );
  ui.stagedList = h("ul", { class: "staged", "aria-label": t("composer.staged"), hidden: true });
  const recorder = new Recorder({
    onSend: (blob, name) => sendVoice(blob, name),
    onOpen: () => form.classList.add("recording"),
    onClose: () => {
      form.classList.remove("recording");
      if (ui.reply && ui.composer === form) ui.reply.focus();
    },
    onError: (text) => {
      if (ui.composer === form) ui.composerError.textContent = text;
    },
  });
  ui.recorder = recorder;
  const kbTool = kbComposerTool(() => ui.reply); // "📚": a link to a help-center article (kb.js)
  const form = h(
    "form",
    { class: "composer", novalidate: true },
    h("div", { class: "mode-tabs", role: "tablist", "aria-label": t("composer.modes") }, tabs),
    ui.stagedList,
    h("div", { class: "composer-box" }, ui.canned, kbTool.box, ui.replyLabel, ui.reply),
    recorder.el,
    h(
      "div",
      { class: "composer-foot" },
      h("div", { class: "composer-tools" }, ui.attachBtn, ui.micBtn, kbTool.button),
      ui.composerHint,
      ui.composerError,
      ui.counter,
      ui.sendBtn,
    ),
    ui.fileInput,
  );
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    send();
  });
  ui.reply.addEventListener("keydown", onReplyKeydown);
  ui.reply.addEventListener("input", onReplyInput);
  ui.reply.addEventListener("paste", onPaste);
  ui.reply.addEventListener("blur", () => {
    setTimeout(() => hideCanned(), 150);
    stopMyTyping();
  });
  requestAnimationFrame(() => autoGrow());
  renderStaged();
  return form;
}

function setMode(mode) {
  state.mode = mode;
  renderComposerState();
  if (mode !== "reply") stopMyTyping();
  ui.reply.focus();
}

function renderComposerState() {
  if (!ui.composer) return;
  const mode = state.mode;
  ui.composer.classList.remove("mode-reply", "mode-note", "mode-system");
  ui.composer.classList.add(`mode-${mode}`);
  for (const tab of ui.modeTabs) tab.setAttribute("aria-selected", tab.dataset.mode === mode ? "true" : "false");
  ui.replyLabel.textContent = t(mode === "reply" ? "composer.reply" : mode === "note" ? "composer.note" : "composer.system");
  ui.reply.placeholder = t(`composer.placeholder.${mode}`);
  ui.sendBtn.textContent = t(mode === "reply" ? "composer.send" : mode === "note" ? "composer.addNote" : "composer.sendSystem");
  ui.composerHint.textContent = t(`composer.hint.${mode}`);
  const s = state.tickets.get(state.currentId);
  const loaded = state.current && state.current.loaded;
  ui.reply.disabled = !loaded;
  ui.sendBtn.disabled = !loaded;
  ui.attachBtn.disabled = !loaded;
  ui.micBtn.disabled = !loaded;
  renderCounter();
  renderStaged();
  if (ui.closedNote) ui.closedNote.hidden = !(s && s.status === "closed");
}

/** From 80 % of the limit: "3 650 / 4 000"; past it, red, Send off and why (the text is
 * kept: the server would refuse it with 422 anyway, and nothing is cut silently). */
function renderCounter() {
  if (!ui.counter || !ui.reply) return;
  const len = ui.reply.value.trim().length;
  const c = counterState(len, MAX_LEN, getLang());
  ui.counter.hidden = !c;
  ui.counter.textContent = c ? c.text : "";
  ui.counter.classList.toggle("full", Boolean(c && c.full));
  ui.counter.classList.toggle("over", Boolean(c && c.over));
  const over = Boolean(c && c.over);
  const loaded = Boolean(state.current && state.current.loaded);
  ui.sendBtn.disabled = !loaded || over;
  ui.reply.setAttribute("aria-invalid", over ? "true" : "false");
  if (over) ui.composerError.textContent = t("composer.overBy", { n: len - MAX_LEN, max: MAX_LEN });
  else if (ui.composerError.dataset.over) ui.composerError.textContent = "";
  ui.composerError.dataset.over = over ? "1" : "";
}

function autoGrow() {
  const el = ui.reply;
  if (!el) return;
  el.style.height = "auto";
  el.style.height = `${Math.min(el.scrollHeight + 2, 220)}px`;
}

function onReplyKeydown(ev) {
  if (!ui.canned.hidden) {
    if (ev.key === "ArrowDown" || ev.key === "ArrowUp") {
      ev.preventDefault();
      moveCanned(ev.key === "ArrowDown" ? 1 : -1);
      return;
    }
    if ((ev.key === "Enter" && !ev.shiftKey) || ev.key === "Tab") {
      const active = ui.canned.querySelector("[aria-selected='true']");
      if (active) {
        ev.preventDefault();
        chooseCanned(Number(active.dataset.cannedId));
        return;
      }
    }
    if (ev.key === "Escape") {
      ev.preventDefault();
      hideCanned();
      return;
    }
  }
  if (ev.key === "Escape") {
    ev.preventDefault();
    ui.reply.blur(); // j/k work again
    return;
  }
  if (ev.key === "Enter" && !ev.shiftKey && !ev.isComposing && ev.keyCode !== 229) {
    ev.preventDefault();
    send();
  }
}

let lastTypingSent = 0;
let typingActive = false;
let typingIdleTimer = null;
let typingTicket = null;

function onReplyInput() {
  autoGrow();
  ui.composerError.textContent = "";
  renderCounter();
  if (state.currentId) state.drafts.set(state.currentId, ui.reply.value);
  updateCanned();
  if (state.mode !== "reply") return;
  if (!ui.reply.value.trim()) {
    stopMyTyping();
    return;
  }
  const now = Date.now();
  if (!typingActive || now - lastTypingSent > TYPING_SEND_EVERY_MS || typingTicket !== state.currentId) {
    if (live && live.send({ type: "typing", ticketId: state.currentId, active: true })) {
      typingActive = true;
      typingTicket = state.currentId;
      lastTypingSent = now;
    }
  }
  clearTimeout(typingIdleTimer);
  typingIdleTimer = setTimeout(stopMyTyping, TYPING_IDLE_MS);
}

function stopMyTyping() {
  clearTimeout(typingIdleTimer);
  if (typingActive && typingTicket && live) {
    live.send({ type: "typing", ticketId: typingTicket, active: false });
  }
  typingActive = false;
  typingTicket = null;
  lastTypingSent = 0;
}

function send() {
  const cur = state.current;
  if (!cur || !cur.loaded || !ui.reply) return;
  if (!ui.canned.hidden) hideCanned();
  const text = ui.reply.value.trim();
  const staged = state.mode === "reply" ? state.staged.get(cur.id) || [] : [];
  if (!text && !staged.length) {
    ui.reply.focus();
    return;
  }
  if (text.length > MAX_LEN) {
    renderCounter(); // says by how much; the text stays as it is
    return;
  }
  if (staged.length) {
    sendStaged(cur, staged, text);
    return;
  }
  const p = queueText(cur, text, state.mode);
  ui.reply.value = "";
  state.drafts.delete(cur.id);
  autoGrow();
  renderCounter();
  stopMyTyping();
  renderMessages({ toBottom: true });
  ui.reply.focus();
  outboxRunner.kick();
}

// Replies go over the dashboard's socket when it is up (no HTTP request per message); the
// server answers `ack` or an `error` naming the client_msg_id.
class SocketUnavailable extends Error {}
const socketSends = new Map(); // client_msg_id -> {resolve, reject, timer}
const SOCKET_ACK_MS = 8000;

function replyOverSocket(p) {
  return new Promise((resolve, reject) => {
    const frame = { type: "send", ticketId: p.ticketId, message: p.text, client_msg_id: p.cmid };
    if (p.mode === "note") frame.note = true;
    if (!live || !live.send(frame)) {
      reject(new SocketUnavailable("offline"));
      return;
    }
    const timer = setTimeout(() => {
      socketSends.delete(p.cmid);
      reject(new SocketUnavailable("no answer"));
    }, SOCKET_ACK_MS);
    socketSends.set(p.cmid, { resolve, reject, timer });
  });
}

function settleSocketSend(f) {
  const waiting = f.client_msg_id ? socketSends.get(f.client_msg_id) : null;
  if (!waiting) return false;
  socketSends.delete(f.client_msg_id);
  clearTimeout(waiting.timer);
  if (f.type === "ack") waiting.resolve({ message: f.message });
  else waiting.reject(new ApiError(f.retry_after ? 429 : 400, f.code, f.message, f.retry_after));
  return true;
}

function dropSocketSends() {
  // The socket closed: whatever had no answer is retried over HTTP (same client_msg_id).
  for (const [cmid, waiting] of socketSends) {
    clearTimeout(waiting.timer);
    waiting.reject(new SocketUnavailable("closed"));
    socketSends.delete(cmid);
  }
}

// The outbox (outbox.js): replies, notes and system notices wait in localStorage until the
// server has stored them, re-sent with backoff and at once when the server is back.
let outbox = null;
let outboxRunner = null;

function startOutbox() {
  stopOutbox();
  outbox = new Outbox({ owner: state.me.id }).load();
  outboxRunner = new OutboxRunner(outbox, { send: transmit, onSent: outboxSent, onFailed: outboxFailed, onChange: outboxChanged });
  outboxRunner.kick(); // what a previous page left
  restoreUploads();
}

function stopOutbox() {
  if (outboxRunner) outboxRunner.stop();
  for (const p of uploadsWaiting.values()) p.cancelled = true; // (kept for the next sign-in)
  uploadsWaiting.clear();
  outbox = null;
  outboxRunner = null;
}

function queueText(cur, text, mode) {
  const p = outbox.add({ ticketId: cur.id, mode, text });
  cur.pending.set(p.cmid, p);
  return p;
}

/** One attempt; the same client_msg_id every time (the server stores it once). */
function transmit(p) {
  if (p.mode === "system") return api.system(p.ticketId, p.text, p.cmid);
  return replyOverSocket(p).catch((e) => {
    if (!(e instanceof SocketUnavailable)) throw e;
    // Not sent, or sent without an answer: HTTP with the same client_msg_id (idempotent).
    return p.mode === "note" ? api.note(p.ticketId, p.text, p.cmid) : api.reply(p.ticketId, p.text, p.cmid);
  });
}

function outboxSent(p, r) {
  clearOutboxError(p.cmid);
  const now = state.current;
  if (now && now.id === p.ticketId) {
    now.pending.delete(p.cmid);
    if (r && r.message) addMessage(now, r.message);
  }
  if (r && r.message) onMessage(r.message);
}

function outboxFailed(p, e) {
  // Waiting for the server is shown on the message itself; only a refusal speaks here.
  if (isTransient(e) || !ui.composerError) return;
  const now = state.current;
  if (!now || now.id !== p.ticketId) return;
  ui.composerError.textContent = errorText(e);
  ui.composerError.dataset.outbox = p.cmid;
}

function outboxChanged() {
  const now = state.current;
  if (now && now.loaded) renderMessages();
}

function outboxAcked(cmid) {
  if (outbox && outbox.ack(cmid)) clearOutboxError(cmid);
}

function clearOutboxError(cmid) {
  const el = ui.composerError;
  if (!el || !el.dataset.outbox || (cmid && el.dataset.outbox !== cmid)) return;
  el.textContent = "";
  delete el.dataset.outbox;
}

/** The socket is back: send what waits now, and files that failed for want of a server. */
function outboxServerBack() {
  if (outboxRunner) outboxRunner.wake();
  for (const p of uploadsWaiting.values()) if (p.failed && p.transient) enqueueUpload(p);
}

function sendPending(p) {
  if (p.upload) return sendUpload(p);
  clearOutboxError(p.cmid);
  if (!outbox || !outbox.retry(p.cmid)) return;
  outboxRunner.kick();
}

function discardPending(p) {
  clearOutboxError(p.cmid);
  if (outbox) outbox.discard(p.cmid);
  const cur = state.current;
  if (cur && cur.pending.get(p.cmid) === p) cur.pending.delete(p.cmid);
  renderMessages();
}

// ---------------------------------------------------------------- files, screenshots, voice

function canAttach() {
  return Boolean(state.view === "tickets" && state.current && state.current.loaded && ui.composer);
}

function hasFiles(ev) {
  const types = ev.dataTransfer && ev.dataTransfer.types;
  return Boolean(types && [...types].includes("Files"));
}

function filesFrom(dt) {
  if (!dt) return [];
  const files = [...(dt.files || [])];
  if (files.length) return files;
  return [...(dt.items || [])]
    .filter((it) => it.kind === "file")
    .map((it) => it.getAsFile())
    .filter(Boolean);
}

function onPaste(ev) {
  if (!canAttach()) return;
  const files = filesFrom(ev.clipboardData);
  if (!files.length) return;
  ev.preventDefault();
  ev.stopPropagation();
  stageFiles(files, true);
}

/** A screenshot pasted while nothing (or the conversation) has focus still lands here. */
function onDocumentPaste(ev) {
  if (ev.defaultPrevented || !canAttach()) return;
  const target = ev.target;
  if (target && target.closest && target.closest("input, textarea, select, [contenteditable]")) return;
  onPaste(ev);
}

function setupDropZone(pane) {
  let depth = 0;
  pane.dataset.drop = t("composer.dropHere");
  const off = () => {
    depth = 0;
    pane.classList.remove("drop-active");
  };
  pane.addEventListener("dragenter", (ev) => {
    if (!hasFiles(ev) || !canAttach()) return;
    ev.preventDefault();
    depth += 1;
    pane.classList.add("drop-active");
  });
  pane.addEventListener("dragover", (ev) => {
    if (!hasFiles(ev) || !canAttach()) return;
    ev.preventDefault();
    ev.dataTransfer.dropEffect = "copy";
    pane.classList.add("drop-active");
  });
  pane.addEventListener("dragleave", (ev) => {
    if (!hasFiles(ev)) return;
    depth = Math.max(0, depth - 1);
    if (!depth) off();
  });
  pane.addEventListener("drop", (ev) => {
    if (!hasFiles(ev)) return;
    ev.preventDefault();
    off();
    if (canAttach()) stageFiles(filesFrom(ev.dataTransfer), false);
  });
}

const MAX_STAGED = 10;

function stageFiles(files, pasted) {
  const cur = state.current;
  if (!cur || !cur.loaded || !files.length) return;
  if (ui.recorder && ui.recorder.active) return;
  if (state.mode !== "reply") setMode("reply");
  const list = state.staged.get(cur.id) || [];
  const problems = [];
  for (const file of files) {
    const generic = !file.name || (pasted && /^image\.(png|jpe?g|gif|webp)$/i.test(file.name));
    const name = generic ? screenshotName(file) : file.name;
    const problem = checkFile(file);
    if (problem) {
      problems.push(`${name}: ${problem}`);
      continue;
    }
    if (list.length >= MAX_STAGED) {
      problems.push(t("composer.tooManyFiles", { n: MAX_STAGED }));
      break;
    }
    const image = /^image\/(png|jpeg|gif|webp)$/.test(file.type || "");
    list.push({ id: uuid(), file, name, url: image ? URL.createObjectURL(file) : null });
  }
  state.staged.set(cur.id, list);
  renderStaged();
  if (ui.composerError) ui.composerError.textContent = problems.join(" · ");
  if (ui.reply) ui.reply.focus();
}

function unstage(item) {
  const list = state.staged.get(state.currentId) || [];
  const next = list.filter((x) => x !== item);
  if (item.url) URL.revokeObjectURL(item.url);
  if (next.length) state.staged.set(state.currentId, next);
  else state.staged.delete(state.currentId);
  renderStaged();
  if (ui.reply) ui.reply.focus();
}

function renderStaged() {
  const el = ui.stagedList;
  if (!el) return;
  const list = state.staged.get(state.currentId) || [];
  el.hidden = !list.length;
  replaceChildren(
    el,
    list.map((item) =>
      h(
        "li",
        { class: "staged-item", title: item.name },
        item.url
          ? h("img", { class: "staged-thumb", src: item.url, alt: "" })
          : h("span", { class: "staged-icon", "aria-hidden": "true" }, item.file.type === "application/pdf" ? "📕" : /^audio\//.test(item.file.type) ? "🎵" : "📄"),
        h(
          "span",
          { class: "staged-text" },
          h("span", { class: "staged-name" }, item.name),
          h("span", { class: "staged-size" }, formatSize(item.file.size)),
        ),
        h(
          "button",
          {
            type: "button",
            class: "staged-remove",
            "aria-label": t("composer.unstage", { name: item.name }),
            title: t("composer.unstageShort"),
            onclick: () => unstage(item),
          },
          "✕",
        ),
      ),
    ),
  );
  if (ui.composerHint) {
    ui.composerHint.textContent = list.length
      ? t("composer.hint.files", { n: list.length })
      : t(`composer.hint.${state.mode}`);
  }
}

/** The staged files go out as messages; the text (if any) becomes the first one's caption. */
function sendStaged(cur, staged, text) {
  state.staged.delete(cur.id);
  let caption = text || null;
  // The caption travels in a request header: a very long one goes as its own message.
  if (caption && encodeURIComponent(caption).length > 6000) {
    queueText(cur, caption, "reply");
    outboxRunner.kick();
    caption = null;
  }
  ui.reply.value = "";
  state.drafts.delete(cur.id);
  autoGrow();
  renderCounter();
  stopMyTyping();
  staged.forEach((item, i) =>
    queueUpload(cur, { file: item.file, name: item.name, caption: i === 0 ? caption : null, thumb: item.url }),
  );
  renderStaged();
  ui.reply.focus();
}

function sendVoice(blob, name) {
  const cur = state.current;
  if (!cur || !cur.loaded) return;
  queueUpload(cur, { file: blob, name, voice: true });
}

function queueUpload(cur, { file, name, caption = null, voice = false, thumb = null }) {
  const p = pendingUpload({ cmid: uuid(), ticketId: cur.id, file, name, caption, voice, thumb });
  cur.pending.set(p.cmid, p);
  renderMessages({ toBottom: true });
  keepUpload(state.me.id, p); // (upload-store.js: survives a reload)
  enqueueUpload(p);
}

function pendingUpload({ cmid, ticketId, file, name, caption, voice, thumb }) {
  const p = { cmid, upload: true, mode: "reply", ticketId, file, name, caption, voice, thumb };
  Object.assign(p, { progress: 0, failed: false, error: null, el: null, queued: true });
  uploadsWaiting.set(cmid, p);
  return p;
}

/** One at a time, in the order picked: the customer sees them in that order. */
function enqueueUpload(p) {
  uploadQueue = uploadQueue.then(() => (p.cancelled || !uploadsWaiting.has(p.cmid) ? null : sendUpload(p)));
}

let uploadQueue = Promise.resolve();
// Every upload not yet stored, of any ticket (the open one's are also in its `pending`).
const uploadsWaiting = new Map();

/** After sign-in: the uploads a previous page of this operator left, sent again. */
async function restoreUploads() {
  const me = state.me;
  for (const row of await keptUploads(me.id)) {
    if (state.me !== me || uploadsWaiting.has(row.cmid)) continue;
    const image = !row.voice && String(row.file.type || "").startsWith("image/");
    const p = pendingUpload({ ...row, thumb: image ? URL.createObjectURL(row.file) : null });
    const cur = state.current;
    if (cur && cur.id === p.ticketId) {
      cur.pending.set(p.cmid, p);
      if (cur.loaded) renderMessages({ toBottom: true });
    }
    enqueueUpload(p);
  }
}

function forgetUpload(p) {
  if (p.thumb) URL.revokeObjectURL(p.thumb);
  p.thumb = null;
  uploadsWaiting.delete(p.cmid);
  dropUpload(p.cmid);
  const cur = state.current;
  if (cur && cur.pending.get(p.cmid) === p) cur.pending.delete(p.cmid);
}

async function sendUpload(p) {
  p.queued = false;
  p.failed = false;
  p.error = null;
  p.progress = 0;
  p.cancelled = false;
  p.el = null;
  if (state.current && state.current.id === p.ticketId) renderMessages();
  const handle = upload(
    { ticketId: p.ticketId, name: p.name, clientMsgId: p.cmid, caption: p.caption, voice: p.voice },
    p.file,
    (f) => {
      p.progress = f;
      updateUploadProgress(p);
    },
  );
  p.handle = handle;
  try {
    const r = await handle.promise;
    p.handle = null;
    forgetUpload(p);
    const now = state.current;
    if (now && now.id === p.ticketId && r.message) addMessage(now, r.message);
    if (r.message) onMessage(r.message);
    else if (now && now.id === p.ticketId) renderMessages();
  } catch (e) {
    p.handle = null;
    if (p.cancelled) return;
    p.failed = true;
    p.transient = isTransient(e); // re-sent when the server is back (outboxServerBack)
    p.error = errorText(e);
    p.el = null;
    if (state.current && state.current.id === p.ticketId) renderMessages();
  }
}

function cancelUpload(p) {
  p.cancelled = true;
  if (p.handle) p.handle.abort();
  forgetUpload(p);
  renderMessages();
}

function updateUploadProgress(p) {
  if (!p.bar) return;
  p.bar.value = p.progress;
  if (p.pct) p.pct.textContent = `${Math.round(p.progress * 100)}%`;
}

function uploadPendingEl(p) {
  const title = p.voice ? `🎤 ${t("att.voice")}` : p.name;
  p.bar = null;
  p.pct = null;
  let status;
  if (p.failed) {
    status = h(
      "span",
      { class: "upload-failed", role: "alert" },
      `⚠ ${p.error}`,
      h("button", { type: "button", class: "link-btn", onclick: () => sendUpload(p) }, t("upload.retry")),
      h("button", { type: "button", class: "link-btn muted-link", onclick: () => cancelUpload(p) }, t("upload.discard")),
    );
  } else {
    p.pct = h("span", { class: "upload-pct" }, `${Math.round(p.progress * 100)}%`);
    status = h(
      "span",
      { class: "upload-status" },
      h("span", null, t(p.queued ? "upload.queued" : "upload.sending")),
      p.queued ? null : p.pct,
      h(
        "button",
        {
          type: "button",
          class: "link-btn muted-link",
          "aria-label": t("upload.cancel", { name: p.name }),
          onclick: () => cancelUpload(p),
        },
        t("settings.cancel"),
      ),
    );
    p.bar = h("progress", {
      class: "upload-bar",
      max: "1",
      value: p.progress,
      "aria-label": t("upload.progress", { name: p.name }),
    });
  }
  return h(
    "div",
    { class: `msg admin mine pending upload${p.failed ? " failed" : ""}` },
    h("div", { class: "msg-author" }, state.me.name),
    h(
      "div",
      { class: "bubble att-bubble" },
      h(
        "div",
        { class: "upload-card" },
        p.thumb
          ? h("img", { class: "upload-thumb", src: p.thumb, alt: "" })
          : h("span", { class: "upload-icon", "aria-hidden": "true" }, p.voice ? "🎤" : "📄"),
        h(
          "span",
          { class: "att-file-text" },
          h("span", { class: "att-file-name" }, title),
          h("span", { class: "att-file-size" }, formatSize(p.file.size)),
        ),
      ),
      p.bar,
    ),
    h("div", { class: "msg-meta" }, status),
  );
}

// ---------------------------------------------------------------- a customer's data

/** A modal question; resolves true when confirmed. */
function confirmDialog({ title, text, confirm, danger = false }) {
  return new Promise((resolve) => {
    const titleId = `dlg-${uuid()}`;
    let answer = false;
    const yes = h(
      "button",
      { type: "button", class: `btn ${danger ? "danger" : "primary"}`, onclick: () => ((answer = true), dlg.close()) },
      confirm,
    );
    const no = h("button", { type: "button", class: "btn ghost", onclick: () => dlg.close() }, t("settings.cancel"));
    const dlg = h(
      "dialog",
      { class: "confirm-dialog", "aria-labelledby": titleId },
      h("h2", { id: titleId }, title),
      h("p", null, text),
      h("div", { class: "dialog-actions" }, no, yes),
    );
    dlg.addEventListener("close", () => {
      dlg.remove();
      resolve(answer);
    });
    document.body.appendChild(dlg);
    dlg.showModal();
    no.focus();
  });
}

async function exportCustomer(ticketId, btn) {
  btn.disabled = true;
  try {
    const data = await api.exportCustomer(ticketId);
    const blob = new Blob([JSON.stringify(data, null, 2)], { type: "application/json" });
    const url = URL.createObjectURL(blob);
    const day = new Date().toISOString().slice(0, 10);
    const a = h("a", { href: url, download: `trustdesk-customer-${ticketId}-${day}.json`, hidden: true });
    document.body.appendChild(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 60_000);
    toast(t("info.exported"), "ok");
  } catch (e) {
    toast(errorText(e), "warn");
  } finally {
    btn.disabled = false;
  }
}

async function deleteCustomer(s) {
  const cur = state.current;
  const others = cur && cur.id === s.ticketId && cur.related ? cur.related.length : 0;
  const ok = await confirmDialog({
    title: t("info.deleteTitle"),
    text: t("info.deleteText", { n: others + 1 }),
    confirm: t("info.deleteYes"),
    danger: true,
  });
  if (!ok) return;
  try {
    const r = await api.deleteCustomer(s.ticketId);
    const gone = [s.ticketId, ...((cur && cur.id === s.ticketId && cur.related) || []).map((x) => x.ticketId)];
    for (const id of gone) {
      state.tickets.delete(id);
      state.drafts.delete(id);
      state.staged.delete(id);
    }
    const d = (r && r.deleted) || {};
    toast(t("info.deleted", { tickets: d.tickets ?? gone.length, messages: d.messages ?? 0 }), "ok");
    if (state.currentId === s.ticketId) location.hash = "#/tickets";
    renderList();
    renderBadges();
    fetchList();
  } catch (e) {
    toast(errorText(e), "warn");
  }
}

// canned responses in the reply box: "/" + name

function cannedQuery() {
  const el = ui.reply;
  const before = el.value.slice(0, el.selectionStart);
  const m = before.match(/(^|\s)\/([^\s/]*)$/);
  return m ? { query: m[2], start: before.length - m[2].length - 1 } : null;
}

function updateCanned() {
  if (state.mode === "system") return hideCanned();
  const q = cannedQuery();
  if (!q) return hideCanned();
  const needle = q.query.toLowerCase();
  const items = state.canned
    .filter((c) => c.name.toLowerCase().includes(needle))
    .sort((a, b) => Number(b.name.toLowerCase().startsWith(needle)) - Number(a.name.toLowerCase().startsWith(needle)) || a.name.localeCompare(b.name))
    .slice(0, 8);
  if (!items.length) {
    const text = state.canned.length ? t("composer.cannedEmpty", { q: q.query }) : t("composer.cannedNone");
    replaceChildren(ui.canned, h("li", { class: "canned-empty" }, text));
  } else {
    replaceChildren(
      ui.canned,
      items.map((c, i) =>
        h(
          "li",
          {
            role: "option",
            class: "canned-item",
            id: `canned-${c.id}`,
            dataset: { cannedId: String(c.id) },
            "aria-selected": i === 0 ? "true" : "false",
            onmousedown: (ev) => {
              ev.preventDefault();
              chooseCanned(c.id);
            },
          },
          h("span", { class: "canned-name" }, `/${c.name}`),
          h("span", { class: "canned-text" }, c.text),
        ),
      ),
    );
  }
  ui.canned.hidden = false;
}

function hideCanned() {
  if (ui.canned) {
    ui.canned.hidden = true;
    clear(ui.canned);
  }
}

function moveCanned(delta) {
  const items = [...ui.canned.querySelectorAll(".canned-item")];
  if (!items.length) return;
  let i = items.findIndex((el) => el.getAttribute("aria-selected") === "true");
  i = (i + delta + items.length) % items.length;
  items.forEach((el, j) => el.setAttribute("aria-selected", j === i ? "true" : "false"));
  items[i].scrollIntoView({ block: "nearest" });
}

function chooseCanned(id) {
  const c = state.canned.find((x) => x.id === id);
  const q = cannedQuery();
  if (!c || !q) return hideCanned();
  const el = ui.reply;
  const end = el.selectionStart;
  el.value = el.value.slice(0, q.start) + c.text + el.value.slice(end);
  const caret = q.start + c.text.length;
  el.setSelectionRange(caret, caret);
  hideCanned();
  el.focus();
  onReplyInput();
}

// ---------------------------------------------------------------- settings

/** Leaving the inbox: forget its DOM so live updates do not try to render into it. */
function dropInboxRefs() {
  for (const k of [
    "list",
    "inbox",
    "convPane",
    "infoPane",
    "msgs",
    "msgsScroll",
    "reply",
    "composer",
    "assignSelect",
    "teamList",
    "cannedList",
    "opsList",
    "soundToggle",
    "recorder",
    "stagedList",
  ]) {
    ui[k] = null;
  }
}

function buildSettings() {
  dropInboxRefs();

  // Canned responses
  ui.cannedList = h("ul", { class: "canned-list" });
  const cName = h("input", {
    id: "canned-name",
    maxlength: 60,
    required: true,
    autocomplete: "off",
    placeholder: t("settings.cannedNameHint"),
  });
  const cText = h("textarea", { id: "canned-text", rows: 3, maxlength: MAX_LEN, required: true });
  const cError = h("p", { class: "form-error", role: "alert", hidden: true });
  const cannedForm = h(
    "form",
    { class: "stack-form", novalidate: true },
    h("label", { for: "canned-name" }, t("settings.cannedName")),
    cName,
    h("label", { for: "canned-text" }, t("settings.cannedText")),
    cText,
    cError,
    h("button", { type: "submit", class: "btn primary" }, t("settings.cannedAdd")),
  );
  cannedForm.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    // Names are single words ("/dostavka"): anything else becomes a dash.
    const name = cName.value
      .trim()
      .replace(/^\/+/, "")
      .replace(/[^\p{L}\p{N}_-]+/gu, "-")
      .replace(/^-+|-+$/g, "");
    const text = cText.value.trim();
    if (!name || !text) {
      cError.textContent = t("error.invalid");
      cError.hidden = false;
      return;
    }
    try {
      await api.addCanned(name, text);
      cName.value = "";
      cText.value = "";
      cError.hidden = true;
      await loadCanned();
    } catch (e) {
      cError.textContent = errorText(e);
      cError.hidden = false;
    }
  });

  // Notifications & language
  ui.soundToggle = h("input", { type: "checkbox", id: "sound-toggle", checked: !isMuted() });
  ui.soundToggle.addEventListener("change", () => {
    setMuted(!ui.soundToggle.checked);
    renderMute();
    if (ui.soundToggle.checked) chime();
  });
  const langSelect = h(
    "select",
    { id: "lang-select", class: "select" },
    h("option", { value: "ru" }, "Русский"),
    h("option", { value: "en" }, "English"),
  );
  langSelect.value = getLang();
  langSelect.addEventListener("change", () => switchLang(langSelect.value));

  const sections = [
    buildAccountCard({ me: state.me, errorText, toast }),
    h(
      "section",
      { class: "settings-card", "aria-labelledby": "canned-heading" },
      h("h2", { id: "canned-heading" }, "⚡ ", t("settings.canned")),
      h("p", { class: "muted" }, t("settings.cannedHelp")),
      ui.cannedList,
      cannedForm,
    ),
  ];
  sections.push(
    h(
      "section",
      { class: "settings-card", "aria-labelledby": "notify-heading" },
      h("h2", { id: "notify-heading" }, "🔔 ", t("settings.notifications")),
      h("div", { class: "check-row" }, ui.soundToggle, h("label", { for: "sound-toggle" }, t("settings.sound"))),
      h("label", { for: "lang-select", class: "field-label" }, t("settings.language")),
      langSelect,
    ),
  );
  if (state.me.role === "admin") {
    sections.push(buildOperatorsCard());
    sections.push(buildLabelsCard(labelCtx));
    sections.push(buildRoutingCard(labelCtx)); // teams and routing (routing.js)
    sections.push(buildChannelSettingsCard({ errorText, toast })); // Каналы (channel-settings.js)
    sections.push(...buildIntegrations({ errorText, toast }));
    sections.push(buildSelftestCard({ errorText, toast }));
    sections.push(buildAuditCard({ errorText })); // the audit log (audit.js)
  }
  replaceChildren(
    ui.main,
    h(
      "div",
      { class: "settings" },
      h("h1", null, t("settings.heading")),
      h("div", { class: "settings-grid" }, sections),
    ),
  );
  renderCannedList();
  loadCanned();
  if (state.me.role === "admin") loadOperators();
}

function renderCannedList() {
  if (!ui.cannedList) return;
  if (!state.canned.length) {
    replaceChildren(ui.cannedList, h("li", { class: "muted" }, t("settings.cannedNone")));
    return;
  }
  replaceChildren(
    ui.cannedList,
    state.canned.map((c) =>
      h(
        "li",
        { class: "canned-row", dataset: { cannedId: String(c.id) } },
        h("div", { class: "canned-row-main" }, h("code", null, `/${c.name}`), h("p", null, c.text)),
        h(
          "button",
          {
            type: "button",
            class: "btn ghost small",
            "aria-label": `${t("settings.delete")} /${c.name}`,
            onclick: async () => {
              try {
                await api.deleteCanned(c.id);
                await loadCanned();
              } catch (e) {
                toast(errorText(e), "warn");
              }
            },
          },
          t("settings.delete"),
        ),
      ),
    ),
  );
}

function buildOperatorsCard() {
  ui.opsList = h("ul", { class: "ops-list" });
  const name = h("input", { id: "op-name", autocomplete: "off", required: true, maxlength: 100 });
  const email = h("input", { id: "op-email", type: "email", autocomplete: "off", required: true });
  const password = h("input", { id: "op-password", type: "password", autocomplete: "new-password", required: true });
  const role = h(
    "select",
    { id: "op-role", class: "select" },
    h("option", { value: "agent" }, t("role.agent")),
    h("option", { value: "admin" }, t("role.admin")),
  );
  const gender = h(
    "select",
    { id: "op-gender", class: "select" },
    ...["", "male", "female"].map((g) => h("option", { value: g }, t(`account.gender.${g || "unset"}`))),
  );
  const msg = h("p", { class: "form-msg", role: "status" });
  const form = h(
    "form",
    { class: "stack-form two-col", novalidate: true },
    h("div", null, h("label", { for: "op-name" }, t("settings.opName")), name),
    h("div", null, h("label", { for: "op-email" }, t("settings.opEmail")), email),
    h("div", null, h("label", { for: "op-password" }, t("settings.opPassword")), password),
    h("div", null, h("label", { for: "op-role" }, t("settings.opRole")), role),
    h("div", null, h("label", { for: "op-gender" }, t("account.gender.label")), gender),
    msg,
    h("button", { type: "submit", class: "btn primary" }, t("settings.opAdd")),
  );
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    msg.className = "form-msg";
    try {
      await api.addOperator({
        name: name.value.trim(),
        email: email.value.trim(),
        password: password.value,
        role: role.value,
        gender: gender.value || null,
      });
      msg.textContent = t("settings.opAdded", { name: name.value.trim() });
      msg.classList.add("ok");
      name.value = "";
      email.value = "";
      password.value = "";
      await loadOperators();
    } catch (e) {
      msg.textContent = errorText(e);
      msg.classList.add("error");
    }
  });
  return h(
    "section",
    { class: "settings-card wide", "aria-labelledby": "ops-heading" },
    h("h2", { id: "ops-heading" }, "👥 ", t("settings.operators")),
    ui.opsList,
    h("h3", { class: "form-title" }, t("settings.opNew")),
    form,
  );
}

function renderOperatorsTable() {
  if (!ui.opsList) return;
  const ops = [...state.operators.values()].filter((o) => o.email !== undefined);
  ops.sort((a, b) => Number(b.active !== false) - Number(a.active !== false) || a.name.localeCompare(b.name));
  replaceChildren(
    ui.opsList,
    ops.map((o) => {
      const row = h("li", { class: `op-row${o.active === false ? " inactive" : ""}`, dataset: { operatorId: String(o.id) } });
      const extra = h("div", { class: "op-extra" });
      const statusText = o.active === false ? t("settings.opInactive") : o.online ? t("info.online") : t("info.offline");
      const actions = h("div", { class: "op-actions" });
      if (o.active === false) {
        actions.append(
          h(
            "button",
            {
              type: "button",
              class: "btn ghost small",
              "aria-label": `${t("settings.opActivate")}: ${o.name}`,
              onclick: async () => {
                try {
                  await api.activate(o.id);
                  await loadOperators();
                } catch (e) {
                  toast(errorText(e), "warn");
                }
              },
            },
            t("settings.opActivate"),
          ),
        );
      }
      if (o.active !== false) actions.append(roleSelect(o));
      if (o.active !== false) {
        actions.append(
          h(
            "button",
            {
              type: "button",
              class: "btn ghost small",
              "aria-label": `${t("settings.opReset")}: ${o.name}`,
              onclick: () => showPasswordForm(o, extra),
            },
            t("settings.opReset"),
          ),
        );
        if (o.id !== state.me.id) {
          actions.append(
            h(
              "button",
              {
                type: "button",
                class: "btn danger-soft small",
                "aria-label": `${t("settings.opDeactivate")}: ${o.name}`,
                onclick: () => showDeactivate(o, extra),
              },
              t("settings.opDeactivate"),
            ),
          );
        }
      }
      row.append(
        h(
          "div",
          { class: "op-main" },
          avatar(o.name, { online: o.active !== false && Boolean(o.online), seed: o.email || o.name }),
          h(
            "div",
            { class: "op-text" },
            h("strong", null, o.name, o.id === state.me.id ? h("span", { class: "muted" }, ` (${t("you")})`) : null),
            h("span", { class: "muted" }, `${o.email} · ${t(`role.${o.role}`)} · ${statusText}`),
          ),
          actions,
        ),
        extra,
      );
      return row;
    }),
  );
}

/** Admin or agent; the server keeps the last admin one (409 last_admin). */
function roleSelect(o) {
  const select = h(
    "select",
    { class: "select small op-role", "aria-label": t("settings.opRoleOf", { name: o.name }) },
    ...["agent", "admin"].map((r) => h("option", { value: r, selected: o.role === r }, t(`role.${r}`))),
  );
  select.addEventListener("change", async () => {
    try {
      await request("POST", `/api/admin/operators/${o.id}/role`, { role: select.value });
      await loadOperators();
      toast(t("settings.opRoleSaved", { name: o.name, role: t(`role.${select.value}`) }));
    } catch (e) {
      select.value = o.role;
      toast(errorText(e), "warn");
    }
  });
  return select;
}

function showPasswordForm(o, extra) {
  const inputId = `op-pw-${o.id}`;
  const input = h("input", { id: inputId, type: "password", autocomplete: "new-password", minlength: 8 });
  const msg = h("span", { class: "form-msg", role: "status" });
  const form = h(
    "form",
    { class: "inline-form", novalidate: true },
    h("label", { for: inputId }, t("settings.opNewPassword", { name: o.name })),
    input,
    h("button", { type: "submit", class: "btn primary small" }, t("settings.opSave")),
    h("button", { type: "button", class: "btn ghost small", onclick: () => clear(extra) }, t("settings.cancel")),
    msg,
  );
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    try {
      await api.setPassword(o.id, input.value);
      replaceChildren(extra, h("p", { class: "form-msg ok", role: "status" }, t("settings.opSaved")));
    } catch (e) {
      msg.textContent = errorText(e);
      msg.className = "form-msg error";
    }
  });
  replaceChildren(extra, form);
  input.focus();
}

function showDeactivate(o, extra) {
  replaceChildren(
    extra,
    h(
      "div",
      { class: "inline-form confirm" },
      h("span", null, t("settings.opConfirm", { name: o.name })),
      h(
        "button",
        {
          type: "button",
          class: "btn danger small",
          onclick: async () => {
            try {
              await api.deactivate(o.id);
              await loadOperators();
            } catch (e) {
              toast(errorText(e), "warn");
            }
          },
        },
        t("settings.opConfirmYes"),
      ),
      h("button", { type: "button", class: "btn ghost small", onclick: () => clear(extra) }, t("settings.cancel")),
    ),
  );
}

boot();
