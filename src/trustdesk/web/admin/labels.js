// Labels on tickets and merging two tickets of one customer (api/labels.py): the settings
// card (admins), chips on list rows and in the conversation header, the "add label" picker,
// the list's label filter, the report's counts and "Объединить с…". app.js only calls the
// hooks exported here.

import { request } from "./api.js";
import { h, replaceChildren, shortWhen } from "./dom.js";
import { getLang, t } from "./i18n.js";

const enc = encodeURIComponent;
const PALETTE = ["#1d4ed8", "#17a34a", "#d92d2d", "#f59e0b", "#8b5cf6", "#0ea5e9", "#ec4899", "#64748b"];

export const labelsApi = {
  list: () => request("GET", "/api/admin/labels"),
  create: (name, color) => request("POST", "/api/admin/labels", { name, color }),
  update: (id, body) => request("PATCH", `/api/admin/labels/${enc(id)}`, body),
  remove: (id) => request("DELETE", `/api/admin/labels/${enc(id)}`),
  put: (ticketId, labelId) =>
    request("POST", `/api/admin/support/ticket/${enc(ticketId)}/labels`, { label_id: labelId }),
  take: (ticketId, labelId) =>
    request("DELETE", `/api/admin/support/ticket/${enc(ticketId)}/labels/${enc(labelId)}`),
  merge: (from, into) => request("POST", "/api/admin/support/merge", { from, into }),
  related: (ticketId) => request("GET", `/api/admin/support/ticket/${enc(ticketId)}/related`),
};

// ---------------------------------------------------------------- colours (pure)

function channel(c) {
  const v = c / 255;
  return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
}

/** WCAG relative luminance of "#rrggbb" (0 black .. 1 white); null if it is not one. */
export function luminance(hex) {
  const m = /^#([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})$/i.exec(String(hex));
  if (!m) return null;
  const [r, g, b] = m.slice(1).map((x) => channel(parseInt(x, 16)));
  return 0.2126 * r + 0.7152 * g + 0.0722 * b;
}

/**
 * The text colour for a chip of colour `hex`: white while it keeps WCAG's 4.5:1 (as on
 * most saturated colours, where it looks right), else black. Either way at least 4.5:1:
 * where white falls below it (luminance over 0.183), black is above 4.66.
 */
export function textColor(hex) {
  const l = luminance(hex);
  if (l === null) return "#000000";
  return 1.05 / (l + 0.05) >= 4.5 ? "#ffffff" : "#000000";
}

/** A chip: the label's colour behind its name, in black or white. */
export function chip(label, ...extra) {
  const el = h("span", { class: "label-chip", dataset: { labelId: String(label.id) } }, h("span", { class: "label-name" }, label.name), ...extra);
  el.style.backgroundColor = label.color;
  el.style.color = textColor(label.color);
  return el;
}

export function labelChips(labels) {
  if (!labels || !labels.length) return null;
  return h("span", { class: "label-chips" }, labels.map((l) => chip(l)));
}

// ---------------------------------------------------------------- the label set

const known = { labels: [], loaded: false, loading: null };
let filterId = null; // the list's label filter (a label id) or null
let filterSelect = null;
let filterChanged = () => {};
let cardList = null;
let cardCtx = null;

async function loadLabels() {
  if (!known.loading) {
    known.loading = labelsApi
      .list()
      .then((r) => {
        known.labels = r.labels || [];
        known.loaded = true;
      })
      .finally(() => {
        known.loading = null;
      });
  }
  await known.loading;
  renderFilter();
  renderCardList();
}

// ---------------------------------------------------------------- the list's filter

/** The select beside the list's filters; `onChange` refetches and redraws the list. */
export function labelFilter(onChange) {
  filterChanged = onChange;
  filterSelect = h("select", { class: "select label-filter", "aria-label": t("labels.filter") });
  filterSelect.addEventListener("change", () => {
    filterId = filterSelect.value ? Number(filterSelect.value) : null;
    filterChanged();
  });
  renderFilter();
  loadLabels().catch(() => {});
  return filterSelect;
}

function renderFilter() {
  if (!filterSelect) return;
  if (filterId !== null && !known.labels.some((l) => l.id === filterId)) {
    if (known.loaded) filterId = null;
  }
  replaceChildren(
    filterSelect,
    h("option", { value: "" }, t("labels.all")),
    known.labels.map((l) => h("option", { value: String(l.id) }, `🏷 ${l.name}`)),
  );
  filterSelect.value = filterId === null ? "" : String(filterId);
  filterSelect.hidden = !known.labels.length && filterId === null;
}

