// Known customers: the shop's signed identity (data-user-* or TrustDesk.setUser), sent only
// once a session exists, i.e. after the customer opened the chat. Wrong or expired: the
// visitor stays anonymous, with a warning in the console.

import { KEYS } from "./core.js";

/** The identity to send from what the shop gave, or null when it is not usable. */
export function parseIdentity(user) {
  if (!user || typeof user !== "object") return null;
  const id = String(user.id ?? user.user_id ?? "").slice(0, 128);
  const expires = Number(user.expires);
  const hash = String(user.hash || "");
  if (!id || !Number.isFinite(expires) || !/^[0-9a-f]{64}$/i.test(hash)) return null;
  const identity = { user_id: id, expires: Math.floor(expires), hash };
  if (typeof user.name === "string" && user.name.trim()) identity.name = user.name.trim().slice(0, 100);
  if (typeof user.email === "string" && user.email.trim()) {
    identity.email = user.email.trim().slice(0, 254);
  }
  return identity;
}

export function install(app) {
  const { S, act, storage } = app;
  let identifying = null;

  function setIdentity(user) {
    if (user === null) {
      // The shop signed the customer out: forget this browser's session, start anonymous.
      const was = storage.get(KEYS.identity);
      S.identity = null;
      S.identityEmail = "";
      if (was) {
        storage.del(KEYS.identity);
        storage.del(KEYS.ticket);
        storage.del("trustdesk.contact");
        act.dropToken();
        act.reconnectNow();
      }
      return;
    }
    if (!user || typeof user !== "object") return;
    const identity = parseIdentity(user);
    if (!identity) {
      console.warn("TrustDesk: setUser needs {id, expires, hash}; staying anonymous.");
      return;
    }
    S.identity = identity;
    if (S.token && act.started()) identify();
  }

  async function identify() {
    if (identifying) return identifying;
    const tokenBefore = S.token;
    const run = async () => {
      for (let attempt = 0; attempt < 2 && S.identity; attempt++) {
        const who = S.identity;
        if (storage.get(KEYS.identity) === `${who.user_id}|${S.token}`) {
          S.identity = null;
          S.identityEmail = who.email || "";
          return;
        }
        let res;
        try {
          await act.ensureSession();
          res = await act.api("/api/support/identify", { method: "POST", body: who });
        } catch {
          return; // offline: tried again on the next connect
        }
        if (res.ok) {
          storage.set(KEYS.identity, `${who.user_id}|${S.token}`);
          if (S.identity === who) S.identity = null;
          S.identityEmail = who.email || "";
          app.extras?.renderAway();
          await followOpenTicket();
          return;
        }
        let code = "";
        try {
          code = String((await res.json())?.error?.code || "");
        } catch {
          /* no body */
        }
        if (res.status === 409 && attempt === 0) {
          // This browser's session belongs to another customer (a shared computer): start
          // a new session for this one.
          storage.del(KEYS.identity);
          storage.del(KEYS.ticket);
          act.dropToken();
          continue;
        }
        if (S.identity === who) S.identity = null;
        console.warn(
          `TrustDesk: the customer's identity was not accepted (${code || res.status}); the chat stays anonymous.`,
        );
        return;
      }
    };
    identifying = run().finally(() => {
      identifying = null;
      // A new session was needed while the socket was up: say hello again with it.
      if (act.hasSocket() && S.token !== tokenBefore) act.reconnectNow();
    });
    return identifying;
  }

  // A signed-in customer on a new device: show their open conversation, if any.
  async function followOpenTicket() {
    if (S.ticketId || S.wantNew) return;
    try {
      const res = await act.api("/api/support/tickets");
      if (!res.ok) return;
      const open = ((await res.json()).tickets || []).find((x) => x.status === "open");
      if (open && !S.ticketId && !S.wantNew) {
        if (act.hasSocket()) act.switchTicket(open.ticketId);
        else {
          S.ticketId = open.ticketId;
          storage.set(KEYS.ticket, open.ticketId);
          act.removeLocalGreeting();
          app.extras?.renderTranscriptButton();
        }
      }
    } catch {
      /* stays on the greeting */
    }
  }

  Object.assign(act, { setIdentity, identify });
}
