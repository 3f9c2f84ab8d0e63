// Live frames from /ws/operator: one handler per frame type (the dispatch table), typing, presence.

import { signOut } from "./app.js";
import { dropSocketSends, outboxAcked, outboxServerBack, renderComposerState, settleSocketSend } from "./composer.js";
import {
  addMessage,
  maybeMarkRead,
  refreshCurrent,
  renderConvHeader,
  renderMessages,
  renderTyping,
} from "./conversation.js";
import { renderAssign, renderInfo } from "./customer-panel.js";
import { errorText, isViewing, toast, ts } from "./helpers.js";
import { t } from "./i18n.js";
import {
  fetchList,
  fetchOpenForBadges,
  loadOperators,
  noteMax,
  renderList,
  renderListTyping,
  scheduleRefetch,
  upsertTicket,
} from "./inbox.js";
import { renderOperatorsTable } from "./settings-page.js";
import { renderBadges, renderTeam } from "./shell.js";
import { chime } from "./sound.js";
import { conn, state, TYPING_TTL_MS, ui } from "./state.js";
import { onSettingsChanged, renderSiteNotices } from "./widget-settings.js";

// ---------------------------------------------------------------- live frames

let bannerTimer = null;
export function onLiveState(connected, first) {
  state.connected = connected;
  document.documentElement.dataset.live = connected ? "on" : "off";
  clearTimeout(bannerTimer);
  if (connected) {
    if (ui.connBanner) ui.connBanner.hidden = true;
    if (document.visibilityState !== "visible") sendVisibility();
    if (!first) resync();
    outboxServerBack();
  } else {
    dropSocketSends();
    bannerTimer = setTimeout(() => {
      if (!state.connected && ui.connBanner) ui.connBanner.hidden = false;
    }, 1500);
    // Customer typing cannot be trusted while we hear nothing.
    state.typing.clear();
    renderTyping();
  }
}

/** Hidden dashboards still get browser push; the server needs to know which we are. */
export function sendVisibility() {
  if (conn.live) conn.live.send({ type: "visibility", visible: document.visibilityState === "visible" });
}

function resync() {
  fetchList();
  if (state.filter !== "open") fetchOpenForBadges();
  refreshCurrent();
  loadOperators();
}

// The dispatch table: frame type -> its handler (Zulip's server_events_dispatch). A feature
// module adds its own frame types with `onFrameType` instead of editing a switch here.
const HANDLERS = new Map([
  ["ready", (f) => onReady(f)],
  ["message", (f) => f.message && onMessage(f.message)],
  ["ticket", (f) => onTicket(f.ticket)],
  ["typing", (f) => onTyping(f)],
  ["read", (f) => onRead(f)],
  ["presence", (f) => onPresence(f)],
  ["resync", () => resync()],
  ["settings_changed", (f) => {
    onSettingsChanged(f.settings);
    renderAdminNotices();
  }],
  ["origin_blocked", () => renderAdminNotices()],
  ["ack", (f) => settleSocketSend(f)],
  ["error", (f) => {
    if (settleSocketSend(f)) return;
    if (f.code === "unauthorized") signOut(t("login.expired"));
  }],
]);

export function onFrameType(type, handler) {
  HANDLERS.set(type, handler);
}

export function onFrame(f) {
  const handler = HANDLERS.get(f.type);
  if (handler) handler(f);
}

function onReady(f) {
  if (state.announcedUpTo === Infinity) state.announcedUpTo = state.maxId;
  for (const o of f.operators || []) {
    const prev = state.operators.get(o.id) || {};
    state.operators.set(o.id, { ...prev, ...o });
  }
  renderTeam();
  renderAssign();
}

function renderAdminNotices() {
  if (state.me.role === "admin") renderSiteNotices(ui.siteNotices, { errorText, toast });
}

export function onMessage(m) {
  noteMax(m.id);
  if (m.client_msg_id) outboxAcked(m.client_msg_id);
  const s = state.tickets.get(m.ticket_id);
  if (!s) {
    scheduleRefetch();
  } else if (isPublic(m) && (!s.last_message || m.id > s.last_message.id)) {
    // Only a customer / operator / bot message (not a notice, not a note) is the preview
    // and moves the ticket up, as the server's updated_at and last_public_message_id.
    s.last_message = m;
    if (ts(m.created_at) >= ts(s.updated_at)) s.updated_at = m.created_at;
    if (m.sender_type === "customer" && m.kind !== "note") {
      if (!isViewing(m.ticket_id)) s.unread = (s.unread || 0) + 1;
      // A customer message on a closed ticket reopens it (the ticket frame confirms).
      if (s.status === "closed") s.status = "open";
    }
  }
  if (m.sender_type === "customer") clearTyping(m.ticket_id, "customer");
  if (m.sender_type === "admin" && m.operator_id) clearTyping(m.ticket_id, `op${m.operator_id}`);
  announce(m);
  const cur = state.current;
  if (cur && cur.id === m.ticket_id && cur.loaded) {
    addMessage(cur, m);
    renderMessages();
    maybeMarkRead();
  }
  if (state.searchIds && s) scheduleRefetch();
  renderList();
  renderBadges();
}