/** For api.tickets: the label to filter by, or undefined. */
export function labelParam() {
  return filterId === null ? undefined : filterId;
}

/** Client-side half of the filter (live updates): does the summary carry the label? */
export function labelMatches(s) {
  return filterId === null || (s.labels || []).some((l) => l.id === filterId);
}

// ---------------------------------------------------------------- popup menus

/**
 * A button that opens a menu (WAI-ARIA menu button): Enter / Space / ArrowDown open it,
 * arrows and Home / End move, Escape or Tab close it and focus returns to the button.
 * `items()` returns (a promise of) [{text, checked?, disabled?, run}]; `run` may return
 * true to keep the menu open (checkboxes).
 */
function menuButton({ text, label, cls, items }) {
  const id = `menu-${Math.random().toString(36).slice(2, 9)}`;
  const btn = h("button", { type: "button", class: cls, "aria-haspopup": "menu", "aria-expanded": "false", "aria-controls": id }, text);
  const menu = h("div", { id, class: "label-menu", role: "menu", "aria-label": label, hidden: true });
  const wrap = h("span", { class: "menu-wrap" }, btn, menu);
  const entries = () => [...menu.querySelectorAll("[role^=menuitem]:not([aria-disabled=true])")];
  const focusAt = (i) => {
    const list = entries();
    if (list.length) list[(i + list.length) % list.length].focus();
  };
  const close = (refocus = true) => {
    if (menu.hidden) return;
    menu.hidden = true;
    btn.setAttribute("aria-expanded", "false");
    document.removeEventListener("pointerdown", outside, true);
    if (refocus) btn.focus();
  };
  const outside = (ev) => {
    if (!wrap.contains(ev.target)) close(false);
  };
  const fill = async (keep) => {
    let list;
    try {
      list = await items();
    } catch (e) {
      list = [{ text: e.message || String(e), disabled: true }];
    }
    replaceChildren(
      menu,
      list.map((it) => {
        const role = it.checked === undefined ? "menuitem" : "menuitemcheckbox";
        const el = h(
          "div",
          {
            role,
            tabindex: "-1",
            class: `menu-item${it.checked ? " checked" : ""}`,
            "aria-checked": it.checked === undefined ? null : String(Boolean(it.checked)),
            "aria-disabled": it.disabled ? "true" : null,
          },
          it.checked === undefined ? null : h("span", { class: "menu-check", "aria-hidden": "true" }, it.checked ? "✓" : ""),
          it.node || it.text,
        );
        const act = async () => {
          if (it.disabled || !it.run) return;
          const stay = await it.run();
          if (stay && !menu.hidden) {
            const at = entries().indexOf(el);
            await fill(true);
            focusAt(at);
          } else {
            close(!stay);
          }
        };
        el.addEventListener("click", act);
        el.addEventListener("keydown", (ev) => {
          if (ev.key === "Enter" || ev.key === " ") {
            ev.preventDefault();
            act();
          }
        });
        return el;
      }),
    );
    if (!keep) focusAt(0);
  };
  const open = async () => {
    menu.hidden = false;
    btn.setAttribute("aria-expanded", "true");
    document.addEventListener("pointerdown", outside, true);
    replaceChildren(menu, h("div", { class: "menu-item muted", role: "none" }, t("list.loading")));
    await fill(false);
  };
  // The header is redrawn on every change of the ticket: the same menu is put back in
  // (stableFor), and the focus it had returns to it once it is in the page again.
  wrap.remember = () => {
    const active = document.activeElement;
    const at = wrap.contains(active) ? (active === btn ? -1 : entries().indexOf(active)) : null;
    if (at === null) return;
    queueMicrotask(() => {
      if (!wrap.isConnected) return;
      if (at < 0) btn.focus();
      else focusAt(at);
    });
  };
  btn.addEventListener("click", () => (menu.hidden ? open() : close()));
  btn.addEventListener("keydown", (ev) => {
    if (ev.key === "ArrowDown" && menu.hidden) {
      ev.preventDefault();
      open();
    }
  });
  menu.addEventListener("keydown", (ev) => {
    const list = entries();
    const at = list.indexOf(document.activeElement);
    const moves = { ArrowDown: at + 1, ArrowUp: at - 1, Home: 0, End: list.length - 1 };
    if (ev.key in moves) {
      ev.preventDefault();
      focusAt(moves[ev.key]);
    } else if (ev.key === "Escape") {
      ev.preventDefault();
      close();
    } else if (ev.key === "Tab") {
      close(false);
    }
  });
  return wrap;
}

// ---------------------------------------------------------------- the conversation header

let stable = { ticketId: null, menus: new Map(), summary: null };

