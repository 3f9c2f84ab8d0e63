// The dashboard's shell (header, navigation, language, sound, push) and its routes.

import { api } from "./api.js";
import { signOut } from "./app.js";
import { leaveTicket, openTicket } from "./conversation.js";
import { renderTeamList } from "./customer-panel.js";
import { clear, h, replaceChildren } from "./dom.js";
import { avatar, errorText, toast, totalUnread, updateTitle } from "./helpers.js";
import { getLang, setLang, t } from "./i18n.js";
import { buildInbox } from "./inbox.js";
import { buildKbPage } from "./kb.js";
import { enablePush, pushActive, pushSupported } from "./push.js";
import { buildReport } from "./report.js";
import { buildSettings, dropInboxRefs } from "./settings-page.js";
import { isMuted, setMuted } from "./sound.js";
import { root, state, ui } from "./state.js";
import { buildWidgetPage, leaveWidgetPage, renderSiteNotices } from "./widget-settings.js";

// ---------------------------------------------------------------- shell

export function buildShell() {
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

export function switchLang(lang) {
  setLang(lang);
  const keepDraft = ui.reply ? ui.reply.value : null;
  if (keepDraft !== null && state.currentId) state.drafts.set(state.currentId, keepDraft);
  buildShell();
  state.view = null; // force the main view to be rebuilt
  onRoute();
  refreshPushState();
}

export function renderBadges() {
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

export function renderMute() {
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

export function renderTeam() {
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

export async function refreshPushState() {
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

export function onRoute() {
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
