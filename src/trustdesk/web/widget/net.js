// HTTP to the support API: the visitor's Bearer token, one session at a time, Retry-After.

import { KEYS } from "./core.js";

/** Milliseconds to wait after a 429: Retry-After (at most a minute), else 2 s. */
export function retryAfterMs(header) {
  const s = Number(header);
  return (Number.isFinite(s) && s > 0 ? Math.min(s, 60) : 2) * 1000;
}

export function install(app) {
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

  Object.assign(act, {
    api,
    ensureSession,
    dropToken,
    retryAfter: (res) => retryAfterMs(res.headers.get("Retry-After")),
    sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
  });
}
