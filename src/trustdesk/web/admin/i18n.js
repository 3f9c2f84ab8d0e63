// Dashboard strings. Russian is the default and authoritative; English is switchable
// (toggle in the header, kept in localStorage; `?lang=en` in the URL wins). The strings
// themselves are in i18n-ru.js and i18n-en.js.

import { EN } from "./i18n-en.js";
import { RU } from "./i18n-ru.js";

const LANG_KEY = "trustdesk.admin.lang";

const STRINGS = { ru: RU, en: EN };

function initialLang() {
  try {
    const fromUrl = new URLSearchParams(location.search).get("lang");
    if (fromUrl && STRINGS[fromUrl]) {
      localStorage.setItem(LANG_KEY, fromUrl);
      return fromUrl;
    }
    const saved = localStorage.getItem(LANG_KEY);
    if (saved && STRINGS[saved]) return saved;
  } catch {
    /* storage blocked: fall through to the default */
  }
  return "ru";
}

let lang = initialLang();

export function getLang() {
  return lang;
}

export function setLang(next) {
  if (!STRINGS[next]) return;
  lang = next;
  try {
    localStorage.setItem(LANG_KEY, next);
  } catch {
    /* ignore */
  }
  // Keep the URL honest: a stale ?lang= would win on the next reload.
  const url = new URL(location.href);
  if (url.searchParams.has("lang")) {
    url.searchParams.set("lang", next);
    history.replaceState(history.state, "", url);
  }
  document.documentElement.lang = next;
}

/** A feature's own texts, {ru: {...}, en: {...}}, kept in its file (channel-settings.js). */
export function addStrings(more) {
  for (const [l, texts] of Object.entries(more)) if (STRINGS[l]) Object.assign(STRINGS[l], texts);
}

/** t("key", {name: "x"}) -> translated string with {placeholders} filled in. */
export function has(key) {
  return key in STRINGS[lang] || key in STRINGS.ru;
}

export function t(key, params) {
  let s = STRINGS[lang][key] ?? STRINGS.ru[key] ?? key;
  if (params) {
    for (const [k, v] of Object.entries(params)) s = s.split(`{${k}}`).join(String(v));
  }
  return s;
}

/**
 * A message's text in the dashboard's language (`language`, for tests): a system notice from
 * its code and args (`notice.<code>`, `.<gender>` where the language has gendered words); a
 * message without a code, or with a code this page does not know, as stored.
 */
export function noticeText(m, language = lang) {
  const n = m && m.notice;
  const stored = (m && m.message) || "";
  if (!n || typeof n.code !== "string") return stored;
  const table = STRINGS[language] || STRINGS.ru;
  const args = n.args || {};
  // A variant key first: the operator's gender, or which way a snooze ended.
  const base = `notice.${n.code}`;
  // (a variant by gender, or by who ended a snooze: `by`)
  const variant = args.gender || args.by;
  const gendered = variant ? `${base}.${variant}` : null;
  let s = gendered && Object.hasOwn(table, gendered) ? table[gendered] : table[base];
  if (typeof s !== "string") return stored;
  for (const [k, v] of Object.entries(args)) s = s.split(`{${k}}`).join(noticeArg(table, k, v, language));
  return s;
}

/** An argument as shown: a priority by its name, a time in the reader's zone. */
function noticeArg(table, key, value, language) {
  if (key === "priority" && Object.hasOwn(table, `priority.${value}`)) return table[`priority.${value}`].toLowerCase();
  if (key === "until") {
    const d = new Date(String(value));
    if (!Number.isNaN(d.getTime())) {
      return d.toLocaleString(language === "en" ? "en-GB" : "ru-RU", { day: "numeric", month: "short", hour: "2-digit", minute: "2-digit" });
    }
  }
  return String(value ?? "");
}

/** Short wait like "45 сек." or "2 мин." for lock-out messages. */
export function formatWait(seconds) {
  const n = Math.max(1, Math.ceil(seconds));
  return n < 90 ? t("wait.seconds", { n }) : t("wait.minutes", { n: Math.ceil(n / 60) });
}
