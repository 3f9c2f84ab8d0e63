// Settings → "Installation check" (admins): the server's own checks (GET /api/admin/selftest)
// and one only the browser can make: does a WebSocket pass through the very address this
// page was opened at? A proxy that forwards plain HTTP but drops the Upgrade headers is the
// classic "real time works locally, not behind my proxy"; this row says so and how to fix it.

import { request } from "./api.js";
import { getLang, t } from "./i18n.js";
import { h, replaceChildren } from "./dom.js";

const WS_TIMEOUT_MS = 5000;
const NGINX_LINES = [
  "location /ws/ {",
  "    proxy_pass http://trustdesk;",
  "    proxy_http_version 1.1;",
  "    proxy_set_header Upgrade $http_upgrade;",
  '    proxy_set_header Connection "upgrade";',
  "    proxy_set_header Host $host;",
  "}",
].join("\n");

let ctx = { errorText: (e) => String(e.message || e), toast: () => {} };

/** The dashboard's own socket URL (as live.js builds it), for this page's address. */
export function socketUrl() {
  const proto = location.protocol === "https:" ? "wss:" : "ws:";
  return `${proto}//${location.host}/ws/operator`;
}

/**
 * Open /ws/operator as the dashboard does (the session cookie goes with the handshake),
 * say hello and wait for "ready". Resolves {ok, url, ms, code, reason}; never rejects.
 */
export function probeSocket(timeoutMs = WS_TIMEOUT_MS) {
  const url = socketUrl();
  const started = performance.now();
  return new Promise((resolve) => {
    let ws = null;
    let done = false;
    const finish = (ok, extra) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      if (ws && ws.readyState <= WebSocket.OPEN) {
        try {
          ws.close(1000);
        } catch {
          /* already closing */
        }
      }
      resolve({ ok, url, ms: Math.round(performance.now() - started), code: null, reason: "", ...extra });
    };
    const timer = setTimeout(() => finish(false, { timeout: true }), timeoutMs);
    try {
      ws = new WebSocket(url);
    } catch (e) {
      finish(false, { reason: String(e.message || e) });
      return;
    }
    // No replay wanted: `since` past any message id there is.
    ws.addEventListener("open", () => ws.send(JSON.stringify({ type: "hello", since: Number.MAX_SAFE_INTEGER })));
    ws.addEventListener("message", (ev) => {
      let frame = null;
      try {
        frame = JSON.parse(ev.data);
      } catch {
        return;
      }
      if (frame && frame.type === "ready") finish(true, {});
    });
    ws.addEventListener("close", (ev) => finish(false, { code: ev.code, reason: ev.reason || "" }));
  });
}

/** The websocket row, in words: what happened and, when it failed, what to change. */
function socketRow(res, httpWorks) {
  const name = "websocket";
  if (res.ok) return { name, ok: true, detail: t("selftest.wsOk", { url: res.url, ms: res.ms }) };
  const params = { url: res.url, ms: res.ms, code: res.code ?? "—", s: WS_TIMEOUT_MS / 1000 };
  if (res.code === 4401) return { name, ok: false, detail: t("selftest.wsLogin", params) };
  if (res.code === 4429) return { name, ok: false, detail: t("selftest.wsTooMany", params) };
  const key = res.timeout ? "selftest.wsTimeout" : "selftest.wsFailed";
  if (!httpWorks) return { name, ok: false, detail: t(key, params) };
  return { name, ok: false, detail: `${t(key, params)} ${t("selftest.wsProxy")}`, proxyHint: true };
}

function label(name) {
  const key = `selftest.name.${name}`;
  const text = t(key);
  return text === key ? name : text;
}

function rowEl(check) {
  const detail = h("p", { class: "selftest-detail" }, check.detail);
  const extra = check.proxyHint
    ? [
        h("pre", { class: "selftest-snippet" }, h("code", null, NGINX_LINES)),
        h("p", { class: "selftest-detail muted" }, t("selftest.caddy")),
        h("p", { class: "selftest-detail muted" }, t("selftest.docs")),
      ]
    : [];
  return h(
    "li",
    { class: `selftest-row ${check.ok ? "ok" : "fail"}`, dataset: { check: check.name } },
    h(
      "span",
      { class: "selftest-icon", "aria-label": check.ok ? t("selftest.okLabel") : t("selftest.failLabel") },
      check.ok ? "✓" : "✗",
    ),
    h("div", { class: "selftest-body" }, h("strong", { class: "selftest-name" }, label(check.name)), detail, extra),
  );
}

