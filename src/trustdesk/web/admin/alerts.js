// "Уведомления о пропущенных" (actions/escalation.py): the operator's opt-ins (sound and tab
// title at once, push after N minutes, email after 2N, Telegram after 3N), Telegram linking,
// the tab title that blinks while customers wait, and "push not working on this device"
// with its "Проверить push". API: /api/admin/account/alerts, .../alerts/telegram-link,
// /api/admin/account/push-test.

import { request } from "./api.js";
import { h, replaceChildren, safeHref } from "./dom.js";
import { has, t } from "./i18n.js";
import { enablePush, pushPermission, pushSupported } from "./push.js";

const TEST_TIMEOUT_MS = 15_000;
const LINK_POLL_MS = 3000;
const BLINK_MS = 1200;

let prefs = null; // GET /api/admin/account/alerts, once loaded
const listeners = new Map(); // element -> re-render on new opt-ins (dropped once detached)
const arrived = new Set(); // test-push nonces the service worker reported

export const alertsApi = {
  get: () => request("GET", "/api/admin/account/alerts"),
  save: (patch) => request("PUT", "/api/admin/account/alerts", patch),
  link: () => request("POST", "/api/admin/account/alerts/telegram-link", {}),
  unlink: () => request("DELETE", "/api/admin/account/alerts/telegram-link"),
  pushTest: (endpoint) => request("POST", "/api/admin/account/push-test", { endpoint }),
};

function changed(next) {
  prefs = next;
  for (const [el, fn] of [...listeners]) {
    if (el.isConnected) fn(prefs);
    else listeners.delete(el);
  }
}

/** Load the opt-ins (the dashboard does at sign-in); failures leave the defaults. */
export async function loadAlerts() {
  try {
    changed(await alertsApi.get());
  } catch {
    /* the defaults below apply */
  }
  return prefs;
}

/** Sound and the blinking tab title: on unless the operator turned them off. */
export function soundWanted() {
  return !prefs || prefs.sound !== false;
}

/** N, the escalation setting in minutes (0: off). */
export function escalateMinutes() {
  return (prefs && prefs.escalate_after_minutes) || 0;
}

// ---------------------------------------------------------------- the tab title

/**
 * How many customers wait for this operator: tickets assigned to them or to nobody.
 * `tickets`: summaries; `meId`: the operator's id.
 */
export function waitingForMe(tickets, meId) {
  let n = 0;
  for (const s of tickets) {
    if (s.status !== "open" || !s.waiting_since || s.snoozed_until) continue;
    if (!s.assignee || s.assignee.id === meId) n += 1;
  }
  return n;
}

/** The title shown in the blink's second phase ("🔴 Ждут ответа: 2"), or null. */
export function alertTitle(n) {
  return n > 0 ? `🔴 ${t("waiting.titleAlert", { n })}` : null;
}

let blink = null;

/**
 * While the tab is hidden and customers wait (and sound is on), the title alternates
 * between the page's own title (`base()`) and "🔴 Ждут ответа: N"; `count()` gives N.
 */
export function startTitleBlink(base, count) {
  if (blink) clearInterval(blink);
  let phase = false;
  blink = setInterval(() => {
    const alert = soundWanted() && document.hidden ? alertTitle(count()) : null;
    phase = alert ? !phase : false;
    const want = phase ? alert : base();
    if (document.title !== want) document.title = want;
  }, BLINK_MS);
}

// ---------------------------------------------------------------- push on this device

async function registration() {
  if (!("serviceWorker" in navigator)) return null;
  try {
    return (await navigator.serviceWorker.getRegistration("/admin/")) || null;
  } catch {
    return null;
  }
}

/**
 * This device's push state: "ok", "off" (never turned on), "unsupported", "denied"
 * (blocked in the browser), "no-worker" (permission given, service worker missing),
 * "no-subscription" (the worker is there, the subscription is not: it failed or expired).
 */
export async function pushHealth() {
  if (!pushSupported()) return "unsupported";
  const permission = pushPermission();
  if (permission === "denied") return "denied";
  if (permission !== "granted") return "off";
  const reg = await registration();
  if (!reg) return "no-worker";
  try {
    return (await reg.pushManager.getSubscription()) ? "ok" : "no-subscription";
  } catch {
    return "no-subscription";
  }
}

