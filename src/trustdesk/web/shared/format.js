// @ts-check
// Formatting shared by the dashboard and the widget: sizes, durations, times, placeholders.

/** @param {number} n */
export const pad = (n) => String(n).padStart(2, "0");

/**
 * "1,2 МБ" / "1.2 MB": one decimal below 100 of a unit, none above.
 * @param {unknown} bytes
 * @param {string} [locale] "en" or anything else for Russian
 */
export function formatSize(bytes, locale) {
  const n = Number(bytes) || 0;
  const ru = locale !== "en";
  const units = ru ? ["Б", "КБ", "МБ", "ГБ"] : ["B", "KB", "MB", "GB"];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i += 1;
  }
  const num = i === 0 || v >= 100 ? String(Math.round(v)) : v.toFixed(1).replace(/\.0$/, "");
  return `${ru ? num.replace(".", ",") : num} ${units[i]}`;
}

/**
 * "0:07" from seconds.
 * @param {number} seconds
 */
export function formatDuration(seconds) {
  const s = Math.max(0, Math.floor(Number.isFinite(seconds) ? seconds : 0));
  return `${Math.floor(s / 60)}:${pad(s % 60)}`;
}

/**
 * A Date from an ISO string; now when missing or invalid.
 * @param {string | null | undefined} iso
 */
export function parseTime(iso) {
  const d = iso ? new Date(iso) : new Date();
  return Number.isNaN(d.getTime()) ? new Date() : d;
}

/** @param {Date} d */
export function hhmm(d) {
  return `${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

/** @param {Date} d local calendar day, "2026-12-07" */
export function dayKey(d) {
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
}

/**
 * JSON from a string store (localStorage-like), the fallback when missing or broken.
 * @template T
 * @param {{get: (key: string) => string | null}} storage
 * @param {string} key
 * @param {T} fallback
 * @returns {any}
 */
export function readJson(storage, key, fallback) {
  try {
    const v = JSON.parse(storage.get(key) || "null");
    return v ?? fallback;
  } catch {
    return fallback;
  }
}

/** @returns {string} an RFC 4122 version 4 UUID */
export function uuid() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const hex = [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/**
 * "{name} печатает…" with {name: "Анна"}; a placeholder without a value stays as it is.
 * @param {string} text
 * @param {Record<string, unknown>} [vars]
 */
export function interpolate(text, vars) {
  if (!vars) return text;
  let s = text;
  for (const [k, v] of Object.entries(vars)) s = s.split(`{${k}}`).join(String(v));
  return s;
}
