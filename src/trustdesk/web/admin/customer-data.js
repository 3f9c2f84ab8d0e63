// A customer's data: export and deletion (privacy requests).

import { api } from "./api.js";
import { onReplyInput } from "./composer.js";
import { clear, h, replaceChildren, uuid } from "./dom.js";
import { errorText, toast } from "./helpers.js";
import { t } from "./i18n.js";
import { fetchList, renderList } from "./inbox.js";
import { renderBadges } from "./shell.js";
import { state, ui } from "./state.js";

// ---------------------------------------------------------------- a customer's data

/** A modal question; resolves true when confirmed. */
export function confirmDialog({ title, text, confirm, danger = false }) {
  return new Promise((resolve) => {
    const titleId = `dlg-${uuid()}`;
    let answer = false;
    const yes = h(
      "button",
      { type: "button", class: `btn ${danger ? "danger" : "primary"}`, onclick: () => ((answer = true), dlg.close()) },
      confirm,
    );
    const no = h("button", { type: "button", class: "btn ghost", onclick: () => dlg.close() }, t("settings.cancel"));
    const dlg = h(
      "dialog",
      { class: "confirm-dialog", "aria-labelledby": titleId },
      h("h2", { id: titleId }, title),
      h("p", null, text),
      h("div", { class: "dialog-actions" }, no, yes),
    );
    dlg.addEventListener("close", () => {
      dlg.remove();
      resolve(answer);
    });
    document.body.appendChild(dlg);
    dlg.showModal();
    no.focus();
  });
}

export async function exportCustomer(ticketId, btn) {
  btn.disabled = true;
  try {
    const data = await api.exportCustomer(ticketId);
    const blob = new Blob([JSON.stringify(data, null, 2)], { type: "application/json" });
    const url = URL.createObjectURL(blob);
    const day = new Date().toISOString().slice(0, 10);
    const a = h("a", { href: url, download: `trustdesk-customer-${ticketId}-${day}.json`, hidden: true });
    document.body.appendChild(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 60_000);
    toast(t("info.exported"), "ok");
  } catch (e) {
    toast(errorText(e), "warn");
  } finally {
    btn.disabled = false;
  }
}

export async function deleteCustomer(s) {
  const cur = state.current;
  const others = cur && cur.id === s.ticketId && cur.related ? cur.related.length : 0;
  const ok = await confirmDialog({
    title: t("info.deleteTitle"),
    text: t("info.deleteText", { n: others + 1 }),
    confirm: t("info.deleteYes"),
    danger: true,
  });
  if (!ok) return;
  try {
    const r = await api.deleteCustomer(s.ticketId);
    const gone = [s.ticketId, ...((cur && cur.id === s.ticketId && cur.related) || []).map((x) => x.ticketId)];
    for (const id of gone) {
      state.tickets.delete(id);
      state.drafts.delete(id);
      state.staged.delete(id);
    }
    const d = (r && r.deleted) || {};
    toast(t("info.deleted", { tickets: d.tickets ?? gone.length, messages: d.messages ?? 0 }), "ok");
    if (state.currentId === s.ticketId) location.hash = "#/tickets";
    renderList();
    renderBadges();
    fetchList();
  } catch (e) {
    toast(errorText(e), "warn");
  }
}

// canned responses in the reply box: "/" + name

function cannedQuery() {
  const el = ui.reply;
  const before = el.value.slice(0, el.selectionStart);
  const m = before.match(/(^|\s)\/([^\s/]*)$/);
  return m ? { query: m[2], start: before.length - m[2].length - 1 } : null;
}

export function updateCanned() {
  if (state.mode === "system") return hideCanned();
  const q = cannedQuery();
  if (!q) return hideCanned();
  const needle = q.query.toLowerCase();
  const items = state.canned
    .filter((c) => c.name.toLowerCase().includes(needle))
    .sort((a, b) => Number(b.name.toLowerCase().startsWith(needle)) - Number(a.name.toLowerCase().startsWith(needle)) || a.name.localeCompare(b.name))
    .slice(0, 8);
  if (!items.length) {
    const text = state.canned.length ? t("composer.cannedEmpty", { q: q.query }) : t("composer.cannedNone");
    replaceChildren(ui.canned, h("li", { class: "canned-empty" }, text));
  } else {
    replaceChildren(
      ui.canned,
      items.map((c, i) =>
        h(
          "li",
          {
            role: "option",
            class: "canned-item",
            id: `canned-${c.id}`,
            dataset: { cannedId: String(c.id) },
            "aria-selected": i === 0 ? "true" : "false",
            onmousedown: (ev) => {
              ev.preventDefault();
              chooseCanned(c.id);
            },
          },
          h("span", { class: "canned-name" }, `/${c.name}`),
          h("span", { class: "canned-text" }, c.text),
        ),
      ),
    );
  }
  ui.canned.hidden = false;
}

export function hideCanned() {
  if (ui.canned) {
    ui.canned.hidden = true;
    clear(ui.canned);
  }
}

export function moveCanned(delta) {
  const items = [...ui.canned.querySelectorAll(".canned-item")];
  if (!items.length) return;
  let i = items.findIndex((el) => el.getAttribute("aria-selected") === "true");
  i = (i + delta + items.length) % items.length;
  items.forEach((el, j) => el.setAttribute("aria-selected", j === i ? "true" : "false"));
  items[i].scrollIntoView({ block: "nearest" });
}

export function chooseCanned(id) {
  const c = state.canned.find((x) => x.id === id);
  const q = cannedQuery();
  if (!c || !q) return hideCanned();
  const el = ui.reply;
  const end = el.selectionStart;
  el.value = el.value.slice(0, q.start) + c.text + el.value.slice(end);
  const caret = q.start + c.text.length;
  el.setSelectionRange(caret, caret);
  hideCanned();
  el.focus();
  onReplyInput();
}
