// Talking to the loader on the shop's page (postMessage, origin checked both ways): it
// says when the panel opens or closes, on which page, and who the customer is; we tell it
// (app.postParent) that we are ready, about new messages, the unread count, and "close".

import { KEYS } from "./core.js";

/** A message from the loader we act on, or null (wrong source, origin or shape). */
export function loaderMessage(ev, { embedded, parentOrigin, parent }) {
  if (!embedded || ev.source !== parent || ev.origin !== parentOrigin) return null;
  const d = ev.data;
  if (!d || typeof d !== "object" || d.source !== "trustdesk-loader") return null;
  return d;
}

export function install(app) {
  const { S, els, act } = app;
  const where = { embedded: app.EMBEDDED, parentOrigin: app.PARENT_ORIGIN, parent: window.parent };

  // A known customer (identity.js) is loaded when the shop names one; install() replaces
  // these two entry points with the real ones.
  let identity = null;
  const loadIdentity = () => (identity ||= import("./identity.js").then((m) => m.install(app)));
  act.setIdentity = (user) => {
    const signedOut = user === null && !app.storage.get(KEYS.identity); // nobody to forget
    if (signedOut || (user !== null && typeof user !== "object")) return;
    loadIdentity().then(() => act.setIdentity(user));
  };
  act.identify = () => (identity ? identity.then(() => act.identify()) : Promise.resolve());

  window.addEventListener("message", (ev) => {
    const d = loaderMessage(ev, where);
    if (!d) return;
    if (d.type === "identify") {
      act.setIdentity(d.user);
      return;
    }
    if (d.type === "state") {
      if (typeof d.pageUrl === "string" && /^https?:\/\//.test(d.pageUrl)) {
        S.pageUrl = d.pageUrl.slice(0, 2000);
      }
      const wasOpen = S.open;
      S.open = Boolean(d.open);
      if (S.open) {
        act.start();
        if (!wasOpen) act.scrollToBottom();
        act.markSeen();
        if (d.focus) els.input.focus({ preventScroll: true });
      } else {
        act.toggleEmoji(false);
      }
    }
  });

  els.close.addEventListener("click", () => app.postParent({ type: "close" }));
}
