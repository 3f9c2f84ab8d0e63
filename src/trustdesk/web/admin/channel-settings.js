// Settings → "Каналы" (admins): the Telegram bot, the email inbox (IMAP) and outgoing mail
// (SMTP), saved in the database and applied at once in every server process
// (GET/PUT /api/admin/settings/channels, POST …/{telegram|imap|smtp}/check; docs/channels.md).
// Secrets never come back from the server: a set one shows as "задан · …abcd", and an
// empty secret field keeps it.

import { request } from "./api.js";
import { h, replaceChildren } from "./dom.js";
import { addStrings, t } from "./i18n.js";

const URL_ = "/api/admin/settings/channels";

addStrings({
  ru: {
    "chs.title": "Каналы",
    "chs.help": "Telegram-бот и почтовый ящик магазина: обращения из них попадают в общий список. Изменения применяются сразу, без перезапуска сервера.",
    "chs.telegram": "Telegram",
    "chs.imap": "Входящая почта (IMAP)",
    "chs.smtp": "Исходящая почта (SMTP)",
    "chs.src.env": "из переменных окружения",
    "chs.src.dashboard": "сохранено в панели",
    "chs.on": "включено",
    "chs.off": "выключено",
    "chs.secretSet": "задан · …{last4}",
    "chs.secretSetShort": "задан",
    "chs.secretKeep": "пусто — не менять",
    "chs.f.bot_token": "Токен бота (от @BotFather)",
    "chs.f.mode": "Как получать сообщения",
    "chs.mode.polling": "Long polling (работает везде)",
    "chs.mode.webhook": "Webhook (нужен HTTPS-адрес сервера)",
    "chs.f.host": "Сервер",
    "chs.f.port": "Порт",
    "chs.f.tls": "Шифрование",
    "chs.tls.ssl": "SSL/TLS (порт 993)",
    "chs.tls.none": "Нет (сервер на этой машине)",
    "chs.f.starttls": "STARTTLS",
    "chs.f.user": "Логин",
    "chs.f.password": "Пароль",
    "chs.f.folder": "Папка",
    "chs.f.from": "Отправитель (From)",
    "chs.connect": "Подключить",
    "chs.disconnect": "Отключить",
    "chs.check": "Проверить",
    "chs.save": "Сохранить",
    "chs.reset": "Вернуть значения из переменных окружения",
    "chs.checking": "Проверяем…",
    "chs.connected": "Бот подключён: @{username}",
    "chs.botIs": "Бот: @{username}",
    "chs.disconnected": "Бот отключён.",
    "chs.saved": "Сохранено.",
    "chs.ok": "Успешно: {detail}",
    "chs.fail": "Ошибка: {detail}",
    "chs.noToken": "Введите токен бота.",
    "chs.err": "Проверьте значение:",
  },
  en: {
    "chs.title": "Channels",
    "chs.help": "The shop's Telegram bot and mailbox: what customers write there lands in the same ticket list. Changes apply at once, no server restart.",
    "chs.telegram": "Telegram",
    "chs.imap": "Incoming mail (IMAP)",
    "chs.smtp": "Outgoing mail (SMTP)",
    "chs.src.env": "from environment variables",
    "chs.src.dashboard": "saved in the dashboard",
    "chs.on": "on",
    "chs.off": "off",
    "chs.secretSet": "set · …{last4}",
    "chs.secretSetShort": "set",
    "chs.secretKeep": "empty: keep it",
    "chs.f.bot_token": "Bot token (from @BotFather)",
    "chs.f.mode": "How messages arrive",
    "chs.mode.polling": "Long polling (works anywhere)",
    "chs.mode.webhook": "Webhook (needs the server's HTTPS address)",
    "chs.f.host": "Server",
    "chs.f.port": "Port",
    "chs.f.tls": "Encryption",
    "chs.tls.ssl": "SSL/TLS (port 993)",
    "chs.tls.none": "None (a server on this machine)",
    "chs.f.starttls": "STARTTLS",
    "chs.f.user": "User name",
    "chs.f.password": "Password",
    "chs.f.folder": "Folder",
    "chs.f.from": "Sender (From)",
    "chs.connect": "Connect",
    "chs.disconnect": "Disconnect",
    "chs.check": "Check",
    "chs.save": "Save",
    "chs.reset": "Back to the environment's values",
    "chs.checking": "Checking…",
    "chs.connected": "Bot connected: @{username}",
    "chs.botIs": "Bot: @{username}",
    "chs.disconnected": "Bot disconnected.",
    "chs.saved": "Saved.",
    "chs.ok": "Success: {detail}",
    "chs.fail": "Failed: {detail}",
    "chs.noToken": "Enter the bot token.",
    "chs.err": "Check this value:",
  },
});

// ---------------------------------------------------------------- pure logic (tests/js)

export const FORM_FIELDS = {
  telegram: ["bot_token", "webhook"],
  imap: ["host", "port", "tls", "user", "password", "folder"],
  smtp: ["host", "port", "starttls", "user", "password", "from"],
};
const SECRETS = new Set(["bot_token", "password"]);