function isPublic(m) {
  return m.sender_type !== "system" && m.kind !== "note";
}

/** A new customer message rings once (the ticket frame may come before the message). */
function announce(m) {
  if (!m || m.sender_type !== "customer" || m.kind === "note") return;
  if (m.id <= state.announcedUpTo) return;
  state.announcedUpTo = m.id;
  const focused = isViewing(m.ticket_id) && document.hasFocus();
  if (!focused) chime();
}

export function onTicket(ticket) {
  if (!ticket) return;
  announce(ticket.last_message);
  const s = upsertTicket(ticket);
  if (state.searchIds) scheduleRefetch();
  renderList();
  renderBadges();
  if (state.currentId === ticket.ticketId) {
    renderConvHeader();
    renderInfo();
    renderMessages();
    renderComposerState();
    maybeMarkRead();
  }
  return s;
}

function typingKey(f) {
  return f.sender_type === "customer" ? "customer" : `op${f.operator_id ?? f.name}`;
}

function onTyping(f) {
  if (!f.ticketId) return;
  if (f.sender_type === "admin" && f.operator_id === state.me.id) return; // my own echo
  const key = typingKey(f);
  let m = state.typing.get(f.ticketId);
  if (f.active) {
    if (!m) state.typing.set(f.ticketId, (m = new Map()));
    const ttl = typeof f.ttl === "number" && f.ttl > 0 ? f.ttl * 1000 : TYPING_TTL_MS;
    m.set(key, { name: f.name, sender_type: f.sender_type, until: Date.now() + ttl });
  } else if (m) {
    m.delete(key);
    if (!m.size) state.typing.delete(f.ticketId);
  }
  renderTyping();
  renderListTyping();
}

function clearTyping(ticketId, key) {
  const m = state.typing.get(ticketId);
  if (m && m.delete(key)) {
    if (!m.size) state.typing.delete(ticketId);
    renderTyping();
    renderListTyping();
  }
}

export function sweepTyping() {
  const now = Date.now();
  let changed = false;
  for (const [id, m] of state.typing) {
    for (const [k, v] of m) {
      if (v.until <= now) {
        m.delete(k);
        changed = true;
      }
    }
    if (!m.size) state.typing.delete(id);
  }
  if (changed) {
    renderTyping();
    renderListTyping();
  }
}

function onRead(f) {
  const s = state.tickets.get(f.ticketId);
  if (!s) return;
  if (f.reader === "customer") {
    if (f.last_read_id > (s.customer_last_read_id || 0)) {
      s.customer_last_read_id = f.last_read_id;
      if (state.currentId === f.ticketId) renderMessages();
    }
  } else if (f.reader === "admin" && f.operator_id === state.me.id && s.unread) {
    // I read it in another tab.
    if (!s.last_message || f.last_read_id >= s.last_message.id) {
      s.unread = 0;
      renderList();
      renderBadges();
    }
  }
}

function onPresence(f) {
  if (f.kind === "operator" && f.operator) {
    const prev = state.operators.get(f.operator.id) || { active: true };
    state.operators.set(f.operator.id, { ...prev, ...f.operator, online: Boolean(f.online) });
    renderTeam();
    renderAssign();
    if (ui.opsList) renderOperatorsTable();
  } else if (f.kind === "visitor" && f.ticketId) {
    const s = state.tickets.get(f.ticketId);
    if (!s) return;
    s.visitor = {
      ...(s.visitor || {}),
      online: Boolean(f.online),
      page_url: f.page_url ?? s.visitor?.page_url ?? null,
      user_agent: f.user_agent ?? s.visitor?.user_agent ?? null,
    };
    if (!f.online) clearTyping(f.ticketId, "customer");
    renderList();
    if (state.currentId === f.ticketId) {
      renderConvHeader();
      renderInfo();
    }
  }
}
