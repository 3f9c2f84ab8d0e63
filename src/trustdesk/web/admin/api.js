// HTTP client for /api/admin/*: JSON in and out, session cookie, CSRF header on writes.

export class ApiError extends Error {
  constructor(status, code, message, retryAfter) {
    super(message || code || `HTTP ${status}`);
    this.status = status;
    this.code = code;
    this.retryAfter = retryAfter;
  }
}

let csrfToken = null;
let onUnauthorized = () => {};

export function setCsrf(token) {
  csrfToken = token;
}

export function getCsrf() {
  return csrfToken;
}

export function setUnauthorizedHandler(fn) {
  onUnauthorized = fn;
}

export async function request(method, path, body, opts = {}) {
  try {
    return await rawRequest(method, path, body, opts);
  } catch (e) {
    // A stale CSRF token (another tab logged in again): fetch the current one, retry once.
    if (e.status === 403 && e.code === "csrf_failed" && !opts.retried) {
      const me = await rawRequest("GET", "/api/admin/me", undefined, { quiet401: true });
      if (me.csrf_token) csrfToken = me.csrf_token;
      return rawRequest(method, path, body, { ...opts, retried: true });
    }
    throw e;
  }
}

async function rawRequest(method, path, body, { quiet401 = false } = {}) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (method !== "GET" && csrfToken) headers["X-CSRF-Token"] = csrfToken;
  let res;
  try {
    res = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "same-origin",
      cache: "no-store",
    });
  } catch (e) {
    throw new ApiError(0, "network", e.message);
  }
  let data = null;
  const text = await res.text();
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  if (!res.ok) {
    const err = (data && data.error) || {};
    const detail = data && typeof data.detail === "string" ? data.detail : null;
    const retry = Number(res.headers.get("Retry-After"));
    const e = new ApiError(
      res.status,
      err.code || null,
      err.message || detail || res.statusText,
      Number.isFinite(retry) && retry > 0 ? retry : null,
    );
    e.field = err.field || null; // the input at fault (a 422 names it)
    if (res.status === 401 && !quiet401) onUnauthorized(e);
    throw e;
  }
  return data || {};
}

const enc = encodeURIComponent;

export const api = {
  me: () => request("GET", "/api/admin/me", undefined, { quiet401: true }),
  login: (email, password) =>
    request("POST", "/api/admin/login", { email, password }, { quiet401: true }),
  logout: () => request("POST", "/api/admin/logout", {}, { quiet401: true }),
  tickets: ({ status, filter, q, label, team }) => {
    const p = new URLSearchParams();
    p.set("status", status || "open");
    if (filter) p.set("filter", filter);
    if (q) p.set("q", q);
    if (label) p.set("label", label); // labels.js
    if (team) p.set("team", team); // routing.js
    return request("GET", `/api/admin/support/tickets?${p}`);
  },
  ticket: (id) => request("GET", `/api/admin/support/ticket/${enc(id)}`),
  reply: (ticketId, message, clientMsgId) =>
    request("POST", "/api/admin/support/reply", {
      ticketId,
      message,
      client_msg_id: clientMsgId,
    }),
  note: (ticketId, message, clientMsgId) =>
    request("POST", "/api/admin/support/note", {
      ticketId,
      message,
      client_msg_id: clientMsgId,
    }),
  system: (ticketId, message, clientMsgId) =>
    request("POST", "/api/admin/support/system-message", { ticketId, message, client_msg_id: clientMsgId }),
  related: (id) => request("GET", `/api/admin/support/ticket/${enc(id)}/related`),
  close: (id) => request("POST", `/api/admin/support/close/${enc(id)}`, {}),
  reopen: (id) => request("POST", `/api/admin/support/open/${enc(id)}`, {}),
  assign: (ticketId, operatorId) =>
    request("POST", "/api/admin/support/assign", { ticketId, operator_id: operatorId }),
  read: (ticketId, lastReadId) =>
    request("POST", "/api/admin/support/read", { ticketId, last_read_id: lastReadId }),
  operators: () => request("GET", "/api/admin/operators"),
  addOperator: (o) => request("POST", "/api/admin/operators", o),
  deactivate: (id) => request("POST", `/api/admin/operators/${enc(id)}/deactivate`, {}),
  activate: (id) => request("POST", `/api/admin/operators/${enc(id)}/activate`, {}),
  setPassword: (id, password) =>
    request("POST", `/api/admin/operators/${enc(id)}/password`, { password }),
  canned: () => request("GET", "/api/admin/canned"),
  addCanned: (name, text) => request("POST", "/api/admin/canned", { name, text }),
  deleteCanned: (id) => request("DELETE", `/api/admin/canned/${enc(id)}`),
  pushKey: () => request("GET", "/api/admin/push/key"),
  pushSubscribe: (sub) => request("POST", "/api/admin/push/subscribe", sub),
  report: (days) => request("GET", `/api/admin/report?days=${enc(days)}`),
  exportCustomer: (ticketId) =>
    request("GET", `/api/admin/visitors/by-ticket/${enc(ticketId)}/export`),
  deleteCustomer: (ticketId) => request("DELETE", `/api/admin/visitors/by-ticket/${enc(ticketId)}`),
  webhooks: () => request("GET", "/api/admin/webhooks"),
  addWebhook: (hook) => request("POST", "/api/admin/webhooks", hook),
  deleteWebhook: (id) => request("DELETE", `/api/admin/webhooks/${enc(id)}`),
  deliveries: (id) => request("GET", `/api/admin/webhooks/${enc(id)}/deliveries?limit=50`),
  retryDelivery: (hookId, id) =>
    request("POST", `/api/admin/webhooks/${enc(hookId)}/deliveries/${enc(id)}/retry`, {}),
  tokens: () => request("GET", "/api/admin/tokens"),
  addToken: (token) => request("POST", "/api/admin/tokens", token),
  revokeToken: (id) => request("DELETE", `/api/admin/tokens/${enc(id)}`),
};

