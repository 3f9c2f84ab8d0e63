// The connection: WebSocket first (hello with `since` = the highest stored id we have, so
// the server replays only what we miss), long polling (GET .../messages/{id}?after=N) when
// a WebSocket cannot be had (polling.js, loaded then), heartbeat, reconnect with backoff. Server frames go to the
// features through the dispatch table (app.frames). The header status and the banner are
// drawn from the connection mode and the operators online.

import { LIMITS } from "./core.js";

/** Reconnect delay: 0.5 s doubling up to 8 s, with jitter (60..100 %). */
export function backoffMs(attempts, random = Math.random) {
  const base = Math.min(8000, 500 * 2 ** Math.min(attempts, 4));
  return Math.round(base * (0.6 + random() * 0.4));
}

/** The hello frame: replay after `since` (an override, once, else the highest stored id). */
export function helloFrame({ token, ticketId, lastId, sinceOverride, pageUrl }) {
  const hello = { type: "hello", token, ticketId, since: sinceOverride ?? lastId };
  if (pageUrl) hello.page_url = pageUrl;
  return hello;
}

/** What the header says: connecting until we know, then operators online or not. */
export function headerState(mode, operatorsOnline) {
  const connected = mode === "online" || mode === "polling";
  if (!connected && operatorsOnline === null) return "connecting";
  return operatorsOnline > 0 ? "online" : "offline";
}

