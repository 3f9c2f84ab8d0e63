// The dashboard's shared state: what it knows (state), the DOM it drew (ui), its connections (conn).

export const FILTERS = ["open", "mine", "unassigned", "snoozed", "closed"];
export const TYPING_TTL_MS = 6000;
export const TYPING_SEND_EVERY_MS = 2500;
export const TYPING_IDLE_MS = 4000;
export const MAX_LEN = 4000;

export const root = document.getElementById("app");

export const state = {
  me: null,
  view: null, // "tickets" | "report" | "settings" (null until the first route)
  filter: "open",
  q: "",
  tickets: new Map(), // ticketId -> TicketSummary (all we know of)
  searchIds: null, // Set of ids matching the current `q` (server-side search)
  listLoaded: false,
  listError: null,
  listSeq: 0,
  currentId: null,
  current: null, // {id, messages: Map, pending: Map, loaded, error, lastReadSent}
  typing: new Map(), // ticketId -> Map(key -> {name, sender_type, until})
  operators: new Map(), // id -> {id, name, email, role, active, online}
  canned: [],
  maxId: 0,
  announcedUpTo: Infinity, // customer messages above this id still ring (set once live)
  connected: true,
  mode: "reply", // composer mode: "reply" | "note" | "system"
  drafts: new Map(),
  staged: new Map(), // ticketId -> [{id, file, name, url}] files picked but not sent yet
  reportDays: 30,
  showInfo: false,
  push: "off", // "on" | "off" | "unsupported"
};

export const ui = {}; // live references into the current DOM
// The session's connections (set at sign-in, dropped at sign-out).
export const conn = { live: null, outbox: null, outboxRunner: null };
