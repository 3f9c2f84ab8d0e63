// The widget's shared state and plumbing (HTTP with the visitor's token included), built
// once at boot (chat.js) and handed to every feature's install(app). Features do not reach
// into each other (they import at most each other's pure functions): they read `app.S`,
// change what is drawn with `app.store.set()` (subscribers redraw), call each other's entry
// points on `app.act`, and receive server frames through the dispatch table `app.frames`.

import { createDispatch, createStore } from "../shared/store.js";
import { readJson } from "../shared/format.js";
import { detectLocale, makeT } from "./i18n.js";

export const KEYS = {
  token: "trustdesk.token",
  ticket: "trustdesk.ticketId",
  seen: "trustdesk.seen",
  notified: "trustdesk.notified",
  outbox: "trustdesk.outbox",
  muted: "trustdesk.muted",
  identity: "trustdesk.identity",
};

export const LIMITS = {
  TYPING_TTL_MS: 6000,
  PING_EVERY_MS: 20000,
  PONG_TIMEOUT_MS: 10000,
  ACK_TIMEOUT_MS: 10000,
  LONG_POLL_WAIT_S: 25,
  WS_FAILURES_BEFORE_POLLING: 2,
  WS_RETRY_WHILE_POLLING_MS: 30000,
  MAX_CHARS: 4000,
};

function resolveParentOrigin(params, embedded) {
  if (!embedded) return null;
  let origin;
  try {
    origin = new URL(params.get("origin") || "").origin;
  } catch {
    return null;
  }
  if (!origin || origin === "null") return null;
  // Where the browser tells us who embeds us, the claim in the hash must match it.
  const ancestors = location.ancestorOrigins;
  if (ancestors && ancestors.length > 0 && ancestors[0] !== origin) return null;
  return origin;
}

// localStorage of the TrustDesk origin; falls back to memory when blocked.
function createStorage() {
  const memory = new Map();
  let ls = null;
  try {
    ls = window.localStorage;
    ls.setItem("trustdesk.probe", "1");
    ls.removeItem("trustdesk.probe");
  } catch {
    ls = null;
  }
  return {
    get(key) {
      try {
        return ls ? ls.getItem(key) : (memory.get(key) ?? null);
      } catch {
        return memory.get(key) ?? null;
      }
    },
    set(key, value) {
      memory.set(key, value);
      try {
        ls?.setItem(key, value);
      } catch {
        /* quota or blocked: memory only */
      }
    },
    del(key) {
      memory.delete(key);
      try {
        ls?.removeItem(key);
      } catch {
        /* ignore */
      }
    },
  };
}

const ELEMENTS = {
  app: "app",
  status: "status",
  statusText: "status-text",
  banner: "banner",
  scroller: "scroller",
  log: "log",
  typing: "typing",
  typingText: "typing-text",
  pill: "pill",
  closedNote: "closed-note",
  form: "composer",
  input: "input",
  send: "send",
  emojiBtn: "emoji-btn",
  emojiPanel: "emoji-panel",
  mute: "mute",
  close: "close",
  attach: "attach-btn",
  fileInput: "file-input",
  mic: "mic-btn",
  recorder: "recorder",
  drop: "drop",
  toast: "toast",
  toastText: "toast-text",
  toastX: "toast-x",
};

/** Milliseconds to wait after a 429: Retry-After (at most a minute), else 2 s. */
export function retryAfterMs(header) {
  const s = Number(header);
  return (Number.isFinite(s) && s > 0 ? Math.min(s, 60) : 2) * 1000;
}

