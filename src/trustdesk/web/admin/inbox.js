// The inbox: loading and filtering the ticket list, and drawing it (unread, typing, previews).

import { api } from "./api.js";
import { channelChip } from "./channels.js";
import { setupDropZone } from "./composer-files.js";
import { maybeMarkRead, openTicket } from "./conversation.js";
import { renderAssign } from "./customer-panel.js";
import { h, replaceChildren, shortWhen } from "./dom.js";
import { attachmentPreview } from "./files.js";
import { avatar, customerName, errorText, isViewing, ts } from "./helpers.js";
import { getLang, noticeText, t } from "./i18n.js";
import { labelChips, labelFilter, labelMatches, labelParam } from "./labels.js";
import { rowMarkers, teamFilter, teamMatches, teamParam } from "./routing.js";
import { renderCannedList, renderOperatorsTable } from "./settings-page.js";
import { renderBadges, renderTeam } from "./shell.js";
import { FILTERS, state, ui } from "./state.js";

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

export function noteMax(id) {
  if (typeof id === "number" && id > state.maxId) state.maxId = id;
}

export function upsertTicket(s) {
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

export async function fetchList() {
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
export async function fetchOpenForBadges() {
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
export function scheduleRefetch() {
  clearTimeout(refetchTimer);
  refetchTimer = setTimeout(fetchList, 250);
}

export async function loadOperators() {
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

export async function loadCanned() {
  try {
    const r = await api.canned();
    state.canned = r.canned || [];
  } catch {
    state.canned = [];
  }
  if (ui.cannedList) renderCannedList();
}

// ---------------------------------------------------------------- inbox layout

export function buildInbox() {
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

export function sortedTickets() {
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

export function renderList() {
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
export function renderListTyping() {
  if (!ui.list) return;
  for (const a of ui.list.querySelectorAll(".ticket-row")) {
    const s = state.tickets.get(a.dataset.ticketId);
    if (!s) continue;
    const typing = typingText(s.ticketId);
    const p = previewOf(s);
    a.querySelector(".row-preview").replaceWith(previewEl(typing || p.text, typing ? "typing" : p.cls));
  }
}