function mailRow(mailBtn) {
  return h(
    "li",
    { class: "selftest-row action" },
    h("span", { class: "selftest-icon", "aria-hidden": "true" }, "✉"),
    h("div", { class: "selftest-body" }, h("p", { class: "selftest-detail muted" }, t("selftest.mailHelp")), mailBtn),
  );
}

async function emailEnabled() {
  try {
    const r = await fetch("/api/support/status", { credentials: "same-origin", cache: "no-store" });
    return r.ok && Boolean((await r.json()).email_enabled);
  } catch {
    return false;
  }
}

/** The settings card. options: {errorText, toast} */
export function buildSelftestCard(options) {
  ctx = { ...ctx, ...options };
  const list = h("ul", { class: "selftest-list", "aria-live": "polite" });
  const summary = h("p", { class: "selftest-summary", role: "status", hidden: true });
  const runBtn = h("button", { type: "button", class: "btn primary", id: "selftest-run" }, t("selftest.run"));
  const mailStatus = h("p", { class: "selftest-detail", role: "status", hidden: true });
  const mailBtn = h("button", { type: "button", class: "btn soft small", id: "selftest-mail" }, t("selftest.sendMail"));

  mailBtn.addEventListener("click", async () => {
    mailBtn.disabled = true;
    mailStatus.hidden = true;
    try {
      const r = await request("POST", `/api/admin/selftest/mail?lang=${getLang()}`, {});
      mailStatus.textContent = t("selftest.mailSent", { to: r.to });
      mailStatus.className = "selftest-detail ok-text";
    } catch (e) {
      mailStatus.textContent = t("selftest.mailFailed", { msg: ctx.errorText(e) });
      mailStatus.className = "selftest-detail fail-text";
    } finally {
      mailStatus.hidden = false;
      mailBtn.disabled = false;
    }
  });

  async function run() {
    runBtn.disabled = true;
    runBtn.textContent = t("selftest.running");
    summary.hidden = true;
    replaceChildren(list, h("li", { class: "muted empty-row" }, t("selftest.running")));
    const params = new URLSearchParams({
      client_time: String(Date.now()),
      page_origin: location.origin,
      lang: getLang(),
    });
    const [server, socket, mail] = await Promise.all([
      request("GET", `/api/admin/selftest?${params}`).then(
        (r) => ({ checks: r.checks || [] }),
        (e) => ({ error: e }),
      ),
      probeSocket(),
      emailEnabled(),
    ]);
    const rows = [socketRow(socket, !server.error)];
    if (server.error) rows.push({ name: "server", ok: false, detail: t("selftest.failed", { msg: ctx.errorText(server.error) }) });
    else rows.push(...server.checks);
    const items = rows.map(rowEl);
    if (mail) items.push(mailRow(h("div", null, mailBtn, mailStatus)));
    replaceChildren(list, items);
    const bad = rows.filter((r) => !r.ok).length;
    summary.textContent = bad ? t("selftest.summaryBad", { bad, n: rows.length }) : t("selftest.summaryOk", { n: rows.length });
    summary.className = `selftest-summary ${bad ? "fail" : "ok"}`;
    summary.hidden = false;
    runBtn.disabled = false;
    runBtn.textContent = t("selftest.again");
  }

  runBtn.addEventListener("click", () => run().catch((e) => ctx.toast(ctx.errorText(e), "warn")));
  const card = h(
    "section",
    { class: "settings-card wide selftest", id: "selftest", "aria-labelledby": "selftest-heading" },
    h("h2", { id: "selftest-heading" }, "🩺 ", t("selftest.title")),
    h("p", { class: "muted" }, t("selftest.help")),
    h("div", { class: "selftest-actions" }, runBtn, summary),
    list,
  );
  // "#/settings/selftest" (a link from the docs or a support reply) lands on the card.
  if (/\/selftest$/.test(location.hash)) queueMicrotask(() => card.scrollIntoView({ block: "start" }));
  return card;
}
