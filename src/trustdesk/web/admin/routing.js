// Teams ("Отдел"), routing rules, priority and snooze in the dashboard (api/teams.py,
// actions/routing.py): the list's team filter and row markers, the ticket's "Работа с
// тикетом" card (team, priority, "Отложить" with presets) and the admins' settings card
// (routing settings, teams and members, rules in order). app.js only calls the hooks here.

import { request } from "./api.js";
import { fullWhen, h, replaceChildren, shortWhen } from "./dom.js";
import { getLang, t } from "./i18n.js";

const enc = encodeURIComponent;

export const routingApi = {
  teams: () => request("GET", "/api/admin/teams"),
  createTeam: (name, members) => request("POST", "/api/admin/teams", { name, members }),
  updateTeam: (id, body) => request("PATCH", `/api/admin/teams/${enc(id)}`, body),
  removeTeam: (id) => request("DELETE", `/api/admin/teams/${enc(id)}`),
  rules: () => request("GET", "/api/admin/routing/rules"),
  createRule: (body) => request("POST", "/api/admin/routing/rules", body),
  removeRule: (id) => request("DELETE", `/api/admin/routing/rules/${enc(id)}`),
  orderRules: (ids) => request("PUT", "/api/admin/routing/rules/order", { ids }),
  settings: () => request("GET", "/api/admin/settings/routing"),
  saveSettings: (patch) => request("PUT", "/api/admin/settings/routing", patch),
  operators: () => request("GET", "/api/admin/operators"),
  setTeam: (ticketId, teamId) => request("POST", "/api/admin/support/team", { ticketId, team_id: teamId }),
  setPriority: (ticketId, priority) => request("POST", "/api/admin/support/priority", { ticketId, priority }),
  snooze: (ticketId, until) => request("POST", "/api/admin/support/snooze", { ticketId, until }),
};

// ---------------------------------------------------------------- pure parts (tests/js)

export const PRIORITIES = ["low", "normal", "high", "urgent"];
const MARKERS = { urgent: "🔥", high: "⬆", low: "⬇" };

/** The list's marker of a priority: null for "normal" (most tickets carry none). */
export function priorityMarker(priority) {
  return Object.hasOwn(MARKERS, priority) ? { icon: MARKERS[priority], cls: `prio prio-${priority}` } : null;
}

/**
 * The snooze presets from `now` (local time): in 1 hour, in 3 hours, tomorrow 9:00, next
 * Monday 9:00 (a week on when today is Monday). [{key, until: Date}].
 */
export function snoozePresets(now = new Date()) {
  const at = (days, hour) => {
    const d = new Date(now);
    d.setDate(d.getDate() + days);
    d.setHours(hour, 0, 0, 0);
    return d;
  };
  const toMonday = (8 - now.getDay()) % 7 || 7;
  return [
    { key: "1h", until: new Date(now.getTime() + 3600_000) },
    { key: "3h", until: new Date(now.getTime() + 3 * 3600_000) },
    { key: "tomorrow", until: at(1, 9) },
    { key: "monday", until: at(toMonday, 9) },
  ];
}

/** A datetime-local input's value ("2026-12-08T09:00") as a Date in the future, else null. */
export function parseLocal(value, now = new Date()) {
  const m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})$/.exec(String(value || ""));
  if (!m) return null;
  const d = new Date(Number(m[1]), Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]));
  return Number.isNaN(d.getTime()) || d <= now ? null : d;
}

/** Move item `i` of `ids` by `delta` (-1 up, +1 down); the same array when it cannot. */
export function moved(ids, i, delta) {
  const j = i + delta;
  if (i < 0 || j < 0 || j >= ids.length) return ids;
  const out = [...ids];
  [out[i], out[j]] = [out[j], out[i]];
  return out;
}

// ---------------------------------------------------------------- teams, as every page knows them

const known = { teams: [], loaded: false, loading: null };
const listeners = new Set();

export async function loadTeams() {
  if (!known.loading) {
    known.loading = routingApi
      .teams()
      .then((r) => {
        known.teams = r.teams || [];
        known.loaded = true;
        for (const fn of listeners) fn();
      })
      .finally(() => {
        known.loading = null;
      });
  }
  await known.loading;
}

// ---------------------------------------------------------------- the list: filter and markers

let filterId = null;
let filterSelect = null;