// HTTP to the support API: the visitor's Bearer token, one session at a time.
function installHttp(app) {
  const { S, act, storage } = app;

  async function api(path, { method = "GET", body, signal } = {}) {
    const headers = {};
    if (S.token) headers.Authorization = `Bearer ${S.token}`;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    return fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal,
      credentials: "omit",
      cache: "no-store",
    });
  }

  let sessionCreating = null;

  // One session at a time, however many callers (connect, uploads, forms) ask at once.
  async function ensureSession() {
    if (S.token) return true;
    if (!sessionCreating) {
      sessionCreating = (async () => {
        const res = await api("/api/support/session", { method: "POST", body: {} });
        if (!res.ok) throw new Error(`session ${res.status}`);
        const data = await res.json();
        if (typeof data.token !== "string") throw new Error("session: no token");
        S.token = data.token;
        storage.set(KEYS.token, S.token);
        return true;
      })().finally(() => {
        sessionCreating = null;
      });
    }
    return sessionCreating;
  }

  function dropToken() {
    S.token = null;
    storage.del(KEYS.token);
    act.forgetTicket();
  }

  // GET /api/support/status (operators online, greeting, away message). `maxAge`: an answer
  // this recent (or still on its way) will do, so the first open asks once, not twice (the
  // greeting at boot, the away card when the socket is ready).
  let status = { at: 0, answer: null };
  function fetchStatus({ maxAge = 0 } = {}) {
    if (status.answer && Date.now() - status.at < maxAge) return status.answer;
    const answer = fetch("/api/support/status", { cache: "no-store", credentials: "omit" })
      .then((res) => (res.ok ? res.json() : null))
      .catch(() => null);
    status = { at: Date.now(), answer };
    return answer;
  }

  Object.assign(act, {
    fetchStatus,
    api,
    ensureSession,
    dropToken,
    retryAfter: (res) => retryAfterMs(res.headers.get("Retry-After")),
    sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
  });
}

export function createApp() {
  const params = new URLSearchParams(location.hash.slice(1));
  const EMBEDDED = window.parent !== window;
  const PARENT_ORIGIN = resolveParentOrigin(params, EMBEDDED);
  const locale = detectLocale(params.get("locale"), navigator.language);
  const storage = createStorage();
  // What something renders lives in the store and changes through store.set() (status,
  // unread, adminReadId, operatorsOnline, muted, mode); the rest is bookkeeping.
  const store = createStore({
    token: storage.get(KEYS.token),
    ticketId: storage.get(KEYS.ticket),
    status: null, // "open" | "closed" | null
    lastId: 0, // highest stored message id we have rendered
    seenId: 0, // highest id the customer has seen with the panel open
    notifiedId: 0, // highest operator message we have chimed for
    adminReadId: 0, // operators have read up to here (read receipts)
    operatorsOnline: null,
    mode: "idle", // the connection: idle | connecting | online | polling | offline | waiting
    open: !EMBEDDED || params.get("open") === "1",
    pageUrl: null,
    muted: storage.get(KEYS.muted) === "1",
    rendered: new Map(), // message id -> row element
    pending: new Map(), // client_msg_id -> row element
    outbox: [], // [{client_msg_id, message, created_at, sentAt, new_ticket}]
    unread: 0,
    seenAtLoad: 0,
    uploads: new Map(), // client_msg_id -> {row, file, voice, seconds, abort, ...}
    wantNew: false, // "New conversation": the next message starts a new ticket
    identity: null, // {user_id, expires, hash, name?, email?} from the shop, not yet verified
    identityEmail: "",
  });
  const S = store.state;
  const seen = readJson(storage, KEYS.seen, null);
  if (seen && seen.ticketId === S.ticketId && Number.isInteger(seen.id)) S.seenId = seen.id;
  S.seenAtLoad = S.seenId;
  const notified = readJson(storage, KEYS.notified, null);
  if (notified && notified.ticketId === S.ticketId && Number.isInteger(notified.id)) {
    S.notifiedId = notified.id;
  }
  const els = {};
  for (const [key, id] of Object.entries(ELEMENTS)) els[key] = document.getElementById(id);

  const app = {
    params,
    EMBEDDED,
    PARENT_ORIGIN,
    locale,
    t: makeT(locale),
    TEAM: (params.get("team") || "").trim().slice(0, 64),
    storage,
    store,
    S,
    els,
    act: {}, // the features' entry points, filled by their install()
    frames: createDispatch(), // server frame type -> handlers
    extras: null, // away / rating / tickets / transcript (extras.js)
    kb: null, // a promise of kb.js, loaded on demand
    isVisible: () => S.open && document.visibilityState === "visible",
    postParent(msg) {
      if (!EMBEDDED || !PARENT_ORIGIN) return;
      window.parent.postMessage({ source: "trustdesk-frame", ...msg }, PARENT_ORIGIN);
    },
  };
  installHttp(app);
  return app;
}
