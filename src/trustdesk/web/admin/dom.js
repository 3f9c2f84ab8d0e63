// Tiny DOM helpers. User data only ever goes in through textContent / text nodes.

// h (the one element helper, shared with the widget) and its child appender.
import { append, h } from "../shared/dom.js";

export { h };

export function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
  return el;
}

export function replaceChildren(el, ...children) {
  clear(el);
  append(el, children);
  return el;
}

const pad = (n) => String(n).padStart(2, "0");

/** Local HH:MM of an ISO time. */
export function hhmm(iso) {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return "";
  return `${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

/** HH:MM today, else "27.10 16:45" (or with year when not this year). */
export function shortWhen(iso, lang) {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return "";
  const now = new Date();
  if (d.toDateString() === now.toDateString()) return hhmm(iso);
  const yesterday = new Date(now);
  yesterday.setDate(now.getDate() - 1);
  if (d.toDateString() === yesterday.toDateString()) {
    return `${lang === "en" ? "Yesterday" : "Вчера"} ${hhmm(iso)}`;
  }
  const date = `${pad(d.getDate())}.${pad(d.getMonth() + 1)}`;
  return d.getFullYear() === now.getFullYear() ? date : `${date}.${d.getFullYear()}`;
}

/** Day label for separators in a conversation. */
export function dayLabel(iso, lang) {
  const d = new Date(iso);
  const now = new Date();
  if (d.toDateString() === now.toDateString()) return lang === "en" ? "Today" : "Сегодня";
  const yesterday = new Date(now);
  yesterday.setDate(now.getDate() - 1);
  if (d.toDateString() === yesterday.toDateString()) return lang === "en" ? "Yesterday" : "Вчера";
  return d.toLocaleDateString(lang === "en" ? "en-GB" : "ru-RU", {
    day: "numeric",
    month: "long",
    year: d.getFullYear() === now.getFullYear() ? undefined : "numeric",
  });
}

export function fullWhen(iso, lang) {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return "";
  return d.toLocaleString(lang === "en" ? "en-GB" : "ru-RU", {
    day: "numeric",
    month: "short",
    hour: "2-digit",
    minute: "2-digit",
  });
}

/** "Chrome 120 · Windows" from a user agent string (best effort, no library). */
export function describeBrowser(ua) {
  if (!ua) return "";
  const pick = (re) => {
    const m = ua.match(re);
    return m ? m[1].split(".")[0] : null;
  };
  let browser = null;
  let v;
  if ((v = pick(/Edg(?:e|A|iOS)?\/([\d.]+)/))) browser = `Edge ${v}`;
  else if ((v = pick(/OPR\/([\d.]+)/))) browser = `Opera ${v}`;
  else if ((v = pick(/YaBrowser\/([\d.]+)/))) browser = `Yandex ${v}`;
  else if ((v = pick(/Firefox\/([\d.]+)/))) browser = `Firefox ${v}`;
  else if ((v = pick(/(?:Chrome|CriOS)\/([\d.]+)/))) browser = `Chrome ${v}`;
  else if ((v = pick(/Version\/([\d.]+).*Safari/))) browser = `Safari ${v}`;
  else if (/python-httpx|curl|python/i.test(ua)) browser = ua.split(" ")[0];
  let os = null;
  if (/Windows/.test(ua)) os = "Windows";
  else if (/Android/.test(ua)) os = "Android";
  else if (/iPhone|iPad|iPod/.test(ua)) os = "iOS";
  else if (/Mac OS X|Macintosh/.test(ua)) os = "macOS";
  else if (/Linux/.test(ua)) os = "Linux";
  const parts = [browser, os].filter(Boolean);
  return parts.length ? parts.join(" · ") : ua.slice(0, 60);
}

/** Only http(s) URLs become links; anything else is shown as text. */
export function safeHref(url) {
  try {
    const u = new URL(url);
    return u.protocol === "http:" || u.protocol === "https:" ? u.href : null;
  } catch {
    return null;
  }
}

export function initials(name) {
  const parts = String(name || "?").trim().split(/\s+/).filter(Boolean);
  const letters = parts.slice(0, 2).map((p) => [...p][0] || "");
  return (letters.join("") || "?").toUpperCase();
}

/** A stable pleasant hue for an avatar, from any string. */
export function hueOf(text) {
  let hash = 0;
  for (const ch of String(text)) hash = (hash * 31 + ch.codePointAt(0)) | 0;
  return Math.abs(hash) % 360;
}

export function uuid() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  return [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
}
