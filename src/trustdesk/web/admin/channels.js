// Channels (docs/channels.md): where a ticket's customer writes from. The widget's tickets
// ("web") carry no mark; email and Telegram tickets get a chip on their list row.

import { h } from "./dom.js";
import { t } from "./i18n.js";

export const MARKED = ["email", "telegram"];

/** The chip's text key for a channel, or null for the widget or an unknown channel (pure). */
export function channelKey(channel) {
  return MARKED.includes(channel) ? `channel.${channel}` : null;
}

/** The list row's chip for a ticket summary (null for a widget ticket). */
export function channelChip(summary) {
  const key = channelKey(summary && summary.channel);
  if (!key) return null;
  const name = t(key);
  return h(
    "span",
    { class: `pill channel channel-${summary.channel}`, title: t("channel.title", { name }) },
    name,
  );
}
