// Settings → "Журнал действий" / "Audit log" (admins): who signed in, changed a setting,
// deleted or exported data, and from which address (GET /api/admin/audit). Newest first,
// a page at a time ("Показать ещё"), filtered by kind of action and by operator. app.js
// only calls buildAuditCard.

import { request } from "./api.js";
import { fullWhen, h, replaceChildren } from "./dom.js";
import { getLang, has, t } from "./i18n.js";

export const PAGE = 50;

// The filter's groups (a code prefix ending in "." selects every code of the group).
export const GROUPS = ["login.", "logout", "password.", "2fa.", "settings.", "operator.", "customer.", "canned.", "label.", "webhook.", "token.", "origin."];

/** The query string of one page: only the parameters that are set. */
export function auditQuery({ limit = PAGE, before = null, action = "", actor = null } = {}) {
  const q = new URLSearchParams({ limit: String(limit) });
  if (before) q.set("before", String(before));
  if (action) q.set("action", action);
  if (actor) q.set("actor", String(actor));
  return q.toString();
}

function plain(v) {
  if (v === null || v === undefined || v === "") return "—";
  if (Array.isArray(v)) return v.length ? v.map(plain).join(", ") : "—";
  if (typeof v === "object") return JSON.stringify(v);
  return String(v);
}

/**
 * One line of text for an entry's details: "title: «a» → «b»; color: …" for a change,
 * "key: value, …" otherwise. Plain text (shown with textContent).
 */
export function detailsText(details) {
  if (!details || typeof details !== "object") return "";
  if (Array.isArray(details.changed)) {
    const old = details.old || {};
    const neu = details.new || {};
    const parts = details.changed.map((k) =>
      k in old || k in neu ? `${k}: «${plain(old[k])}» → «${plain(neu[k])}»` : k,
    );
    return parts.join("; ") + (details.truncated ? " …" : "");
  }
  return Object.entries(details)
    .map(([k, v]) => `${k}: ${plain(v)}`)
    .join(", ");
}

/** The translated name of an action code (the code itself if it has none). */
export function actionName(code) {
  const key = `audit.a.${code}`;
  return has(key) ? t(key) : code;
}

function row(e) {
  const lang = getLang();
  const who = !e.actor_id && has(`audit.who.${e.actor_name}`) ? t(`audit.who.${e.actor_name}`) : e.actor_name;
  const failed = /failed$/.test(e.action);
  return h(
    "tr",
    { dataset: { action: e.action }, class: failed ? "audit-failed" : null },
    h("td", { class: "audit-at" }, h("time", { datetime: e.at, title: e.at }, fullWhen(e.at, lang))),
    h("td", null, who),
    h("td", null, h("span", { class: "audit-action" }, actionName(e.action))),
    h("td", { class: "audit-target" }, e.target || "—"),
    h("td", { class: "audit-details" }, detailsText(e.details)),
    h("td", { class: "audit-address" }, e.address || "—"),
  );
}

export function buildAuditCard(ctx) {
  const state = { next: null, loading: false };
  const body = h("tbody");
  const status = h("p", { class: "muted audit-status", role: "status" });
  const more = h("button", { type: "button", class: "btn ghost", hidden: true }, t("audit.more"));
  const actionSel = h(
    "select",
    { id: "audit-action", name: "action" },
    h("option", { value: "" }, t("audit.allActions")),
    GROUPS.map((g) => h("option", { value: g }, t(`audit.g.${g}`))),
  );
  const actorSel = h("select", { id: "audit-actor", name: "actor" }, h("option", { value: "" }, t("audit.allActors")));

  // A filter change always loads (it was dropped while an earlier page was in flight: the
  // table then showed the old filter's rows); only the latest request's answer is shown.
  async function load(reset) {
    if (state.loading && !reset) return;
    const seq = (state.seq = (state.seq || 0) + 1);
    state.loading = true;
    more.disabled = true;
    if (reset) status.textContent = t("audit.loading");
    try {
      const q = auditQuery({
        before: reset ? null : state.next,
        action: actionSel.value,
        actor: actorSel.value ? Number(actorSel.value) : null,
      });
      const r = await request("GET", `/api/admin/audit?${q}`);
      if (seq !== state.seq) return;
      if (reset) replaceChildren(body);
      for (const e of r.entries) body.append(row(e));
      state.next = r.next;
      more.hidden = r.next === null;
      status.textContent = body.children.length ? "" : t("audit.none");
    } catch (e) {
      if (seq === state.seq) status.textContent = ctx.errorText(e);
    } finally {
      if (seq === state.seq) {
        state.loading = false;
        more.disabled = false;
      }
    }
  }

  async function loadActors() {
    try {
      const r = await request("GET", "/api/admin/operators");
      for (const op of r.operators || []) actorSel.append(h("option", { value: String(op.id) }, op.name));
    } catch {
      /* the filter keeps "everyone" */
    }
  }

  actionSel.addEventListener("change", () => load(true));
  actorSel.addEventListener("change", () => load(true));
  more.addEventListener("click", () => load(false));
  loadActors();
  load(true);

  return h(
    "section",
    { class: "settings-card wide audit-card", "aria-labelledby": "audit-heading" },
    h("h2", { id: "audit-heading" }, "📜 ", t("audit.title")),
    h("p", { class: "muted" }, t("audit.help")),
    h(
      "div",
      { class: "audit-filters" },
      h("label", { for: "audit-action" }, t("audit.action")),
      actionSel,
      h("label", { for: "audit-actor" }, t("audit.actor")),
      actorSel,
    ),
    h(
      "div",
      { class: "audit-scroll" },
      h(
        "table",
        { class: "audit-table" },
        h(
          "thead",
          null,
          h(
            "tr",
            null,
            ["at", "who", "what", "target", "details", "address"].map((c) => h("th", { scope: "col" }, t(`audit.col.${c}`))),
          ),
        ),
        body,
      ),
    ),
    status,
    more,
  );
}
