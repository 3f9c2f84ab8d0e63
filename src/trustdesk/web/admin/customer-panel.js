// The customer panel beside a conversation: who, where from, orders, rating, related tickets.

import { request } from "./api.js";
import { channelKey } from "./channels.js";
import { assign, labelCtx, renderConvHeader } from "./conversation.js";
import { deleteCustomer, exportCustomer } from "./customer-data.js";
import { clear, describeBrowser, fullWhen, h, replaceChildren, safeHref, shortWhen } from "./dom.js";
import { onTicket } from "./frames.js";
import { avatar, customerName, errorText, toast } from "./helpers.js";
import { getLang, t } from "./i18n.js";
import { ticketRoutingCard } from "./routing.js";
import { state, ui } from "./state.js";

// ---------------------------------------------------------------- customer panel

export function renderInfo() {
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
    relatedCard(),
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
  const related = state.current && state.current.related;
  if (!related || !related.length) return null;
  const lang = getLang();
  return h(
    "section",
    { class: "info-card" },
    h("h3", null, t("info.related")),
    h(
      "ul",
      { class: "related-list" },
      related.map((r) =>
        h(
          "li",
          null,
          h("a", { href: `#/tickets/${encodeURIComponent(r.ticketId)}` }, r.ticketId),
          h("span", { class: `pill status-${r.status}` }, t(`status.${r.status}`)),
          h("span", { class: "muted" }, shortWhen(r.updated_at, lang)),
        ),
      ),
    ),
  );
}

export function renderAssign() {
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

export function renderTeamList() {
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
