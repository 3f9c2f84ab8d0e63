// The "Виджет" page (admins): the widget's look, greeting, allowed sites and hours, saved to
// the server (applied to the next widget open, no restart), beside a live preview and the
// install snippet. And the notice every admin sees when the widget opened on a site that is
// not allowed yet, with one button to allow it.

import { request } from "./api.js";
import { fullWhen, h, replaceChildren } from "./dom.js";
import { getLang, t } from "./i18n.js";

const PATH = "/api/admin/settings/widget";
const BLOCKED = "/api/admin/settings/blocked-origins";
const FIELDS = [
  "title",
  "greeting",
  "color",
  "position",
  "allowed_origins",
  "away_message",
  "business_hours",
  "business_timezone",
];

export const widgetApi = {
  get: () => request("GET", PATH),
  save: (patch) => request("PUT", PATH, patch),
  blocked: () => request("GET", BLOCKED),
  dismiss: (origin) => request("DELETE", BLOCKED, { origin }),
};

let page = null; // the open page's parts, or null

/** "https://a.example\n\nhttp://b.example:8080/ " -> ["https://a.example", "http://b.example:8080"] */
export function parseOrigins(text) {
  return String(text || "")
    .split(/[\s,]+/)
    .map((s) => s.trim().replace(/\/+$/, ""))
    .filter(Boolean);
}

/** The keys of `next` whose values differ from `saved` (what a save sends). */
export function changedKeys(saved, next) {
  return FIELDS.filter((k) => JSON.stringify(saved[k]) !== JSON.stringify(next[k]));
}

export function snippet(origin) {
  return `<script src="${origin}/widget.js" async></script>`;
}

// ---------------------------------------------------------------- the page

