// @ts-check
// Plural forms for the texts of both front ends (placeholders: format.js interpolate).

import { interpolate } from "./format.js";

/** @type {Map<string, Intl.PluralRules>} */
const rules = new Map();

/**
 * The plural form of n in a locale: Russian has one / few / many (1 сообщение, 2 сообщения,
 * 5 сообщений, 21 сообщение), English one / other.
 * @param {string} locale "ru" | "en"
 * @param {number} n
 * @param {{one: string, few?: string, many?: string, other: string}} forms
 */
export function plural(locale, n, forms) {
  const lang = locale === "en" ? "en" : "ru";
  let pr = rules.get(lang);
  if (!pr) {
    pr = new Intl.PluralRules(lang === "en" ? "en-GB" : "ru-RU");
    rules.set(lang, pr);
  }
  const form = /** @type {keyof typeof forms} */ (pr.select(n));
  return interpolate(forms[form] ?? forms.other, { n });
}