/** How a secret the server has is shown: "задан · …abcd", "задан", or "" (pure). */
export function secretText(secret) {
  if (!secret || !secret.set) return "";
  return secret.last4 ? t("chs.secretSet", { last4: secret.last4 }) : t("chs.secretSetShort");
}

/**
 * The PUT/check body of a section from the form's raw values (strings and booleans): an
 * empty secret is left out (the server keeps it), a port becomes a number (pure).
 */
export function sectionPatch(section, raw) {
  const out = {};
  for (const name of FORM_FIELDS[section]) {
    if (!(name in raw)) continue;
    let v = raw[name];
    if (SECRETS.has(name)) {
      if (typeof v !== "string" || v === "") continue;
    } else if (name === "port") {
      const n = Number(String(v).trim());
      v = Number.isInteger(n) && String(v).trim() !== "" ? n : String(v);
    } else if (typeof v === "string") {
      v = v.trim();
    }
    out[name] = v;
  }
  return out;
}

// ---------------------------------------------------------------- the card

let ctx = { errorText: (e) => String(e.message || e), toast: () => {} };

function sourceBadge(view) {
  const src = view.source === "dashboard" ? "dashboard" : "env";
  return h(
    "span",
    { class: `chs-badge ${src}`, dataset: { source: src } },
    t(`chs.src.${src}`),
    " · ",
    t(view.enabled ? "chs.on" : "chs.off"),
  );
}

function status(el, ok, text) {
  el.textContent = text;
  el.className = `chs-status ${ok ? "ok-text" : "fail-text"}`;
  el.hidden = false;
}

function field(section, name, control, hint) {
  const id = `chs-${section}-${name}`;
  control.id = id;
  control.name = name;
  const err = h("p", { class: "field-error", id: `${id}-error`, hidden: true });
  return {
    control,
    err,
    el: h(
      "div",
      { class: "ws-field chs-field" },
      h("label", { for: id }, t(`chs.f.${name}`)),
      control,
      hint ? h("p", { class: "field-hint", id: `${id}-hint` }, hint) : null,
      err,
    ),
  };
}

function text(maxlength, value, type = "text") {
  return h("input", { type, maxlength, autocomplete: "off", spellcheck: "false", value: value ?? "" });
}

function select(options, value) {
  const el = h(
    "select",
    { class: "select" },
    options.map(([v, label]) => h("option", { value: v }, label)),
  );
  el.value = value;
  return el;
}

function secretInput(secret) {
  const el = text(512, "", "password");
  el.autocomplete = "new-password";
  el.placeholder = secret && secret.set ? t("chs.secretKeep") : "";
  return el;
}

/** The line under a secret's field: "задан · …abcd" (nothing when none is set). */
function secretHint(secret) {
  return secret && secret.set ? secretText(secret) : null;
}

function showFieldError(fields, e) {
  for (const f of Object.values(fields)) {
    f.err.hidden = true;
    f.control.removeAttribute("aria-invalid");
  }
  const name = e && e.field ? String(e.field).split(".").pop() : null;
  const f = name && fields[name];
  if (!f) return false;
  // The field's own words, and what the server said (e.g. the Bot API refusing a token)
  const said = String(e.message || "").replace(/^[a-z_]+\.[a-z_]+: /, "");
  f.err.textContent = `${t("chs.err")} ${said}`.trim();
  f.err.hidden = false;
  f.control.setAttribute("aria-invalid", "true");
  f.control.focus();
  return true;
}

function rawValues(fields) {
  const out = {};
  for (const [name, f] of Object.entries(fields)) {
    const c = f.control;
    if (c.type === "checkbox") out[name] = c.checked;
    else if (name === "webhook") out[name] = c.value === "webhook";
    else out[name] = c.value;
  }
  return out;
}

function telegramBlock(view, rerender) {
  const fields = {
    bot_token: field("telegram", "bot_token", secretInput(view.bot_token), secretHint(view.bot_token)),
    webhook: field(
      "telegram",
      "webhook",
      select(
        [
          ["polling", t("chs.mode.polling")],
          ["webhook", t("chs.mode.webhook")],
        ],
        view.webhook ? "webhook" : "polling",
      ),
    ),
  };
  fields.webhook.el.querySelector("label").textContent = t("chs.f.mode");
  const result = h("p", { class: "chs-status", role: "status", hidden: !view.username });
  if (view.username) status(result, true, t("chs.botIs", { username: view.username }));
  const connect = h("button", { type: "button", class: "btn primary", id: "chs-telegram-connect" }, t("chs.connect"));
  const disconnect = h("button", { type: "button", class: "btn danger-soft", id: "chs-telegram-disconnect", hidden: !view.enabled }, t("chs.disconnect"));
  connect.addEventListener("click", async () => {
    const patch = sectionPatch("telegram", rawValues(fields));
    if (!patch.bot_token && !view.bot_token.set) {
      status(result, false, t("chs.noToken"));
      return;
    }
    connect.disabled = true;
    try {
      const r = await request("PUT", URL_, { telegram: patch });
      rerender(r.channels, { telegram: t("chs.connected", { username: r.channels.telegram.username || "?" }) });
    } catch (e) {
      if (!showFieldError(fields, e)) status(result, false, t("chs.fail", { detail: ctx.errorText(e) }));
    } finally {
      connect.disabled = false;
    }
  });
  disconnect.addEventListener("click", async () => {
    disconnect.disabled = true;
    try {
      const r = await request("PUT", URL_, { telegram: { bot_token: "" } });
      rerender(r.channels, { telegram: t("chs.disconnected") });
    } catch (e) {
      status(result, false, t("chs.fail", { detail: ctx.errorText(e) }));
      disconnect.disabled = false;
    }
  });
  return { fields, result, actions: [connect, disconnect] };
}

