// "My conversations": the customer's tickets, newest first, to switch between them or
// start a new one. Loaded with the first click on its button.

import { h as el, svgIcon } from "../shared/dom.js";

const PLUS = "M12 4a1 1 0 0 1 1 1v6h6a1 1 0 1 1 0 2h-6v6a1 1 0 1 1-2 0v-6H5a1 1 0 1 1 0-2h6V5a1 1 0 0 1 1-1Z";
const CHEVRON = "M9.3 5.3a1 1 0 0 1 1.4 0l6 6a1 1 0 0 1 0 1.4l-6 6a1 1 0 1 1-1.4-1.4L14.58 12 9.3 6.7a1 1 0 0 1 0-1.4Z";


// ctx: as away.js's; returns {openTickets(), closeTickets(), loadTickets()}.
export function createHistory(ctx) {
  const { t } = ctx;
  const $ = (id) => document.getElementById(id);

  const app = $("app");
  const view = $("tickets-view");
  const list = $("tickets-list");
  const listState = $("tickets-state");
  const ticketsBtn = $("tickets-btn");
  let returnFocus = null;

  function timeLabel(iso) {
    const d = new Date(iso);
    if (Number.isNaN(d.getTime())) return "";
    const now = new Date();
    const sameDay = d.toDateString() === now.toDateString();
    const loc = ctx.locale === "en" ? "en-GB" : "ru-RU";
    if (sameDay) return d.toLocaleTimeString(loc, { hour: "2-digit", minute: "2-digit" });
    return d.toLocaleDateString(loc, { day: "numeric", month: "short" });
  }

  function renderTickets(tickets) {
    list.replaceChildren();
    const current = ctx.current().ticketId;
    listState.hidden = tickets.length > 0;
    if (!tickets.length) listState.textContent = t("noTickets");
    for (const tk of tickets) {
      const li = el("li");
      const b = el("button", `tk tk--${tk.status === "open" ? "open" : "closed"}`);
      b.type = "button";
      b.dataset.ticket = tk.ticketId;
      if (tk.ticketId === current) {
        b.setAttribute("aria-current", "true");
        b.classList.add("is-current");
      }
      const top = el("span", "tk__top");
      const chip = el("span", "tk__status", t(tk.status === "open" ? "statusOpen" : "statusClosed"));
      top.append(chip);
      if (tk.ticketId === current) top.append(el("span", "tk__current", t("currentTicket")));
      if (tk.rating) {
        const r = el("span", "tk__rating", `★ ${tk.rating}`);
        r.setAttribute("aria-label", t("rateN", { n: tk.rating }));
        top.append(r);
      }
      top.append(el("span", "tk__time", timeLabel(tk.last_message?.created_at || tk.updated_at)));
      const last = tk.last_message;
      let text = t("noMessages");
      let who = "";
      if (last) {
        text = ctx.summary(last);
        if (last.sender_type === "customer") who = `${t("you")}: `;
        else if (last.sender_type === "admin" && last.sender_name) who = `${last.sender_name}: `;
      }
      const line = el("span", "tk__last");
      if (who) line.append(el("span", "tk__who", who));
      line.append(document.createTextNode(text));
      const num = el("span", "tk__num", tk.ticketId);
      const body = el("span", "tk__body");
      body.append(top, line, num);
      const chev = svgIcon(CHEVRON, 18, "tk__chev");
      b.append(body, chev);
      b.addEventListener("click", () => {
        closeTickets();
        if (tk.ticketId !== ctx.current().ticketId) ctx.switchTicket(tk.ticketId);
      });
      li.append(b);
      list.append(li);
    }
  }

  async function loadTickets() {
    listState.hidden = false;
    listState.textContent = t("loading");
    try {
      await ctx.ensureSession();
      const res = await ctx.api("/api/support/tickets");
      if (!res.ok) throw new Error(`tickets ${res.status}`);
      const data = await res.json();
      if (!view.hidden) renderTickets(Array.isArray(data.tickets) ? data.tickets : []);
      return data.tickets || [];
    } catch {
      listState.textContent = t("ticketsError");
      listState.hidden = false;
      return [];
    }
  }

  function openTickets() {
    returnFocus = document.activeElement;
    view.hidden = false;
    app.classList.add("show-tickets");
    ticketsBtn.setAttribute("aria-expanded", "true");
    ticketsBtn.classList.add("is-active");
    $("new-ticket").focus();
    loadTickets();
  }

  function closeTickets() {
    if (view.hidden) return false;
    view.hidden = true;
    app.classList.remove("show-tickets");
    ticketsBtn.setAttribute("aria-expanded", "false");
    ticketsBtn.classList.remove("is-active");
    if (returnFocus && document.contains(returnFocus)) returnFocus.focus({ preventScroll: true });
    return true;
  }

  $("tickets-back").addEventListener("click", () => {
    closeTickets();
    document.getElementById("input")?.focus();
  });
  const newBtn = $("new-ticket");
  newBtn.prepend(svgIcon(PLUS, 18));
  newBtn.addEventListener("click", () => {
    closeTickets();
    ctx.newConversation();
  });

  return { openTickets, closeTickets, loadTickets };
}