/** The menu `kind` of the open ticket: made once per ticket, then the same element. */
function stableFor(s, kind, make) {
  // (made again for another ticket or another language: the menus hold their texts)
  if (stable.ticketId !== s.ticketId || stable.lang !== getLang())
    stable = { ticketId: s.ticketId, lang: getLang(), menus: new Map(), summary: s };
  stable.summary = s;
  let wrap = stable.menus.get(kind);
  if (!wrap) {
    wrap = make();
    stable.menus.set(kind, wrap);
  }
  wrap.remember();
  return wrap;
}

/**
 * The ticket's chips (each with a "take off" button) and the "add label" menu.
 * ctx: {errorText, toast, onTicket(summary)}.
 */
export function ticketLabels(s, ctx) {
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
  const chips = (s.labels || []).map((l) =>
    chip(
      l,
      h(
        "button",
        {
          type: "button",
          class: "label-x",
          "aria-label": t("labels.remove", { name: l.name }),
          title: t("labels.remove", { name: l.name }),
          onclick: () => apply(() => labelsApi.take(s.ticketId, l.id)),
        },
        "×",
      ),
    ),
  );
  const picker = stableFor(s, "labels", () =>
    menuButton({
      text: `🏷 ${t("labels.addToTicket")}`,
      label: t("labels.pickerLabel"),
      cls: "btn ghost small label-add",
      items: async () => {
        await loadLabels();
        const current = new Set((stable.summary.labels || []).map((l) => l.id));
        if (!known.labels.length) return [{ text: t("labels.none"), disabled: true }];
        return known.labels.map((l) => ({
          node: chip(l),
          checked: current.has(l.id),
          run: () => apply(() => (current.has(l.id) ? labelsApi.take(s.ticketId, l.id) : labelsApi.put(s.ticketId, l.id))),
        }));
      },
    }),
  );
  return h("div", { class: "conv-labels", role: "group", "aria-label": t("labels.heading") }, chips, picker);
}

/**
 * "Объединить с…": the same customer's other tickets; the chosen one is merged into this
 * one (this conversation stays, the other is closed). ctx: {errorText, toast, confirm,
 * onTicket, refresh}.
 */
export function mergeButton(s, ctx) {
  return stableFor(s, "merge", () => mergeMenu(s, ctx));
}

function mergeMenu(s, ctx) {
  return menuButton({
    // (on a phone only the icon shows; the name stays for screen readers)
    text: [h("span", { "aria-hidden": "true", class: "merge-icon" }, "🔗"), h("span", { class: "merge-text" }, t("merge.button"))],
    label: t("merge.menu"),
    cls: "btn ghost merge-btn",
    items: async () => {
      const r = await labelsApi.related(s.ticketId);
      const others = (r.tickets || []).filter((x) => x.ticketId !== s.ticketId);
      if (!others.length) return [{ text: t("merge.none"), disabled: true }];
      const lang = getLang();
      return others.map((o) => ({
        node: h(
          "span",
          { class: "merge-item" },
          h("span", { class: "merge-id" }, o.ticketId),
          h("span", { class: `pill status-${o.status}` }, t(`status.${o.status}`)),
          h("span", { class: "muted" }, shortWhen(o.updated_at, lang)),
        ),
        run: () => mergeInto(o.ticketId, s.ticketId, ctx),
      }));
    },
  });
}

async function mergeInto(from, into, ctx) {
  const ok = await ctx.confirm({
    title: t("merge.title"),
    text: t("merge.text", { from, into }),
    confirm: t("merge.yes"),
  });
  if (!ok) return false;
  try {
    const r = await labelsApi.merge(from, into);
    if (r.ticket) ctx.onTicket(r.ticket);
    ctx.refresh();
    ctx.toast(t("merge.done", { from, into }), "ok");
  } catch (e) {
    ctx.toast(ctx.errorText(e), "warn");
  }
  return false;
}

// ---------------------------------------------------------------- settings (admins)