/** The select beside the list's filters; `onChange` refetches and redraws the list. */
export function teamFilter(onChange) {
  filterSelect = h("select", { class: "select team-filter", "aria-label": t("routing.filter") });
  filterSelect.addEventListener("change", () => {
    filterId = filterSelect.value ? Number(filterSelect.value) : null;
    onChange();
  });
  renderFilter();
  listeners.add(renderFilter);
  loadTeams().catch(() => {});
  return filterSelect;
}

function renderFilter() {
  if (!filterSelect) return;
  if (filterId !== null && known.loaded && !known.teams.some((x) => x.id === filterId)) filterId = null;
  replaceChildren(
    filterSelect,
    h("option", { value: "" }, t("routing.allTeams")),
    known.teams.map((x) => h("option", { value: String(x.id) }, `👥 ${x.name}`)),
  );
  filterSelect.value = filterId === null ? "" : String(filterId);
  filterSelect.hidden = !known.teams.length && filterId === null;
}

/** For api.tickets: the team to filter by, or undefined. */
export function teamParam() {
  return filterId === null ? undefined : filterId;
}

/** Client-side half of the filter (live updates). */
export function teamMatches(s) {
  return filterId === null || (s.team && s.team.id === filterId);
}

/** A row's markers: priority (not "normal"), team, "snoozed until". */
export function rowMarkers(s) {
  const out = [];
  const p = priorityMarker(s.priority);
  if (p) out.push(h("span", { class: p.cls, title: t(`priority.${s.priority}`) }, `${p.icon} ${t(`priority.${s.priority}`)}`));
  if (s.team) out.push(h("span", { class: "team-chip" }, `👥 ${s.team.name}`));
  if (s.snoozed_until) {
    out.push(h("span", { class: "snoozed-chip" }, `⏸ ${t("snooze.until", { when: shortWhen(s.snoozed_until, getLang()) })}`));
  }
  return out;
}

/** The conversation header's marker of a snoozed ticket, or null. */
export function headerMarker(s) {
  if (!s.snoozed_until) return null;
  return h("span", { class: "snoozed-chip" }, `⏸ ${t("snooze.until", { when: fullWhen(s.snoozed_until, getLang()) })}`);
}

// ---------------------------------------------------------------- the ticket's card

// The card is kept while the same ticket is open (app.js redraws the side panel on every
// change): its selects keep their focus and the snooze panel stays open.
let card = null;
listeners.add(() => card && card.renderTeams());

/** "Работа с тикетом": team, priority, snooze. ctx: {errorText, toast, onTicket(summary)}. */
export function ticketRoutingCard(s, ctx) {
  if (!card || card.ticketId !== s.ticketId) card = makeCard(s.ticketId, ctx);
  card.update(s);
  return card.el;
}