export function buildWidgetPage(main, { errorText, toast }) {
  const f = {};
  const field = (name, control, hint) => {
    const id = `ws-${name}`;
    control.id = id;
    control.name = name;
    const err = h("p", { class: "field-error", id: `${id}-error`, hidden: true });
    f[name] = { control, err };
    return h(
      "div",
      { class: "ws-field" },
      h("label", { for: id }, t(`widget.${name}`)),
      control,
      hint ? h("p", { class: "field-hint", id: `${id}-hint` }, hint) : null,
      err,
    );
  };
  const colorPicker = h("input", { type: "color", class: "ws-swatch", "aria-label": t("widget.colorPick") });
  const colorText = h("input", { type: "text", id: "ws-color", maxlength: 7, autocomplete: "off", spellcheck: "false" });
  f.color = { control: colorText, err: h("p", { class: "field-error", id: "ws-color-error", hidden: true }) };
  const position = h(
    "select",
    { class: "select" },
    h("option", { value: "right" }, t("widget.right")),
    h("option", { value: "left" }, t("widget.left")),
  );
  const form = h(
    "form",
    { class: "ws-form", novalidate: true },
    h(
      "section",
      { class: "settings-card", "aria-labelledby": "ws-look" },
      h("h2", { id: "ws-look" }, "🎨 ", t("widget.look")),
      field("title", h("input", { type: "text", maxlength: 60, autocomplete: "off", placeholder: t("widget.titlePlaceholder") })),
      h(
        "div",
        { class: "ws-row" },
        h(
          "div",
          { class: "ws-field" },
          h("label", { for: "ws-color" }, t("widget.color")),
          h("div", { class: "ws-color" }, colorPicker, colorText),
          f.color.err,
        ),
        field("position", position),
      ),
      field("greeting", h("textarea", { rows: 3, maxlength: 500 }), t("widget.greetingHint")),
    ),
    h(
      "section",
      { class: "settings-card", "aria-labelledby": "ws-sites" },
      h("h2", { id: "ws-sites" }, "🌐 ", t("widget.sites")),
      h("p", { class: "muted" }, t("widget.sitesHelp")),
      field(
        "allowed_origins",
        h("textarea", { rows: 3, spellcheck: "false", placeholder: "https://shop.example" }),
        t("widget.originsHint"),
      ),
    ),
    h(
      "section",
      { class: "settings-card", "aria-labelledby": "ws-hours" },
      h("h2", { id: "ws-hours" }, "🕘 ", t("widget.hours")),
      field(
        "business_hours",
        h("input", { type: "text", maxlength: 200, autocomplete: "off", placeholder: "mon-fri 09:00-18:00; sat 10:00-14:00" }),
        t("widget.hoursHint"),
      ),
      field("business_timezone", h("input", { type: "text", maxlength: 64, autocomplete: "off", list: "ws-zones" })),
      h("datalist", { id: "ws-zones" }, zones().map((z) => h("option", { value: z }))),
      field("away_message", h("textarea", { rows: 2, maxlength: 500 })),
    ),
  );
  const save = h("button", { type: "submit", class: "btn primary" }, t("widget.save"));
  const status = h("p", { class: "form-msg", role: "status" });
  form.append(h("div", { class: "ws-actions" }, save, status));

  const preview = buildPreview();
  const code = h("code", { class: "ws-snippet-code" }, snippet(location.origin));
  const copy = h("button", { type: "button", class: "btn soft" }, t("widget.copy"));
  copy.addEventListener("click", async () => {
    try {
      await copyText(code.textContent);
      toast(t("widget.copied"));
    } catch (e) {
      toast(errorText(e), "warn");
    }
  });
  const aside = h(
    "aside",
    { class: "ws-aside" },
    h(
      "section",
      { class: "settings-card", "aria-labelledby": "ws-preview" },
      h("h2", { id: "ws-preview" }, "👀 ", t("widget.preview")),
      preview.node,
    ),
    h(
      "section",
      { class: "settings-card", "aria-labelledby": "ws-install" },
      h("h2", { id: "ws-install" }, "📋 ", t("widget.install")),
      h("p", { class: "muted" }, t("widget.installHelp")),
      h("pre", { class: "ws-snippet" }, code),
      copy,
    ),
  );
  replaceChildren(
    main,
    h(
      "div",
      { class: "settings" },
      h("h1", null, t("widget.heading")),
      h("div", { class: "ws-layout" }, form, aside),
    ),
  );

  page = { f, saved: null, preview, colorPicker, main };
  const read = () => ({
    title: f.title.control.value.trim(),
    greeting: f.greeting.control.value.trim(),
    color: colorText.value.trim().toLowerCase(),
    position: position.value,
    allowed_origins: parseOrigins(f.allowed_origins.control.value),
    away_message: f.away_message.control.value.trim(),
    business_hours: f.business_hours.control.value.trim(),
    business_timezone: f.business_timezone.control.value.trim(),
  });
  page.read = read;
  const redraw = () => preview.render(read());
  colorPicker.addEventListener("input", () => {
    colorText.value = colorPicker.value;
    redraw();
  });
  colorText.addEventListener("input", () => {
    if (/^#[0-9a-f]{6}$/i.test(colorText.value.trim())) colorPicker.value = colorText.value.trim();
    redraw();
  });
  form.addEventListener("input", redraw);
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    if (!page.saved) return;
    const next = read();
    const keys = changedKeys(page.saved, next);
    showError(null);
    if (!keys.length) {
      status.textContent = t("widget.unchanged");
      return;
    }
    save.disabled = true;
    status.textContent = t("widget.saving");
    try {
      const r = await widgetApi.save(Object.fromEntries(keys.map((k) => [k, next[k]])));
      fill(r.settings);
      status.textContent = t("widget.saved");
    } catch (e) {
      status.textContent = "";
      if (!showError(e)) toast(errorText(e), "warn");
    } finally {
      save.disabled = false;
    }
  });
  load(errorText, toast);
}

async function load(errorText, toast) {
  try {
    const r = await widgetApi.get();
    if (page) fill(r.settings);
  } catch (e) {
    toast(errorText(e), "warn");
  }
}

function fill(settings) {
  if (!page) return;
  page.saved = settings;
  const { f } = page;
  for (const k of FIELDS) {
    const v = settings[k];
    f[k].control.value = Array.isArray(v) ? v.join("\n") : v;
  }
  page.colorPicker.value = /^#[0-9a-f]{6}$/i.test(settings.color) ? settings.color : "#2563eb";
  page.preview.render(settings);
}

/** The server's 422 names its field: say it there. True when it was shown by a field. */
function showError(e) {
  if (!page) return false;
  for (const k of FIELDS) {
    const { control, err } = page.f[k];
    control.removeAttribute("aria-invalid");
    control.removeAttribute("aria-errormessage");
    err.hidden = true;
  }
  const name = e && e.status === 422 && e.field;
  if (!name || !page.f[name]) return false;
  const { control, err } = page.f[name];
  const key = `widget.bad.${name}`;
  err.textContent = t(key) === key ? e.message : t(key);
  err.hidden = false;
  control.setAttribute("aria-invalid", "true");
  control.setAttribute("aria-errormessage", err.id);
  control.focus();
  return true;
}