/** The URL an operator's browser loads a stored file from (the session cookie suffices). */
export function fileUrl(id) {
  return `/api/admin/files/${enc(id)}`;
}

/**
 * Upload a file as a message: the raw bytes are the body (XMLHttpRequest, for progress).
 * Returns {promise, abort}; the promise resolves to {message} or rejects with an ApiError.
 */
export function upload({ ticketId, name, clientMsgId, caption, voice }, blob, onProgress) {
  // The name and caption are customer text: headers, never the URL (access logs keep URLs).
  const p = new URLSearchParams();
  p.set("ticketId", ticketId);
  if (clientMsgId) p.set("client_msg_id", clientMsgId);
  if (voice) p.set("voice", "true");
  let xhr = null;
  let aborted = false;
  const once = (retried) =>
    new Promise((resolve, reject) => {
      xhr = new XMLHttpRequest();
      xhr.open("POST", `/api/admin/support/upload?${p}`);
      xhr.setRequestHeader("Accept", "application/json");
      xhr.setRequestHeader("Content-Type", blob.type || "application/octet-stream");
      if (csrfToken) xhr.setRequestHeader("X-CSRF-Token", csrfToken);
      if (name) xhr.setRequestHeader("X-TrustDesk-Name", encodeURIComponent(name));
      if (caption) xhr.setRequestHeader("X-TrustDesk-Caption", encodeURIComponent(caption));
      xhr.upload.addEventListener("progress", (ev) => {
        if (ev.lengthComputable && onProgress) onProgress(ev.loaded / ev.total);
      });
      xhr.addEventListener("load", async () => {
        let data = null;
        try {
          data = xhr.responseText ? JSON.parse(xhr.responseText) : null;
        } catch {
          data = null;
        }
        if (xhr.status >= 200 && xhr.status < 300) {
          if (onProgress) onProgress(1);
          resolve(data || {});
          return;
        }
        const err = (data && data.error) || {};
        const retry = Number(xhr.getResponseHeader("Retry-After"));
        const e = new ApiError(
          xhr.status,
          err.code || null,
          err.message || xhr.statusText,
          Number.isFinite(retry) && retry > 0 ? retry : null,
        );
        if (xhr.status === 403 && e.code === "csrf_failed" && !retried) {
          try {
            const me = await rawRequest("GET", "/api/admin/me", undefined, { quiet401: true });
            if (me.csrf_token) csrfToken = me.csrf_token;
            resolve(await once(true));
          } catch (again) {
            reject(again);
          }
          return;
        }
        if (xhr.status === 401) onUnauthorized(e);
        reject(e);
      });
      xhr.addEventListener("error", () => reject(new ApiError(0, "network", "network error")));
      xhr.addEventListener("abort", () => reject(new ApiError(0, "aborted", "aborted")));
      if (aborted) reject(new ApiError(0, "aborted", "aborted"));
      else xhr.send(blob);
    });
  return {
    promise: once(false),
    abort: () => {
      aborted = true;
      if (xhr) xhr.abort();
    },
  };
}