function makeCard(ticketId, ctx) {
  const apply = async (fn) => {
    try {
      const r = await fn();
      if (r && r.ticket) ctx.onTicket(r.ticket);
      return true;
    } catch (e) {
      ctx.toast(ctx.errorText(e), "warn");
      return false;
    }
  };
  const team = h("select", { id: "ticket-team", class: "select" });
  team.addEventListener("change", () => apply(() => routingApi.setTeam(ticketId, team.value ? Number(team.value) : null)));
  const prio = h(
    "select",
    { id: "ticket-priority", class: "select" },
    PRIORITIES.map((p) => h("option", { value: p }, `${priorityMarker(p)?.icon || "•"} ${t(`priority.${p}`)}`)),
  );
  prio.addEventListener("change", () => apply(() => routingApi.setPriority(ticketId, prio.value)));

  const state = { s: null };
  const status = h("p", { class: "snooze-status", role: "status" });
  const panel = h("div", { class: "snooze-panel", hidden: true, role: "group", "aria-label": t("snooze.menu") });
  const toggle = h("button", { type: "button", class: "btn soft snooze-btn", "aria-expanded": "false" }, `⏸ ${t("snooze.button")}`);
  const wake = h("button", { type: "button", class: "btn soft wake-btn" }, `▶ ${t("snooze.wake")}`);
  const setOpen = (open) => {
    panel.hidden = !open;
    toggle.setAttribute("aria-expanded", String(open));
    if (open) fillPanel();
  };
  const snoozeUntil = async (date) => {
    if (await apply(() => routingApi.snooze(ticketId, date.toISOString()))) {
      setOpen(false);
      ctx.toast(t("snooze.done", { when: fullWhen(date.toISOString(), getLang()) }), "ok");
    }
  };
  const fillPanel = () => {
    const lang = getLang();
    const custom = h("input", { type: "datetime-local", id: "snooze-custom", class: "input" });
    const customBtn = h("button", { type: "button", class: "btn primary small" }, t("snooze.set"));
    customBtn.addEventListener("click", () => {
      const d = parseLocal(custom.value);
      if (!d) {
        ctx.toast(t("snooze.bad"), "warn");
        custom.focus();
        return;
      }
      snoozeUntil(d);
    });
    replaceChildren(
      panel,
      h(
        "div",
        { class: "snooze-presets" },
        snoozePresets().map((p) =>
          h(
            "button",
            { type: "button", class: "btn ghost small snooze-preset", dataset: { preset: p.key }, onclick: () => snoozeUntil(p.until) },
            h("span", null, t(`snooze.preset.${p.key}`)),
            h("span", { class: "muted" }, fullWhen(p.until.toISOString(), lang)),
          ),
        ),
      ),
      h("label", { for: "snooze-custom", class: "field-label" }, t("snooze.custom")),
      h("div", { class: "snooze-custom-row" }, custom, customBtn),
    );
    panel.querySelector("button")?.focus();
  };
  toggle.addEventListener("click", () => setOpen(panel.hidden));
  panel.addEventListener("keydown", (ev) => {
    if (ev.key === "Escape") {
      setOpen(false);
      toggle.focus();
    }
  });
  wake.addEventListener("click", () => apply(() => routingApi.snooze(ticketId, null)));

  const el = h(
    "section",
    { class: "info-card routing-card", "aria-labelledby": "routing-card-heading" },
    h("h3", { id: "routing-card-heading" }, t("routing.card")),
    h("label", { for: "ticket-team", class: "field-label" }, t("routing.team")),
    team,
    h("label", { for: "ticket-priority", class: "field-label" }, t("routing.priority")),
    prio,
    status,
    h("div", { class: "snooze-row" }, toggle, wake),
    panel,
  );
  const renderTeams = () => {
    const s = state.s;
    if (!s) return;
    const list = [...known.teams];
    if (s.team && !list.some((x) => x.id === s.team.id)) list.push(s.team);
    replaceChildren(team, h("option", { value: "" }, t("routing.noTeam")), list.map((x) => h("option", { value: String(x.id) }, x.name)));
    team.value = s.team ? String(s.team.id) : "";
  };
  if (!known.loaded) loadTeams().catch(() => {});
  return {
    ticketId,
    el,
    renderTeams,
    update(s) {
      state.s = s;
      if (document.activeElement !== team) renderTeams();
      if (document.activeElement !== prio) prio.value = s.priority || "normal";
      const open = s.status === "open";
      team.disabled = false;
      prio.disabled = false;
      toggle.hidden = !open;
      wake.hidden = !s.snoozed_until;
      status.textContent = s.snoozed_until ? t("snooze.until", { when: fullWhen(s.snoozed_until, getLang()) }) : "";
      status.hidden = !s.snoozed_until;
      if (!open && !panel.hidden) setOpen(false);
    },
  };
}

// ---------------------------------------------------------------- settings (admins)

let settingsCtx = null;
let settingsEl = null;

/** The settings card: routing settings, teams with members, rules in order. */
export function buildRoutingCard(ctx) {
  settingsCtx = ctx;
  settingsEl = h("div", { class: "routing-settings" }, h("p", { class: "muted" }, t("list.loading")));
  renderSettings().catch((e) => ctx.toast(ctx.errorText(e), "warn"));
  return h(
    "section",
    { class: "settings-card wide routing-settings-card", "aria-labelledby": "routing-heading" },
    h("h2", { id: "routing-heading" }, "👥 ", t("routing.heading")),
    h("p", { class: "muted" }, t("routing.help")),
    settingsEl,
  );
}

async function renderSettings() {
  const [settings, rules, ops] = await Promise.all([routingApi.settings(), routingApi.rules(), routingApi.operators()]);
  await loadTeams();
  if (!settingsEl) return;
  const operators = (ops.operators || []).filter((o) => o.active !== false);
  replaceChildren(
    settingsEl,
    settingsForm(settings.settings),
    h("h3", null, t("routing.teams")),
    teamsBlock(operators),
    h("h3", null, t("routing.rules")),
    h("p", { class: "muted" }, t("routing.rulesHelp")),
    rulesBlock(rules.rules || []),
  );
}