/** Called when another admin saved (a "settings_changed" frame): show what is stored now. */
export function onSettingsChanged(settings) {
  if (!page || !settings || !page.main.isConnected) return;
  const dirty = page.saved && changedKeys(page.saved, page.read()).length > 0;
  if (!dirty) fill(settings);
  else page.saved = settings;
}

export function leaveWidgetPage() {
  page = null;
}

// ---------------------------------------------------------------- preview

function buildPreview() {
  const title = h("strong", { class: "wp-title" });
  const status = h("span", { class: "wp-status" }, t("widget.previewOnline"));
  const greeting = h("p", { class: "wp-bubble" });
  const launcher = h("span", { class: "wp-launcher", "aria-hidden": "true" }, "💬");
  const panel = h(
    "div",
    { class: "wp-panel" },
    h("div", { class: "wp-head" }, h("span", { class: "wp-avatar", "aria-hidden": "true" }, "🛍️"), h("div", null, title, status)),
    h("div", { class: "wp-log" }, greeting),
    h("div", { class: "wp-composer" }, h("span", null, t("widget.previewPlaceholder")), h("span", { class: "wp-send", "aria-hidden": "true" }, "➤")),
  );
  const node = h("div", { class: "wp-stage", role: "img", "aria-label": t("widget.previewLabel") }, panel, launcher);
  return {
    node,
    render(s) {
      const color = /^#[0-9a-f]{6}$/i.test(s.color || "") ? s.color : "#2563eb";
      node.style.setProperty("--wp-accent", color);
      node.classList.toggle("left", s.position === "left");
      title.textContent = s.title || t("widget.titlePlaceholder");
      greeting.textContent = s.greeting || "";
      greeting.hidden = !s.greeting;
    },
  };
}

function zones() {
  try {
    return Intl.supportedValuesOf("timeZone");
  } catch {
    return ["Europe/Moscow", "Europe/Kaliningrad", "Asia/Yekaterinburg", "Asia/Novosibirsk", "UTC"];
  }
}

function copyText(text) {
  if (navigator.clipboard && window.isSecureContext) return navigator.clipboard.writeText(text);
  return new Promise((resolve, reject) => {
    const ta = h("textarea", { class: "sr-only", readonly: true });
    ta.value = text;
    document.body.appendChild(ta);
    ta.select();
    const ok = document.execCommand("copy");
    ta.remove();
    if (ok) resolve();
    else reject(new Error("copy failed"));
  });
}

// ---------------------------------------------------------------- "site not connected" notice

/** Fill `box` with one notice per unallowed site the widget opened on (admins only). */
export async function renderSiteNotices(box, { errorText, toast }) {
  if (!box) return;
  let origins = [];
  try {
    origins = (await widgetApi.blocked()).origins || [];
  } catch {
    return; // not an admin, or offline: nothing to say
  }
  replaceChildren(
    box,
    origins.slice(0, 3).map((o) => siteNotice(box, o, { errorText, toast })),
  );
  box.hidden = origins.length === 0;
}

function siteNotice(box, o, { errorText, toast }) {
  const allow = h("button", { type: "button", class: "btn primary small" }, t("widget.allow"));
  const dismiss = h(
    "button",
    { type: "button", class: "icon-btn", "aria-label": t("widget.dismiss", { origin: o.origin }), title: t("widget.dismissShort") },
    "✕",
  );
  const row = h(
    "div",
    { class: "site-notice", role: "status" },
    h("span", { "aria-hidden": "true" }, "⚠️"),
    h(
      "p",
      null,
      t("widget.blocked", { origin: o.origin }),
      " ",
      h("span", { class: "muted" }, t("widget.blockedWhen", { when: fullWhen(o.last_seen, getLang()) })),
    ),
    allow,
    dismiss,
  );
  allow.addEventListener("click", async () => {
    allow.disabled = true;
    try {
      const current = (await widgetApi.get()).settings;
      const r = await widgetApi.save({ allowed_origins: [...current.allowed_origins, o.origin] });
      toast(t("widget.allowed", { origin: o.origin }));
      onSettingsChanged(r.settings);
      await renderSiteNotices(box, { errorText, toast });
    } catch (e) {
      allow.disabled = false;
      toast(errorText(e), "warn");
    }
  });
  dismiss.addEventListener("click", async () => {
    try {
      await widgetApi.dismiss(o.origin);
      await renderSiteNotices(box, { errorText, toast });
    } catch (e) {
      toast(errorText(e), "warn");
    }
  });
  return row;
}