/** The settings card: every label (rename, recolour, delete) and a form for a new one. */
export function buildLabelsCard(ctx) {
  cardCtx = ctx;
  cardList = h("ul", { class: "labels-list" });
  const name = h("input", { id: "label-new-name", maxlength: 40, autocomplete: "off", required: true, placeholder: t("labels.nameHint") });
  const color = h("input", { id: "label-new-color", type: "color", class: "label-color", value: PALETTE[0] });
  const error = h("p", { class: "form-error", role: "alert", hidden: true });
  const form = h(
    "form",
    { class: "label-form", novalidate: true },
    h("label", { for: "label-new-name" }, t("labels.name")),
    h("div", { class: "label-form-row" }, name, h("label", { for: "label-new-color", class: "sr-only" }, t("labels.color")), color, h("button", { type: "submit", class: "btn primary" }, t("labels.add"))),
    error,
  );
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    if (!name.value.trim()) {
      error.textContent = t("error.invalid");
      error.hidden = false;
      name.focus();
      return;
    }
    try {
      await labelsApi.create(name.value.trim(), color.value);
      name.value = "";
      color.value = PALETTE[(known.labels.length + 1) % PALETTE.length];
      error.hidden = true;
      await loadLabels();
    } catch (e) {
      error.textContent = ctx.errorText(e);
      error.hidden = false;
    }
  });
  loadLabels().catch((e) => ctx.toast(ctx.errorText(e), "warn"));
  return h(
    "section",
    { class: "settings-card labels-card", "aria-labelledby": "labels-heading" },
    h("h2", { id: "labels-heading" }, "🏷 ", t("labels.heading")),
    h("p", { class: "muted" }, t("labels.help")),
    cardList,
    form,
  );
}

function renderCardList() {
  if (!cardList) return;
  if (!known.labels.length) {
    replaceChildren(cardList, h("li", { class: "muted" }, t("labels.empty")));
    return;
  }
  replaceChildren(cardList, known.labels.map(labelRow));
}

function labelRow(l) {
  const ctx = cardCtx;
  const nameId = `label-name-${l.id}`;
  const name = h("input", { id: nameId, class: "label-name-input", maxlength: 40, value: l.name, "aria-label": t("labels.name") });
  const color = h("input", { type: "color", class: "label-color", value: l.color, "aria-label": t("labels.colorOf", { name: l.name }) });
  const preview = chip(l);
  color.addEventListener("input", () => {
    preview.style.backgroundColor = color.value;
    preview.style.color = textColor(color.value);
  });
  const save = async () => {
    const body = {};
    if (name.value.trim() !== l.name) body.name = name.value.trim();
    if (color.value.toLowerCase() !== l.color) body.color = color.value.toLowerCase();
    if (!Object.keys(body).length) return;
    try {
      await labelsApi.update(l.id, body);
      ctx.toast(t("labels.saved"), "ok");
      await loadLabels();
    } catch (e) {
      ctx.toast(ctx.errorText(e), "warn");
    }
  };
  const remove = async () => {
    const ok = await ctx.confirm({
      title: t("labels.deleteTitle", { name: l.name }),
      text: t("labels.deleteText", { n: l.tickets || 0 }),
      confirm: t("labels.delete"),
      danger: true,
    });
    if (!ok) return;
    try {
      await labelsApi.remove(l.id);
      await loadLabels();
    } catch (e) {
      ctx.toast(ctx.errorText(e), "warn");
    }
  };
  name.addEventListener("keydown", (ev) => {
    if (ev.key === "Enter") {
      ev.preventDefault();
      save();
    }
  });
  return h(
    "li",
    { class: "label-row", dataset: { labelId: String(l.id) } },
    preview,
    name,
    color,
    h("span", { class: "muted label-count" }, t("labels.tickets", { n: l.tickets || 0 })),
    h("button", { type: "button", class: "btn soft small", onclick: save }, t("labels.save")),
    h("button", { type: "button", class: "btn danger-soft small", onclick: remove, "aria-label": t("labels.deleteOne", { name: l.name }) }, t("labels.delete")),
  );
}

// ---------------------------------------------------------------- the report

/** The report's card: tickets of the period per label, as bars. */
export function reportLabelsCard(counts) {
  const rows = (counts || []).filter((c) => c.tickets > 0);
  const max = Math.max(1, ...rows.map((c) => c.tickets));
  return h(
    "section",
    { class: "report-card labels-report", "aria-labelledby": "labels-report-heading" },
    h("div", { class: "report-card-head" }, h("h2", { id: "labels-report-heading" }, t("labels.report"))),
    rows.length
      ? h(
          "ul",
          { class: "label-bars" },
          rows.map((c) => {
            const bar = h("span", { class: "label-bar-fill" });
            bar.style.width = `${Math.round((c.tickets / max) * 100)}%`;
            bar.style.backgroundColor = c.color;
            return h(
              "li",
              { class: "label-bar", dataset: { labelId: String(c.id) } },
              chip(c),
              h("span", { class: "label-bar-track", "aria-hidden": "true" }, bar),
              h("span", { class: "label-bar-n" }, String(c.tickets)),
            );
          }),
        )
      : h("p", { class: "muted" }, t("labels.reportEmpty")),
  );
}