export function install(app) {
  const { S, els, act, frames, store, t } = app;
  const conn = {
    ws: null,
    started: false,
    attempts: 0,
    wsFailures: 0,
    retryTimer: 0,
    pingTimer: 0,
    pongTimer: 0,
    polling: false,
    pollAbort: null,
    pollWake: null,
    disconnectedAt: 0,
    sinceOverride: null, // replay from here on the next hello (a ticket adopted by an upload)
  };

  // --- header status and banner, from state -------------------------------------------

  let bannerTimer = 0;
  let statusTimer = 0;

  function renderStatus() {
    const state = headerState(S.mode, S.operatorsOnline);
    els.status.dataset.state = state;
    els.statusText.textContent = t(state);
    clearTimeout(bannerTimer);
    if (S.mode === "offline") {
      showBanner(t("offlineBanner"), "offline");
    } else if ((S.mode === "waiting" || S.mode === "connecting") && conn.disconnectedAt) {
      // Short blips do not deserve a banner.
      const wait = 2500 - (Date.now() - conn.disconnectedAt);
      if (wait <= 0 && S.lastId) showBanner(t("reconnecting"), "reconnecting");
      else if (S.lastId) bannerTimer = setTimeout(renderStatus, wait);
    } else {
      els.banner.hidden = true;
    }
    els.app.dataset.conn = S.mode;
  }

  function showBanner(text, kind) {
    els.banner.textContent = text;
    els.banner.dataset.kind = kind;
    els.banner.hidden = false;
  }

  store.subscribe(["mode", "operatorsOnline"], renderStatus);

  function setOperators(n) {
    const before = S.operatorsOnline;
    if (Number.isInteger(n)) store.set({ operatorsOnline: n });
    if (before !== null && before !== S.operatorsOnline) {
      // Someone came or went: the away message (and business hours) come from /status.
      clearTimeout(statusTimer);
      statusTimer = setTimeout(() => app.extras?.refreshStatus(), 300);
    }
  }

  function setMode(mode) {
    if (mode !== "online" && mode !== "polling" && !conn.disconnectedAt) {
      conn.disconnectedAt = Date.now();
    }
    if (mode === "online" || mode === "polling") conn.disconnectedAt = 0;
    if (store.set({ mode }).length === 0) renderStatus(); // the banner's clock moved
  }

  // --- WebSocket ----------------------------------------------------------------------

  function start() {
    if (conn.started) return;
    conn.started = true;
    connect();
  }

  // Say hello again at once (another ticket, or a new one): drop the socket without waiting.
  function reconnectNow() {
    act.hideTyping();
    const ws = conn.ws;
    if (ws) {
      conn.ws = null;
      ws.onmessage = null;
      ws.onclose = null;
      stopPing();
      try {
        ws.close();
      } catch {
        /* closing anyway */
      }
      conn.attempts = 0;
      setMode("connecting");
      scheduleConnect(0);
    } else if (conn.polling) {
      conn.pollAbort?.abort();
      wakePoller();
    }
  }

  function scheduleConnect(delay) {
    clearTimeout(conn.retryTimer);
    conn.retryTimer = setTimeout(connect, delay);
  }

  function backoff() {
    const ms = backoffMs(conn.attempts);
    conn.attempts += 1;
    return ms;
  }

  async function connect() {
    clearTimeout(conn.retryTimer);
    if (conn.ws) return;
    if (navigator.onLine === false) {
      setMode("offline");
      return;
    }
    if (S.mode !== "polling") setMode("connecting");
    try {
      await act.ensureSession();
    } catch {
      if (S.mode !== "polling") setMode("waiting");
      scheduleConnect(backoff());
      return;
    }
    await act.identify();
    if (conn.ws) return; // connected meanwhile
    if (typeof WebSocket !== "function" || conn.wsFailures >= LIMITS.WS_FAILURES_BEFORE_POLLING) {
      startPolling();
      if (typeof WebSocket === "function") {
        // Keep trying WebSocket now and then; polling stops once it works.
        clearTimeout(conn.retryTimer);
        conn.retryTimer = setTimeout(() => openSocket(), LIMITS.WS_RETRY_WHILE_POLLING_MS);
      }
      return;
    }
    openSocket();
  }

  function openSocket() {
    if (conn.ws || !S.token) return;
    let ws;
    try {
      ws = new WebSocket(`${location.protocol === "https:" ? "wss:" : "ws:"}//${location.host}/ws/visitor`);
    } catch {
      conn.wsFailures += 1;
      scheduleReconnect();
      return;
    }
    conn.ws = ws;
    let ready = false;
    let authFailed = false;
    const helloTimer = setTimeout(() => ws.close(), 12000);

    ws.onopen = () => {
      const hello = helloFrame({ ...S, sinceOverride: conn.sinceOverride });
      conn.sinceOverride = null;
      ws.send(JSON.stringify(hello));
    };
    ws.onmessage = (ev) => {
      let frame;
      try {
        frame = JSON.parse(ev.data);
      } catch {
        return;
      }
      if (!frame || typeof frame !== "object") return;
      clearTimeout(conn.pongTimer);
      if (frame.type === "ready") {
        ready = true;
        clearTimeout(helloTimer);
        onReady(frame);
        return;
      }
      if (frame.type === "error" && !ready) {
        authFailed = true;
        const code = String(frame.code || "");
        if (code.includes("ticket") || code === "not_found") act.forgetTicket();
        else act.dropToken();
        return;
      }
      frames.dispatch(String(frame.type), frame); // pong and future types: no handler
    };
    ws.onclose = async (ev) => {
      clearTimeout(helloTimer);
      if (conn.ws !== ws) return;
      conn.ws = null;
      stopPing();
      act.hideTyping();
      if (S.mode === "online") setMode("waiting");
      if (ready) {
        conn.wsFailures = 0;
      } else if (authFailed) {
        // handled by the error frame (new session, or forget the ticket)
      } else if (ev.code === 4401) {
        act.dropToken();
      } else if (await httpReachable()) {
        // The server answers HTTP but the socket never opened: something blocks WebSocket.
        conn.wsFailures += 1;
      }
      if (conn.ws) return; // reconnected meanwhile
      scheduleReconnect();
    };
    ws.onerror = () => {
      /* onclose follows */
    };
  }

  async function httpReachable() {
    try {
      const res = await fetch("/api/support/status", { cache: "no-store", credentials: "omit" });
      return res.ok;
    } catch {
      return false;
    }
  }

  function scheduleReconnect() {
    if (navigator.onLine === false) {
      stopPolling();
      setMode("offline");
      return;
    }
    if (conn.wsFailures >= LIMITS.WS_FAILURES_BEFORE_POLLING) {
      connect(); // goes to polling and schedules a later WebSocket retry
      return;
    }
    if (S.mode !== "polling") setMode("waiting");
    scheduleConnect(backoff());
  }

  function wsSend(frame) {
    const ws = conn.ws;
    if (!ws || ws.readyState !== WebSocket.OPEN || S.mode !== "online") return false;
    try {
      ws.send(JSON.stringify(frame));
      return true;
    } catch {
      return false;
    }
  }

  function startPing() {
    stopPing();
    conn.pingTimer = setInterval(() => {
      if (!wsSend({ type: "ping" })) return;
      clearTimeout(conn.pongTimer);
      conn.pongTimer = setTimeout(() => conn.ws?.close(), LIMITS.PONG_TIMEOUT_MS);
    }, LIMITS.PING_EVERY_MS);
  }

  function stopPing() {
    clearInterval(conn.pingTimer);
    clearTimeout(conn.pongTimer);
  }

  function onReady(frame) {
    conn.attempts = 0;
    conn.wsFailures = 0;
    act.resetSentRead();
    stopPolling();
    if (frame.ticketId) act.setTicket(frame.ticketId);
    else if (S.ticketId) act.forgetTicket(); // the server no longer knows that ticket for us
    act.setStatus(frame.status);
    if (Number.isInteger(frame.admin_last_read_id)) {
      store.set({ adminReadId: Math.max(S.adminReadId, frame.admin_last_read_id) });
    }
    setOperators(frame.operators_online);
    setMode("online");
    startPing();
    act.refreshReceipts();
    act.flushWs();
    act.markSeen();
    app.extras?.refreshStatus({ maxAge: 2000 }); // the boot's answer (greeting) if that recent
    app.extras?.syncRating();
  }

  frames.on("read", (f) => {
    if (f.reader === "admin" && Number.isInteger(f.last_read_id)) {
      store.set({ adminReadId: Math.max(S.adminReadId, f.last_read_id) });
    }
  });
  frames.on("presence", (f) => setOperators(f.operators_online));

  // --- long polling (polling.js): started, stopped, woken from here --------------------

  // polling.js, loaded the first time a WebSocket cannot be had.
  let poller = null;

  function startPolling() {
    if (conn.polling) return;
    conn.polling = true;
    setMode("polling");
    poller ||= import("./polling.js").then((m) =>
      m.createPoller(app, conn, { setMode, setOperators, scheduleConnect, backoff }),
    );
    poller.then((p) => p.loop());
  }

  function stopPolling() {
    conn.polling = false;
    conn.pollAbort?.abort();
    conn.pollAbort = null;
    wakePoller();
  }

  function wakePoller() {
    const wake = conn.pollWake;
    conn.pollWake = null;
    wake?.();
  }

  window.addEventListener("online", () => {
    conn.attempts = 0;
    conn.wsFailures = 0;
    if (!conn.started) return;
    if (conn.polling) return;
    connect();
  });

  window.addEventListener("offline", () => {
    // Do not wait for the socket to notice: treat the link as gone now, queue what is typed.
    stopPolling();
    const ws = conn.ws;
    conn.ws = null;
    stopPing();
    ws?.close();
    if (conn.started) setMode("offline");
  });

  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible" && conn.started && S.mode === "waiting") {
      conn.attempts = 0; // back on the tab (phones freeze background tabs): retry now
      scheduleConnect(0);
    }
  });

  Object.assign(act, {
    start,
    reconnectNow,
    wsSend,
    wakePoller,
    renderStatus,
    setOperators,
    started: () => conn.started,
    hasSocket: () => Boolean(conn.ws),
    closeSocket: () => conn.ws?.close(),
    replayFromStart: () => {
      conn.sinceOverride = 0;
    },
  });
}
