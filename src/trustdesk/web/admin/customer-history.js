// The side panel's "Клиент": every conversation of this customer, whatever the channel
// (GET /api/admin/support/ticket/{id}/related: the same browser or signed-in user, and
// the same email address given in the widget and writing by email). Each row shows the
// channel's icon, the date and the last message, and opens the ticket in one click.

import { h, shortWhen } from "./dom.js";
import { addStrings, t } from "./i18n.js";

addStrings({
  ru: {
    "hist.title": "Все обращения клиента",
    "hist.ch.web": "Виджет на сайте",
    "hist.ch.email": "Почта",
    "hist.ch.telegram": "Telegram",
    "hist.byEmail": "по email",
    "hist.byEmailTitle": "Тот же адрес почты, что у этого покупателя",
    "hist.empty": "Без сообщений",
    "hist.file": "📎 Файл",
    "hist.open": "Открыть {n}",
  },
  en: {
    "hist.title": "All of the customer's conversations",
    "hist.ch.web": "Website widget",
    "hist.ch.email": "Email",
    "hist.ch.telegram": "Telegram",
    "hist.byEmail": "by email",
    "hist.byEmailTitle": "The same email address as this customer's",
    "hist.empty": "No messages",
    "hist.file": "📎 File",
    "hist.open": "Open {n}",
  },
});

const ICONS = { web: "🌐", email: "✉", telegram: "✈" };

/** The channel's icon and name (an unknown channel: a neutral dot and its code) (pure). */
export function channelIcon(channel) {
  const known = Object.hasOwn(ICONS, channel);
  return { icon: known ? ICONS[channel] : "•", name: known ? t(`hist.ch.${channel}`) : String(channel || "") };
}

/** A row's one-line preview of the last message (pure). */
export function preview(last) {
  if (!last) return t("hist.empty");
  if ((last.kind === "file" || last.kind === "voice") && !last.message) return t("hist.file");
  return String(last.message || "").replace(/\s+/g, " ").trim() || t("hist.empty");
}

/** The card (null when the customer has no other conversation). */
export function customerHistoryCard(related, lang) {
  if (!related || !related.length) return null;
  return h(
    "section",
    { class: "info-card customer-history", id: "customer-history" },
    h("h3", null, t("hist.title"), " ", h("span", { class: "hist-count" }, `(${related.length})`)),
    h(
      "ul",
      { class: "hist-list" },
      related.map((r) => {
        const ch = channelIcon(r.channel);
        const when = (r.last_message && r.last_message.created_at) || r.updated_at;
        return h(
          "li",
          { dataset: { ticket: r.ticketId, channel: r.channel || "web" } },
          h(
            "a",
            { class: "hist-row", href: `#/tickets/${encodeURIComponent(r.ticketId)}`, "aria-label": t("hist.open", { n: r.ticketId }) },
            h("span", { class: `hist-icon hist-${r.channel || "web"}`, title: ch.name, "aria-label": ch.name, role: "img" }, ch.icon),
            h(
              "span",
              { class: "hist-main" },
              h(
                "span",
                { class: "hist-head" },
                h("strong", null, r.ticketId),
                h("span", { class: `pill status-${r.status}` }, t(`status.${r.status}`)),
                r.match === "email" ? h("span", { class: "pill hist-match", title: t("hist.byEmailTitle") }, t("hist.byEmail")) : null,
                h("span", { class: "muted hist-when" }, shortWhen(when, lang)),
              ),
              h("span", { class: "hist-last" }, preview(r.last_message)),
            ),
          ),
        );
      }),
    ),
  );
}