const refresh = () => renderSettings().catch((e) => settingsCtx.toast(settingsCtx.errorText(e), "warn"));

function settingsForm(s) {
  const check = (key) => {
    const box = h("input", { type: "checkbox", id: `rs-${key}`, checked: Boolean(s[key]) });
    box.addEventListener("change", () => save({ [key]: box.checked }));
    return h("label", { class: "check-row", for: `rs-${key}` }, box, h("span", null, t(`routing.set.${key}`)));
  };
  const num = (key, min, max) => {
    const input = h("input", { type: "number", id: `rs-${key}`, class: "input num", min, max, value: String(s[key]) });
    input.addEventListener("change", () => {
      const v = Number(input.value);
      if (Number.isInteger(v) && v >= min && v <= max) save({ [key]: v });
      else settingsCtx.toast(t("routing.badNumber", { min, max }), "warn");
    });
    return h("label", { class: "num-row", for: `rs-${key}` }, h("span", null, t(`routing.set.${key}`)), input);
  };
  const save = async (patch) => {
    try {
      await routingApi.saveSettings(patch);
      settingsCtx.toast(t("routing.saved"), "ok");
    } catch (e) {
      settingsCtx.toast(settingsCtx.errorText(e), "warn");
    }
  };
  const grace = num("offline_grace_seconds", 0, 86400);
  return h(
    "fieldset",
    { class: "routing-form" },
    h("legend", null, t("routing.settings")),
    check("assign_on_first_reply"),
    check("auto_assign"),
    num("max_open_per_operator", 1, 1000),
    check("reassign_offline"),
    grace,
    num("escalate_after_minutes", 0, 240), // missed chat alerts (alerts.js)
  );
}

function teamsBlock(operators) {
  const rows = known.teams.map((team) => teamRow(team, operators));
  const name = h("input", { id: "team-new-name", class: "input", maxlength: 40, autocomplete: "off", placeholder: t("routing.teamHint") });
  const form = h(
    "form",
    { class: "team-form", novalidate: true },
    h("label", { for: "team-new-name", class: "sr-only" }, t("routing.newTeam")),
    name,
    h("button", { type: "submit", class: "btn primary" }, t("routing.addTeam")),
  );
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    if (!name.value.trim()) return name.focus();
    try {
      await routingApi.createTeam(name.value.trim(), []);
      await refreshTeams();
      document.getElementById("team-new-name")?.focus();
    } catch (e) {
      settingsCtx.toast(settingsCtx.errorText(e), "warn");
    }
  });
  return h("div", null, rows.length ? h("ul", { class: "teams-list" }, rows) : h("p", { class: "muted" }, t("routing.noTeams")), form);
}

async function refreshTeams() {
  known.loaded = false;
  await refresh();
}

function teamRow(team, operators) {
  const ctx = settingsCtx;
  const members = new Set(team.members.map((m) => m.id));
  const name = h("input", { class: "input team-name-input", maxlength: 40, value: team.name, "aria-label": t("routing.teamNameOf", { name: team.name }) });
  const rename = async () => {
    if (name.value.trim() === team.name || !name.value.trim()) return;
    try {
      await routingApi.updateTeam(team.id, { name: name.value.trim() });
      ctx.toast(t("routing.saved"), "ok");
      await refreshTeams();
    } catch (e) {
      ctx.toast(ctx.errorText(e), "warn");
    }
  };
  name.addEventListener("keydown", (ev) => {
    if (ev.key === "Enter") {
      ev.preventDefault();
      rename();
    }
  });
  name.addEventListener("change", rename);
  const boxes = operators.map((o) => {
    const id = `member-${team.id}-${o.id}`;
    const box = h("input", { type: "checkbox", id, checked: members.has(o.id) });
    box.addEventListener("change", async () => {
      const next = new Set(members);
      if (box.checked) next.add(o.id);
      else next.delete(o.id);
      try {
        // (no redraw: what is being typed elsewhere on the card stays)
        const r = await routingApi.updateTeam(team.id, { members: [...next] });
        members.clear();
        for (const m of r.team.members) members.add(m.id);
        team.members = r.team.members;
        ctx.toast(t("routing.saved"), "ok");
      } catch (e) {
        box.checked = !box.checked;
        ctx.toast(ctx.errorText(e), "warn");
      }
    });
    return h("label", { class: "member-check", for: id }, box, h("span", null, o.name));
  });
  const remove = async () => {
    const ok = await ctx.confirm({
      title: t("routing.deleteTitle", { name: team.name }),
      text: t("routing.deleteText", { n: team.open_tickets || 0 }),
      confirm: t("labels.delete"),
      danger: true,
    });
    if (!ok) return;
    try {
      await routingApi.removeTeam(team.id);
      await refreshTeams();
    } catch (e) {
      ctx.toast(ctx.errorText(e), "warn");
    }
  };
  return h(
    "li",
    { class: "team-item", dataset: { teamId: String(team.id) } },
    h(
      "div",
      { class: "team-item-head" },
      name,
      h("span", { class: "muted" }, t("routing.openTickets", { n: team.open_tickets || 0 })),
      h("button", { type: "button", class: "btn danger-soft small", onclick: remove, "aria-label": t("routing.deleteTeam", { name: team.name }) }, t("labels.delete")),
    ),
    h("div", { class: "team-members", role: "group", "aria-label": t("routing.members", { name: team.name }) }, boxes.length ? boxes : h("span", { class: "muted" }, t("routing.noOperators"))),
  );
}