function mailBlock(section, view, rerender) {
  const fields = {
    host: field(section, "host", text(253, view.host)),
    port: field(section, "port", h("input", { type: "number", min: 1, max: 65535, value: String(view.port) })),
  };
  if (section === "imap") {
    fields.tls = field(
      section,
      "tls",
      select(
        [
          ["ssl", t("chs.tls.ssl")],
          ["none", t("chs.tls.none")],
        ],
        view.tls,
      ),
    );
  } else {
    const box = h("input", { type: "checkbox" });
    box.checked = Boolean(view.starttls);
    fields.starttls = field(section, "starttls", box);
    fields.starttls.el.classList.add("chs-check");
  }
  fields.user = field(section, "user", text(254, view.user));
  fields.password = field(section, "password", secretInput(view.password), secretHint(view.password));
  if (section === "imap") fields.folder = field(section, "folder", text(200, view.folder));
  else fields.from = field(section, "from", text(320, view.from));
  const result = h("p", { class: "chs-status", role: "status", hidden: true });
  const check = h("button", { type: "button", class: "btn soft", id: `chs-${section}-check` }, t("chs.check"));
  const save = h("button", { type: "button", class: "btn primary", id: `chs-${section}-save` }, t("chs.save"));
  const reset = h("button", { type: "button", class: "btn ghost", id: `chs-${section}-reset`, hidden: view.source !== "dashboard" }, t("chs.reset"));
  check.addEventListener("click", async () => {
    check.disabled = true;
    status(result, true, t("chs.checking"));
    result.className = "chs-status muted";
    try {
      const r = await request("POST", `${URL_}/${section}/check`, sectionPatch(section, rawValues(fields)));
      showFieldError(fields, null);
      status(result, r.ok, t(r.ok ? "chs.ok" : "chs.fail", { detail: r.detail }));
    } catch (e) {
      if (!showFieldError(fields, e)) status(result, false, t("chs.fail", { detail: ctx.errorText(e) }));
      else result.hidden = true;
    } finally {
      check.disabled = false;
    }
  });
  save.addEventListener("click", async () => {
    save.disabled = true;
    try {
      const r = await request("PUT", URL_, { [section]: sectionPatch(section, rawValues(fields)) });
      rerender(r.channels, { [section]: t("chs.saved") });
    } catch (e) {
      if (!showFieldError(fields, e)) status(result, false, t("chs.fail", { detail: ctx.errorText(e) }));
      save.disabled = false;
    }
  });
  reset.addEventListener("click", async () => {
    reset.disabled = true;
    try {
      const r = await request("PUT", URL_, { [section]: null });
      rerender(r.channels, { [section]: t("chs.saved") });
    } catch (e) {
      status(result, false, t("chs.fail", { detail: ctx.errorText(e) }));
      reset.disabled = false;
    }
  });
  return { fields, result, actions: [check, save, reset] };
}

function render(body, channels, notes = {}) {
  const blocks = [];
  for (const section of ["telegram", "imap", "smtp"]) {
    const view = channels[section];
    const rerender = (next, n) => render(body, next, n);
    const b = section === "telegram" ? telegramBlock(view, rerender) : mailBlock(section, view, rerender);
    if (notes[section]) status(b.result, true, notes[section]);
    blocks.push(
      h(
        "fieldset",
        { class: `chs-block chs-${section}`, dataset: { section } },
        h("legend", null, t(`chs.${section}`), " ", sourceBadge(view)),
        h(
          "div",
          { class: "chs-grid" },
          Object.values(b.fields).map((f) => f.el),
        ),
        h("div", { class: "chs-actions" }, b.actions, b.result),
      ),
    );
  }
  replaceChildren(body, blocks);
}

/** The settings card. options: {errorText, toast} */
export function buildChannelSettingsCard(options) {
  ctx = { ...ctx, ...options };
  const body = h("div", { class: "chs-body" }, h("p", { class: "muted" }, t("chs.checking")));
  request("GET", URL_).then(
    (r) => render(body, r.channels),
    (e) => replaceChildren(body, h("p", { class: "fail-text" }, ctx.errorText(e))),
  );
  return h(
    "section",
    { class: "settings-card wide channel-settings", id: "channel-settings", "aria-labelledby": "chs-heading" },
    h("h2", { id: "chs-heading" }, "📡 ", t("chs.title")),
    h("p", { class: "muted" }, t("chs.help")),
    body,
  );
}
