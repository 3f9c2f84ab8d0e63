// Long polling, when a WebSocket cannot be had: GET /api/support/messages/{id}?after=N&wait=25
// (N: the highest stored id, so nothing is missed or shown twice), sends by POST (outbox.js).
// Back to reconnecting the socket when the server stops answering HTTP too.

import { LIMITS } from "./core.js";

/** The long poll's URL for a ticket after the highest stored id. */
export function pollUrl(ticketId, lastId, waitS = LIMITS.LONG_POLL_WAIT_S) {
  return `/api/support/messages/${encodeURIComponent(ticketId)}?after=${lastId}&wait=${waitS}`;
}

// conn: connection.js's state (polling, pollAbort, pollWake, wsFailures); hooks: its
// setMode, setOperators, scheduleConnect, backoff.
export function createPoller(app, conn, { setMode, setOperators, scheduleConnect, backoff }) {
  const { S, act } = app;

  function pollPause(ms) {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      conn.pollWake = done;
    });
  }

  async function pollLoop() {
    let failures = 0;
    let statusCheckedAt = 0;
    while (conn.polling) {
      if (navigator.onLine === false) {
        conn.polling = false;
        setMode("offline");
        return;
      }
      try {
        if (S.mode !== "polling") setMode("polling");
        if (Date.now() - statusCheckedAt > 30000) {
          statusCheckedAt = Date.now();
          const data = await app.extras.refreshStatus();
          if (data) setOperators(data.operators_online);
        }
        await act.flushHttp();
        if (!S.ticketId) {
          await pollPause(LIMITS.LONG_POLL_WAIT_S * 1000);
          continue;
        }
        conn.pollAbort = new AbortController();
        const tid = S.ticketId;
        const res = await act.api(pollUrl(tid, S.lastId), { signal: conn.pollAbort.signal });
        if (res.status === 404) {
          if (tid === S.ticketId) act.forgetTicket();
          continue;
        }
        if (res.status === 401) {
          act.dropToken();
          await act.ensureSession();
          continue;
        }
        if (res.status === 429) {
          await pollPause(act.retryAfter(res));
          continue;
        }
        if (!res.ok) throw new Error(`poll ${res.status}`);
        const data = await res.json();
        if (tid !== S.ticketId) continue;
        act.setStatus(data.status);
        for (const m of data.messages || []) act.handleMessage(m);
        failures = 0;
      } catch (err) {
        if (!conn.polling) return;
        if (err?.name === "AbortError") continue;
        failures += 1;
        if (err instanceof TypeError && typeof WebSocket === "function") {
          // The server is not answering HTTP either: it is down, not WebSocket being
          // blocked. Go back to reconnecting the socket (with backoff).
          conn.polling = false;
          conn.wsFailures = 0;
          setMode("waiting");
          scheduleConnect(backoff());
          return;
        }
        setMode("waiting");
        await pollPause(Math.min(10000, 1000 * 2 ** Math.min(failures, 4)));
      }
    }
  }

  return { loop: pollLoop };
}