function rulesBlock(rules) {
  const ctx = settingsCtx;
  const ids = rules.map((r) => r.id);
  const reorder = async (i, delta) => {
    const next = moved(ids, i, delta);
    if (next === ids) return;
    try {
      await routingApi.orderRules(next);
      await refresh();
    } catch (e) {
      ctx.toast(ctx.errorText(e), "warn");
    }
  };
  const items = rules.map((r, i) =>
    h(
      "li",
      { class: "rule-item", dataset: { ruleId: String(r.id) } },
      h("span", { class: "rule-pos" }, `${i + 1}.`),
      h("span", { class: "rule-kind" }, t(`routing.kind.${r.kind}`)),
      h("code", { class: "rule-pattern" }, r.pattern),
      h("span", { class: "rule-arrow", "aria-hidden": "true" }, "→"),
      h("span", { class: "team-chip" }, `👥 ${r.team.name}`),
      h(
        "span",
        { class: "rule-actions" },
        h("button", { type: "button", class: "icon-btn", disabled: i === 0, "aria-label": t("routing.up"), title: t("routing.up"), onclick: () => reorder(i, -1) }, "↑"),
        h("button", { type: "button", class: "icon-btn", disabled: i === rules.length - 1, "aria-label": t("routing.down"), title: t("routing.down"), onclick: () => reorder(i, 1) }, "↓"),
        h(
          "button",
          {
            type: "button",
            class: "btn danger-soft small",
            "aria-label": t("routing.deleteRule", { n: i + 1 }),
            onclick: async () => {
              try {
                await routingApi.removeRule(r.id);
                await refresh();
              } catch (e) {
                ctx.toast(ctx.errorText(e), "warn");
              }
            },
          },
          t("labels.delete"),
        ),
      ),
    ),
  );
  const kind = h("select", { id: "rule-kind", class: "select" }, ["url", "widget", "keywords"].map((k) => h("option", { value: k }, t(`routing.kind.${k}`))));
  const pattern = h("input", { id: "rule-pattern", class: "input", maxlength: 500, autocomplete: "off", placeholder: t("routing.hint.url") });
  kind.addEventListener("change", () => (pattern.placeholder = t(`routing.hint.${kind.value}`)));
  const team = h("select", { id: "rule-team", class: "select" }, known.teams.map((x) => h("option", { value: String(x.id) }, x.name)));
  const form = h(
    "form",
    { class: "rule-form", novalidate: true },
    h("label", { for: "rule-kind", class: "field-label" }, t("routing.ruleKind")),
    kind,
    h("label", { for: "rule-pattern", class: "field-label" }, t("routing.rulePattern")),
    pattern,
    h("label", { for: "rule-team", class: "field-label" }, t("routing.ruleTeam")),
    team,
    h("button", { type: "submit", class: "btn primary", disabled: !known.teams.length }, t("routing.addRule")),
  );
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    if (!pattern.value.trim()) return pattern.focus();
    try {
      await routingApi.createRule({ kind: kind.value, pattern: pattern.value.trim(), team_id: Number(team.value) });
      await refresh();
    } catch (e) {
      ctx.toast(ctx.errorText(e), "warn");
    }
  });
  return h(
    "div",
    null,
    items.length ? h("ol", { class: "rules-list" }, items) : h("p", { class: "muted" }, t(known.teams.length ? "routing.noRules" : "routing.teamsFirst")),
    form,
  );
}
