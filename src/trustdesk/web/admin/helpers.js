// Small helpers of the dashboard: names, times, avatars, links, toasts, the tab title.

import { h, hueOf, initials, replaceChildren, safeHref } from "./dom.js";
import { has, t } from "./i18n.js";
import { state, ui } from "./state.js";

// ---------------------------------------------------------------- helpers

const DEFAULT_GUEST = "Гость"; // the server's name for an anonymous customer (older rows)
const NUMBERED_GUEST = /^Гость #(\d+)$/; // actions/customers.py display_name

export function guestName(name) {
  if (!name || name === DEFAULT_GUEST) return t("guest");
  const n = NUMBERED_GUEST.exec(name);
  return n ? t("guestN", { n: n[1] }) : name;
}

export function customerName(s) {
  return guestName(s && s.customer_name);
}

export function isViewing(ticketId) {
  return (
    state.view === "tickets" &&
    state.currentId === ticketId &&
    state.current &&
    state.current.loaded &&
    document.visibilityState === "visible"
  );
}

export function ts(iso) {
  const n = Date.parse(iso);
  return Number.isNaN(n) ? 0 : n;
}

export function avatar(name, { size = "", online = null, seed = name } = {}) {
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
export function linkify(text) {
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
export function toast(message, kind = "info") {
  if (!ui.toast) return;
  replaceChildren(ui.toast, h("div", { class: `toast-card ${kind}` }, message));
  ui.toast.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => {
    if (ui.toast) ui.toast.hidden = true;
  }, 5000);
}

export function errorText(e) {
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

export function totalUnread() {
  let n = 0;
  for (const s of state.tickets.values()) n += s.unread > 0 ? s.unread : 0;
  return n;
}

export function updateTitle() {
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
