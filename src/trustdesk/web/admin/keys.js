// The dashboard's keyboard: j/k and the arrows between tickets, "?" for the list of
// shortcuts, Escape to leave the reply box; and the reply's character counter.
// The pure parts (counterState, stepId, shortcutFor) have no DOM and are tested by
// `node --test tests/js/` (tests/js/keys.test.mjs); nothing here runs at import time.

/** The counter shows from this share of the limit on (earlier it is only noise). */
export const COUNTER_FROM = 0.8;

/**
 * What the counter near the reply box says for `len` characters of `max`:
 * null below 80 %, else {text: "3 650 / 4 000", over: len > max, full: len >= max}.
 */
export function counterState(len, max, locale = "ru") {
  if (len < Math.ceil(max * COUNTER_FROM)) return null;
  const fmt = new Intl.NumberFormat(locale);
  return { text: `${fmt.format(len)} / ${fmt.format(max)}`, over: len > max, full: len >= max };
}

/**
 * The ticket `delta` rows away from `currentId` in the list `ids` (in its shown order),
 * staying at the ends; with no current ticket, j/ArrowDown takes the first and k the last.
 */
export function stepId(ids, currentId, delta) {
  if (!ids.length) return null;
  const at = ids.indexOf(currentId);
  if (at < 0) return delta > 0 ? ids[0] : ids[ids.length - 1];
  return ids[Math.max(0, Math.min(ids.length - 1, at + delta))];
}

/** True when keys typed belong to a field (no single-letter shortcut may fire there). */
export function isTextField(el) {
  if (!el || !el.tagName) return false;
  const tag = el.tagName.toLowerCase();
  if (tag === "textarea" || tag === "select" || el.isContentEditable) return true;
  if (tag !== "input") return false;
  const type = String(el.type || "text").toLowerCase();
  return !["button", "checkbox", "radio", "submit", "reset", "file", "range", "color"].includes(type);
}

/** The shortcut a keydown means: "next" | "prev" | "help" | null. */
export function shortcutFor({ key, ctrlKey, metaKey, altKey, inField }) {
  if (ctrlKey || metaKey || altKey || inField) return null;
  if (key === "j" || key === "о" || key === "ArrowDown") return "next"; // о: j on ЙЦУКЕН
  if (key === "k" || key === "л" || key === "ArrowUp") return "prev"; // л: k on ЙЦУКЕН
  if (key === "?") return "help";
  return null;
}

// ---------------------------------------------------------------- DOM (browser only)

/**
 * Listen on the document. `actions.next(ev)` / `actions.prev(ev)` move in the list
 * (returning false when they do not apply, so the key keeps its usual effect);
 * `actions.help(ev)` opens the dialog. Returns a function that removes the listener.
 */
export function installKeys(actions) {
  const onKey = (ev) => {
    if (ev.defaultPrevented || document.querySelector("dialog[open], .modal-backdrop")) return;
    const what = shortcutFor({
      key: ev.key,
      ctrlKey: ev.ctrlKey,
      metaKey: ev.metaKey,
      altKey: ev.altKey,
      inField: isTextField(ev.target),
    });
    if (!what) return;
    if (actions[what](ev) !== false) ev.preventDefault();
  };
  document.addEventListener("keydown", onKey);
  return () => document.removeEventListener("keydown", onKey);
}

/**
 * The "?" dialog: a real <dialog> (role dialog, modal, labelled by its title), closed by
 * Escape or its button; focus returns to where it was. `rows` = [[keys, what], ...].
 */
export function showShortcuts({ title, close, rows }) {
  const back = document.activeElement;
  const el = (tag, attrs, ...kids) => {
    const n = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) n.setAttribute(k, v);
    for (const kid of kids) n.append(kid);
    return n;
  };
  const list = el("dl", { class: "shortcut-list" });
  for (const [keys, what] of rows) {
    const dt = el("dt");
    keys.forEach((k, i) => {
      if (i) dt.append(" / ");
      dt.append(el("kbd", null, k));
    });
    list.append(dt, el("dd", null, what));
  }
  const closeBtn = el("button", { type: "button", class: "btn ghost small" }, close);
  const dialog = el(
    "dialog",
    { class: "shortcuts-dialog", "aria-labelledby": "shortcuts-title", role: "dialog" },
    el("h2", { id: "shortcuts-title" }, title),
    list,
    el("div", { class: "shortcuts-foot" }, closeBtn),
  );
  closeBtn.addEventListener("click", () => dialog.close());
  dialog.addEventListener("close", () => {
    dialog.remove();
    if (back && back.isConnected && typeof back.focus === "function") back.focus();
  });
  document.body.append(dialog);
  dialog.showModal(); // Escape closes it ("cancel", then "close")
  closeBtn.focus();
  return dialog;
}