function listenForTests() {
  if (!("serviceWorker" in navigator) || listenForTests.done) return;
  listenForTests.done = true;
  navigator.serviceWorker.addEventListener("message", (ev) => {
    if (ev.data && ev.data.type === "push-test" && typeof ev.data.nonce === "string") {
      arrived.add(ev.data.nonce);
      for (const fn of [...waiters]) fn();
    }
  });
  navigator.serviceWorker.startMessages?.();
}
const waiters = new Set();

/** Send a test push to this device; resolves {ok, reason}: ok once the worker saw it. */
export async function testPush() {
  listenForTests();
  const reg = await registration();
  const sub = reg ? await reg.pushManager.getSubscription().catch(() => null) : null;
  if (!sub) return { ok: false, reason: reg ? "no-subscription" : "no-worker" };
  let r;
  try {
    r = await alertsApi.pushTest(sub.endpoint);
  } catch (e) {
    return { ok: false, reason: e.code || "failed" };
  }
  if (!r.sent) return { ok: false, reason: "not-sent" };
  return new Promise((resolve) => {
    const done = (ok) => {
      waiters.delete(check);
      clearTimeout(timer);
      resolve(ok ? { ok: true } : { ok: false, reason: "not-arrived" });
    };
    const check = () => arrived.has(r.nonce) && done(true);
    const timer = setTimeout(() => done(false), TEST_TIMEOUT_MS);
    waiters.add(check);
    check();
  });
}

function testButton(out) {
  const btn = h("button", { type: "button", class: "btn small push-test-btn" }, t("alerts.pushTest"));
  btn.addEventListener("click", async () => {
    btn.disabled = true;
    out.textContent = t("alerts.pushTesting");
    out.className = "form-msg";
    const r = await testPush();
    const problem = `alerts.pushFail.${r.reason}`;
    out.textContent = t(r.ok ? "alerts.pushArrived" : has(problem) ? problem : "alerts.pushNotArrived");
    out.className = `form-msg ${r.ok ? "ok" : "error"}`;
    btn.disabled = false;
  });
  return btn;
}

/**
 * A warning above the ticket list when push is on for this operator but does not work on
 * this device (blocked, worker missing, subscription failed). Re-checks on `refresh()`.
 */
export function pushWarning() {
  const text = h("span", { class: "push-warn-text" });
  const out = h("span", { class: "form-msg", role: "status" });
  const repair = h("button", { type: "button", class: "btn small push-repair-btn" }, t("alerts.pushRepair"));
  const test = testButton(out);
  const el = h("div", { class: "push-warn", role: "alert", hidden: true }, h("span", { "aria-hidden": "true" }, "⚠️ "), text, repair, test, out);
  const refresh = async () => {
    const health = await pushHealth();
    const wanted = !prefs || prefs.push !== false;
    const bad = ["denied", "no-worker", "no-subscription"].includes(health);
    el.hidden = !(wanted && bad);
    el.dataset.health = health;
    if (bad) text.textContent = t(`alerts.pushProblem.${health}`);
    // (blocked in the browser: only the browser's site settings can change that)
    repair.hidden = test.hidden = health === "denied";
  };
  repair.addEventListener("click", async () => {
    repair.disabled = true;
    try {
      const r = await enablePush();
      out.textContent = r.ok ? "" : t(`alerts.pushProblem.${r.reason === "denied" ? "denied" : "no-subscription"}`);
    } catch (e) {
      out.textContent = `${t("alerts.pushProblem.no-subscription")} (${e.message || e})`;
    }
    out.className = "form-msg error";
    repair.disabled = false;
    refresh();
  });
  listeners.set(el, refresh);
  refresh();
  el.refresh = refresh;
  return el;
}

// ---------------------------------------------------------------- Settings → Аккаунт

/** The card "Уведомления о пропущенных". ctx: {errorText, toast}. */
export function buildAlertsCard(ctx) {
  const body = h("div", { class: "alerts-body" }, h("p", { class: "muted" }, t("list.loading")));
  const card = h(
    "section",
    { class: "settings-card alerts-card", id: "alerts-card", "aria-labelledby": "alerts-heading" },
    h("h2", { id: "alerts-heading" }, "⏰ ", t("alerts.heading")),
    h("p", { class: "muted alerts-help" }),
    body,
  );
  const help = card.querySelector(".alerts-help");
  const render = (p) => {
    const n = p.escalate_after_minutes;
    help.textContent = n > 0 ? t("alerts.help", { n, n2: 2 * n, n3: 3 * n }) : t("alerts.helpOff");
    replaceChildren(body, optIns(ctx, p), telegramBlock(ctx, p), pushBlock());
  };
  listeners.set(card, render);
  loadAlerts().then((p) => {
    if (p) render(p);
    else replaceChildren(body, h("p", { class: "form-msg error" }, t("error.generic")));
  });
  return card;
}

