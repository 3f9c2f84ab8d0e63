// Browser push: register /admin/sw.js, subscribe with the server's VAPID key and
// hand the subscription to the server, which pushes when a customer writes.

import { api } from "./api.js";

export function pushSupported() {
  return "serviceWorker" in navigator && "PushManager" in window && "Notification" in window;
}

export function pushPermission() {
  return "Notification" in window ? Notification.permission : "unsupported";
}

function urlBase64ToUint8Array(base64) {
  const padding = "=".repeat((4 - (base64.length % 4)) % 4);
  const raw = atob((base64 + padding).replace(/-/g, "+").replace(/_/g, "/"));
  const out = new Uint8Array(raw.length);
  for (let i = 0; i < raw.length; i += 1) out[i] = raw.charCodeAt(i);
  return out;
}

export async function registerWorker() {
  if (!("serviceWorker" in navigator)) return null;
  try {
    return await navigator.serviceWorker.register("/admin/sw.js", { scope: "/admin/" });
  } catch {
    return null;
  }
}

function waitActive(reg) {
  if (reg.active) return Promise.resolve(reg.active);
  const worker = reg.installing || reg.waiting;
  if (!worker) return Promise.reject(new Error("no service worker"));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("service worker did not activate")), 15_000);
    worker.addEventListener("statechange", () => {
      if (worker.state === "activated") {
        clearTimeout(timer);
        resolve(worker);
      } else if (worker.state === "redundant") {
        clearTimeout(timer);
        reject(new Error("service worker failed to install"));
      }
    });
  });
}

/** Ask permission (must run from a click), subscribe, post to the server. */
export async function enablePush() {
  if (!pushSupported()) return { ok: false, reason: "unsupported" };
  const permission = await Notification.requestPermission();
  if (permission !== "granted") return { ok: false, reason: "denied" };
  const reg = await registerWorker();
  if (!reg) return { ok: false, reason: "failed" };
  // Not `navigator.serviceWorker.ready`: the page (/admin) is outside the worker's scope
  // (/admin/), so `ready` would never resolve; wait for this registration instead.
  await waitActive(reg);
  const { public_key: key } = await api.pushKey();
  let sub = await reg.pushManager.getSubscription();
  if (!sub) {
    sub = await reg.pushManager.subscribe({
      userVisibleOnly: true,
      applicationServerKey: urlBase64ToUint8Array(key),
    });
  }
  const json = sub.toJSON();
  await api.pushSubscribe({ endpoint: json.endpoint, keys: json.keys });
  return { ok: true };
}

/** Already subscribed in this browser (permission granted and a subscription exists)? */
export async function pushActive() {
  if (!pushSupported() || Notification.permission !== "granted") return false;
  try {
    const reg = await navigator.serviceWorker.getRegistration("/admin/");
    return Boolean(reg && (await reg.pushManager.getSubscription()));
  } catch {
    return false;
  }
}
