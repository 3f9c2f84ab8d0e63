// The message log: rows (text, attachment, receipt), grouping, day dividers, the order of
// stored rows, the scroll position and "new messages" pill, the greeting, the toast.
// Attachments are drawn by files.js, loaded with the first attachment (a first open has none).

import { h, loadStyle } from "../shared/dom.js";
import { dayKey, hhmm } from "../shared/format.js";
import { localizeMessage, localizeServerText } from "./i18n.js";

const URL_RE = /\bhttps?:\/\/[^\s<>"']+[^\s<>"'.,;:!?)\]]/giu;
const RECEIPTS = { pending: "🕓", sent: "✓", read: "✓✓", failed: "⚠" };

export function roleOf(senderType) {
  if (senderType === "customer") return "customer";
  if (senderType === "system") return "system";
  return "agent"; // admin and bot
}

/** The receipt of a customer's row: pending/failed before it is stored, then sent/read. */
export function receiptState({ id, failed, adminReadId }) {
  if (!id) return failed ? "failed" : "pending";
  return Number(id) <= adminReadId ? "read" : "sent";
}

// Text with http(s) links made clickable; everything goes in as text nodes.
function appendRichText(parent, text) {
  let last = 0;
  for (const match of text.matchAll(URL_RE)) {
    if (match.index > last) parent.append(document.createTextNode(text.slice(last, match.index)));
    const a = h("a", "link", match[0]);
    a.href = match[0];
    a.target = "_blank";
    a.rel = "noopener noreferrer nofollow";
    parent.append(a);
    last = match.index + match[0].length;
  }
  if (last < text.length) parent.append(document.createTextNode(text.slice(last)));
}

export function install(app) {
  const { S, els, t, locale, act, store } = app;

  // Attachments and the lightbox (files.js), on demand.
  let files = null;
  let lightbox = null;
  const fileCtx = {
    t,
    locale,
    token: () => S.token,
    openImage: (att, url) => lightbox?.open(att, url),
    notify: (text) => showToast(text),
  };
  function loadFiles() {
    files ||= Promise.all([
      import("./files.js"),
      loadStyle("./files.css", import.meta.url),
    ]).then(([m]) => {
      lightbox = m.createLightbox(fileCtx);
      els.app.append(lightbox.root);
      return m;
    });
    return files;
  }

  function timeEl(date) {
    const node = h("time", "time", hhmm(date));
    node.dateTime = date.toISOString();
    return node;
  }

  function dayLabel(d) {
    const today = new Date();
    const yesterday = new Date(today.getFullYear(), today.getMonth(), today.getDate() - 1);
    if (dayKey(d) === dayKey(today)) return t("today");
    if (dayKey(d) === dayKey(yesterday)) return t("yesterday");
    return d.toLocaleDateString(locale === "en" ? "en-GB" : "ru-RU", {
      day: "numeric",
      month: "long",
    });
  }

  function dayDivider(date) {
    const node = h("div", "day", dayLabel(date));
    node.setAttribute("aria-hidden", "true");
    return node;
  }

  // What a message is, in one line (ticket list, the loader's preview).
  function summary(m) {
    const a = m.attachment;
    const text = m.sender_type === "customer" ? m.message || "" : localizeMessage(locale, m);
    if (!a) return text;
    const caption = m.message && m.message !== a.name ? m.message : "";
    if (a.kind === "image") return `🖼 ${caption || t("photo")}`;
    if (a.kind === "audio" && m.kind === "voice") return `🎤 ${t("voiceMessage")}`;
    return `📎 ${caption || a.name}`;
  }

  function attachmentInto(bubble, attachment) {
    const slot = h("div", "att-slot");
    bubble.append(slot);
    loadFiles()
      .then((m) => {
        slot.replaceWith(m.renderAttachment(attachment, fileCtx));
      })
      .catch(() => 0);
  }

  function buildRow({ role, senderType, senderName, text, date, attachment = null, kind = "text" }) {
    const row = h("div", `row row--${role}`);
    row.dataset.sender = senderType;
    row.dataset.name = senderName || "";
    row.dataset.ts = String(date.getTime());
    if (role === "system") {
      row.append(h("div", "sys", text), timeEl(date));
      return row;
    }
    if (role === "agent") {
      const who = senderType === "admin" && senderName ? ` · ${senderName}` : "";
      row.append(h("div", "row__label", t("supportLabel") + who));
    }
    const line = h("div", "row__line");
    const bubble = h("div", "bubble");
    if (attachment && typeof attachment === "object" && attachment.id) {
      bubble.classList.add("bubble--att", `bubble--${attachment.kind}`);
      row.classList.add("row--att");
      if (attachment.kind === "audio" && kind !== "voice") {
        bubble.append(h("div", "att-audio-name", attachment.name || ""));
      }
      attachmentInto(bubble, attachment);
      if (text) {
        const caption = h("div", "bubble__caption");
        appendRichText(caption, text);
        bubble.append(caption);
      }
    } else {
      appendRichText(bubble, text);
    }
    line.append(bubble);
    if (role === "customer") {
      const avatar = h("span", "row__avatar", "👤");
      avatar.setAttribute("aria-hidden", "true");
      line.append(avatar);
    }
    const meta = h("div", "meta");
    meta.append(timeEl(date));
    if (role === "customer") meta.append(h("span", "receipt"));
    row.append(line, meta);
    return row;
  }

  function setReceipt(row) {
    const receipt = row.querySelector(".receipt");
    if (!receipt) return;
    const state = receiptState({
      id: row.dataset.id,
      failed: row.dataset.state === "failed",
      adminReadId: S.adminReadId,
    });
    row.dataset.state = state;
    receipt.dataset.state = state;
    receipt.textContent = RECEIPTS[state];
    receipt.title = t(state);
    receipt.setAttribute("aria-label", t(state));
  }

  function refreshReceipts() {
    for (const row of els.log.querySelectorAll(".row--customer")) setReceipt(row);
  }

  // Read receipts follow the operators' read position.
  store.subscribe(["adminReadId"], refreshReceipts);

  function refreshGrouping(row) {
    if (!row || !row.classList.contains("row")) return;
    const prev = row.previousElementSibling;
    const same =
      prev &&
      prev.classList.contains("row") &&
      !prev.classList.contains("row--system") &&
      prev.dataset.sender === row.dataset.sender &&
      prev.dataset.name === row.dataset.name &&
      Math.abs(Number(row.dataset.ts) - Number(prev.dataset.ts)) < 5 * 60 * 1000;
    row.classList.toggle("row--cont", Boolean(same) && !row.classList.contains("row--system"));
  }

  // Put a stored row in id order: after the last stored row with a smaller id, before
  // pending rows.
  function placeStored(row, id) {
    row.remove();
    const rows = [...els.log.querySelectorAll(".row[data-id]")];
    let after = null;
    for (let i = rows.length - 1; i >= 0; i--) {
      if (Number(rows[i].dataset.id) < id) {
        after = rows[i];
        break;
      }
    }
    const date = new Date(Number(row.dataset.ts));
    if (after) {
      const isLast = after === rows[rows.length - 1];
      if (isLast && after.dataset.day !== dayKey(date)) after.after(dayDivider(date), row);
      else after.after(row);
    } else {
      const first = rows[0] || els.log.querySelector(".row--pending");
      const local = els.log.querySelector(".row[data-local]");
      const nodes = rows.length === 0 ? [dayDivider(date), row] : [row];
      if (first) first.before(...nodes);
      else if (local) local.after(...nodes);
      else els.log.append(...nodes);
    }
    row.dataset.day = dayKey(date);
    refreshGrouping(row);
    refreshGrouping(row.nextElementSibling);
  }

  // A row of ours not stored yet (a queued message, an upload): at the end, pinned.
  function appendPending(row) {
    withScroll(
      () => {
        els.log.append(row);
        setReceipt(row);
        refreshGrouping(row);
      },
      { force: true },
    );
  }

  // The shop's greeting (the dashboard's "Виджет" page), as /status says; a new chat shows
  // it before the first message, as the server will store it with that message.
  let greeting = null;

  async function loadGreeting() {
    const data = await act.fetchStatus(); // null when offline: the built-in greeting
    if (data && typeof data.greeting === "string") {
      greeting = localizeServerText(locale, data.greeting);
    }
    showLocalGreeting();
  }

  function showLocalGreeting() {
    if (els.log.querySelector("[data-local]") || S.ticketId) return;
    const text = greeting ?? t("greeting");
    if (!text) return;
    const row = buildRow({ role: "agent", senderType: "bot", senderName: "", text, date: new Date() });
    row.dataset.local = "greeting";
    els.log.prepend(row);
  }

  function removeLocalGreeting() {
    els.log.querySelector("[data-local]")?.remove();
  }

  // "Pinned" = the customer is looking at the newest message. While pinned, any change of
  // layout (new rows, banners, the keyboard, a growing textarea) keeps the view at the
  // bottom; once they scroll up to read, we leave the view alone and offer the pill instead.
  let pinned = true;

  function nearBottom() {
    const s = els.scroller;
    return s.scrollHeight - s.scrollTop - s.clientHeight < 80;
  }

  function scrollToBottom() {
    els.scroller.scrollTop = els.scroller.scrollHeight;
    pinned = true;
    els.pill.hidden = true;
  }

  els.scroller.addEventListener(
    "scroll",
    () => {
      pinned = nearBottom();
      if (pinned) els.pill.hidden = true;
    },
    { passive: true },
  );
  els.pill.addEventListener("click", () => {
    els.scroller.scrollTo({ top: els.scroller.scrollHeight, behavior: "smooth" });
    els.pill.hidden = true;
  });
  if (typeof ResizeObserver === "function") {
    const keepPinned = new ResizeObserver(() => {
      if (pinned) els.scroller.scrollTop = els.scroller.scrollHeight;
    });
    keepPinned.observe(els.scroller);
    keepPinned.observe(els.log);
  }
  document.addEventListener("visibilitychange", () => {
    if (app.isVisible() && !els.pill.hidden && nearBottom()) els.pill.hidden = true;
  });

  // Run a DOM change, then keep the view at the bottom if it was there (or if forced).
  function withScroll(change, { force = false, quiet = false } = {}) {
    const stick = force || pinned || !app.isVisible();
    change();
    if (stick) scrollToBottom();
    else if (!quiet) els.pill.hidden = false;
  }

  let toastTimer = 0;

  function showToast(text) {
    els.toastText.textContent = text;
    els.toast.hidden = false;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(hideToast, 7000);
  }

  function hideToast() {
    clearTimeout(toastTimer);
    els.toast.hidden = true;
  }

  els.toastX.addEventListener("click", hideToast);

  Object.assign(act, {
    buildRow,
    setReceipt,
    refreshReceipts,
    refreshGrouping,
    placeStored,
    appendPending,
    summary,
    loadGreeting,
    showLocalGreeting,
    removeLocalGreeting,
    scrollToBottom,
    withScroll,
    showToast,
    loadFiles,
    escapeLightbox: () => Boolean(lightbox?.hide()),
    escapeToast() {
      if (els.toast.hidden) return false;
      hideToast();
      return true;
    },
  });
}
