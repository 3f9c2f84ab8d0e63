// TrustDesk dashboard service worker: shows web-push notifications for operators
// and focuses (or opens) the dashboard on the ticket when one is clicked.

self.addEventListener("install", () => self.skipWaiting());
self.addEventListener("activate", (event) => event.waitUntil(self.clients.claim()));

self.addEventListener("push", (event) => {
  let data = {};
  try {
    data = event.data ? event.data.json() : {};
  } catch {
    data = { body: event.data ? event.data.text() : "" };
  }
  if (data.test) {
    // "Проверить push" (alerts.js): tell the dashboard pages this push arrived.
    event.waitUntil(
      self.clients.matchAll({ type: "window", includeUncontrolled: true }).then((all) => {
        for (const client of all) client.postMessage({ type: "push-test", nonce: String(data.test) });
      }),
    );
  }
  const ticketId = data.ticketId || data.ticket_id || null;
  const title = data.title || "TrustDesk";
  const options = {
    body: data.body || data.message || "",
    tag: ticketId ? `ticket-${ticketId}` : "trustdesk",
    renotify: true,
    icon: "/admin/icon.svg",
    badge: "/admin/icon.svg",
    data: { url: data.url || (ticketId ? `/admin#/tickets/${encodeURIComponent(ticketId)}` : "/admin") },
  };
  event.waitUntil(self.registration.showNotification(title, options));
});

self.addEventListener("notificationclick", (event) => {
  event.notification.close();
  const target = new URL(event.notification.data?.url || "/admin", self.location.origin);
  event.waitUntil(
    (async () => {
      const all = await self.clients.matchAll({ type: "window", includeUncontrolled: true });
      for (const client of all) {
        const url = new URL(client.url);
        if (url.origin === target.origin && url.pathname.startsWith("/admin")) {
          // The page listens for this and opens the ticket without a reload.
          client.postMessage({ type: "open", url: target.href });
          await client.focus();
          return;
        }
      }
      await self.clients.openWindow(target.href);
    })(),
  );
});