function optIns(ctx, p) {
  const reasons = {
    email: p.available.email ? null : t("alerts.reason.email"),
    telegram: !p.available.telegram ? t("alerts.reason.telegram") : !p.telegram_linked ? t("alerts.reason.telegramLink") : null,
  };
  const row = (key, label, hint) => {
    const id = `alert-${key}`;
    const reason = reasons[key] || null;
    const box = h("input", { type: "checkbox", id, checked: Boolean(p[key]) && !reason, disabled: Boolean(reason) });
    box.addEventListener("change", async () => {
      box.disabled = true;
      try {
        changed(await alertsApi.save({ [key]: box.checked }));
        ctx.toast(t("alerts.saved"), "ok");
      } catch (e) {
        box.checked = !box.checked;
        box.disabled = false;
        ctx.toast(ctx.errorText(e), "warn");
      }
    });
    return h(
      "div",
      { class: "check-row alert-row", dataset: { alert: key } },
      box,
      h("label", { for: id }, label, hint ? h("span", { class: "muted alert-when" }, ` · ${hint}`) : null),
      reason ? h("span", { class: "alert-reason muted" }, reason) : null,
    );
  };
  const n = p.escalate_after_minutes;
  const after = (k) => (n > 0 ? t("alerts.after", { n: k * n }) : null);
  return h(
    "fieldset",
    { class: "alerts-optins" },
    h("legend", null, t("alerts.legend")),
    row("sound", t("alerts.sound"), t("alerts.atOnce")),
    row("push", t("alerts.push"), after(1)),
    row("email", t("alerts.email", { email: p.email_address }), after(2)),
    row("telegram", t("alerts.telegram"), after(3)),
  );
}

function telegramBlock(ctx, p) {
  if (!p.available.telegram) return null;
  const out = h("div", { class: "telegram-link" });
  if (p.telegram_linked) {
    const unlink = h("button", { type: "button", class: "btn ghost small" }, t("alerts.telegramUnlink"));
    unlink.addEventListener("click", async () => {
      try {
        changed(await alertsApi.unlink());
      } catch (e) {
        ctx.toast(ctx.errorText(e), "warn");
      }
    });
    replaceChildren(out, h("span", { class: "form-msg ok" }, "✓ ", t("alerts.telegramLinked")), " ", unlink);
    return out;
  }
  const btn = h("button", { type: "button", class: "btn small telegram-connect" }, t("alerts.telegramConnect"));
  btn.addEventListener("click", async () => {
    btn.disabled = true;
    let link;
    try {
      link = await alertsApi.link();
    } catch (e) {
      btn.disabled = false;
      ctx.toast(ctx.errorText(e), "warn");
      return;
    }
    const href = safeHref(link.url);
    replaceChildren(
      out,
      h("p", null, t("alerts.telegramStep1")),
      h("a", { class: "btn primary small", href, target: "_blank", rel: "noopener noreferrer" }, t("alerts.telegramOpen", { bot: link.bot })),
      h("p", { class: "muted" }, t("alerts.telegramStep2", { bot: link.bot })),
      h("code", { class: "telegram-code" }, link.command),
      h("p", { class: "muted telegram-wait", role: "status" }, t("alerts.telegramWaiting")),
    );
    pollLinked(Date.parse(link.expires_at));
  });
  replaceChildren(out, btn);
  return out;
}

async function pollLinked(until) {
  while (Date.now() < until) {
    await new Promise((r) => setTimeout(r, LINK_POLL_MS));
    if (!document.getElementById("alerts-card")) return;
    try {
      const p = await alertsApi.get();
      if (p.telegram_linked) return changed(p);
    } catch {
      /* try again */
    }
  }
}

function pushBlock() {
  const status = h("span", { class: "push-health muted" });
  const out = h("span", { class: "form-msg", role: "status" });
  pushHealth().then((health) => {
    status.textContent = t(`alerts.pushState.${health}`);
    status.dataset.health = health;
  });
  return h("div", { class: "push-check" }, h("span", null, t("alerts.pushDevice"), " "), status, " ", testButton(out), out);
}
