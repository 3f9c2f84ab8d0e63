// Settings for admins: webhooks (with their delivery log) and API tokens. Secrets (the
// webhook signing key, the token itself) are shown once, right after creation.

import { api } from "./api.js";
import { clear, fullWhen, h, replaceChildren } from "./dom.js";
import { getLang, t } from "./i18n.js";

const EVENTS = ["ticket.created", "ticket.closed", "ticket.reopened", "message.created"];
const SCOPES = ["tickets:read", "messages:write", "tickets:write"];

let ctx = { errorText: (e) => String(e.message || e), toast: () => {} };

function when(iso) {
  return iso ? fullWhen(iso, getLang()) : "—";
}

function copyText(text) {
  if (navigator.clipboard && window.isSecureContext) return navigator.clipboard.writeText(text);
  return new Promise((resolve, reject) => {
    const ta = h("textarea", { class: "sr-only", readonly: true });
    ta.value = text;
    document.body.appendChild(ta);
    ta.select();
    const ok = document.execCommand("copy");
    ta.remove();
    if (ok) resolve();
    else reject(new Error("copy failed"));
  });
}

/** The one-time secret: a read-only field, a copy button and a warning. */
function secretBox({ label, value, warning, id }) {
  const input = h("input", { id, class: "secret-value", readonly: true, value, spellcheck: "false", autocomplete: "off" });
  input.addEventListener("focus", () => input.select());
  const status = h("span", { class: "copy-status", role: "status" });
  const copy = h(
    "button",
    {
      type: "button",
      class: "btn primary small",
      onclick: async () => {
        try {
          await copyText(value);
          status.textContent = t("integr.copied");
        } catch {
          input.select();
          status.textContent = t("integr.copyManually");
        }
      },
    },
    t("integr.copy"),
  );
  return h(
    "div",
    { class: "secret-box" },
    h("label", { for: id }, label),
    h("div", { class: "secret-row" }, input, copy),
    h("p", { class: "secret-warning" }, "⚠ ", warning),
    status,
  );
}

function pill(text, cls = "") {
  return h("span", { class: `pill tag ${cls}` }, text);
}

// ---------------------------------------------------------------- webhooks

function webhooksCard() {
  const list = h("ul", { class: "hook-list" });
  const created = h("div", { class: "created-slot" });
  const url = h("input", {
    id: "hook-url",
    type: "url",
    inputmode: "url",
    autocomplete: "off",
    spellcheck: "false",
    required: true,
    maxlength: 2048,
    placeholder: "https://example.com/trustdesk-hook",
  });
  const desc = h("input", { id: "hook-desc", autocomplete: "off", maxlength: 200 });
  const boxes = EVENTS.map((ev) =>
    h(
      "label",
      { class: "check-chip" },
      h("input", { type: "checkbox", value: ev, checked: true }),
      h("span", null, t(`event.${ev}`)),
      h("code", null, ev),
    ),
  );
  const notes = h("input", { type: "checkbox", id: "hook-notes" });
  const msg = h("p", { class: "form-msg", role: "status" });
  const form = h(
    "form",
    { class: "stack-form integr-form", novalidate: true },
    h(
      "div",
      { class: "form-row" },
      h("div", { class: "grow" }, h("label", { for: "hook-url" }, t("integr.hookUrl")), url),
      h("div", null, h("label", { for: "hook-desc" }, t("integr.hookDesc")), desc),
    ),
    h("fieldset", { class: "checks" }, h("legend", null, t("integr.hookEvents")), boxes),
    h("div", { class: "check-row" }, notes, h("label", { for: "hook-notes" }, t("integr.hookNotes"))),
    msg,
    h("button", { type: "submit", class: "btn primary" }, t("integr.hookAdd")),
  );
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    msg.className = "form-msg";
    msg.textContent = "";
    const events = boxes.map((b) => b.querySelector("input")).filter((i) => i.checked).map((i) => i.value);
    if (!url.value.trim()) {
      msg.textContent = t("integr.hookUrlNeeded");
      msg.classList.add("error");
      url.focus();
      return;
    }
    if (!events.length) {
      msg.textContent = t("integr.hookEventsNeeded");
      msg.classList.add("error");
      return;
    }
    try {
      const r = await api.addWebhook({
        url: url.value.trim(),
        events,
        include_notes: notes.checked,
        description: desc.value.trim() || null,
      });
      url.value = "";
      desc.value = "";
      notes.checked = false;
      replaceChildren(
        created,
        h(
          "div",
          { class: "created-card" },
          h("p", { class: "form-msg ok" }, t("integr.hookCreated", { url: r.webhook.url })),
          secretBox({
            id: `hook-secret-${r.webhook.id}`,
            label: t("integr.hookSecret"),
            value: r.secret,
            warning: t("integr.secretOnce"),
          }),
          h("button", { type: "button", class: "btn ghost small", onclick: () => clear(created) }, t("integr.done")),
        ),
      );
      await loadHooks();
    } catch (e) {
      msg.textContent = ctx.errorText(e);
      msg.classList.add("error");
    }
  });

  const open = new Set(); // webhook ids whose delivery log is shown
  const logs = new Map(); // webhook id -> its log element (kept across re-renders)

  async function loadHooks() {
    let hooks;
    try {
      hooks = (await api.webhooks()).webhooks || [];
    } catch (e) {
      replaceChildren(list, h("li", { class: "form-msg error" }, ctx.errorText(e)));
      return;
    }
    if (!hooks.length) {
      replaceChildren(list, h("li", { class: "muted empty-row" }, t("integr.hookNone")));
      return;
    }
    const focused = document.activeElement && list.contains(document.activeElement) ? document.activeElement.dataset.focusKey : null;
    for (const id of [...logs.keys()]) if (!open.has(id)) logs.delete(id);
    replaceChildren(list, hooks.map(hookRow));
    if (focused) {
      const again = list.querySelector(`[data-focus-key="${focused}"]`);
      if (again) again.focus();
    }
  }

  function hookRow(w) {
    let log = logs.get(w.id);
    if (!log) {
      log = h("div", { class: "delivery-log" });
      logs.set(w.id, log);
    }
    const extra = h("div", { class: "op-extra" });
    const c = w.deliveries || { ok: 0, pending: 0, failed: 0 };
    const toggle = h(
      "button",
      {
        type: "button",
        class: "btn ghost small",
        dataset: { focusKey: `log-${w.id}` },
        "aria-expanded": open.has(w.id) ? "true" : "false",
        "aria-label": `${t("integr.deliveries")}: ${w.url}`,
      },
      t("integr.deliveries"),
    );
    toggle.addEventListener("click", () => {
      if (open.has(w.id)) {
        open.delete(w.id);
        toggle.setAttribute("aria-expanded", "false");
        clear(log);
      } else {
        open.add(w.id);
        toggle.setAttribute("aria-expanded", "true");
        loadHooks(); // fresh counts too; the row's log loads itself

      }
    });
    const del = h(
      "button",
      {
        type: "button",
        class: "btn danger-soft small",
        "aria-label": `${t("integr.hookDelete")}: ${w.url}`,
        onclick: () =>
          replaceChildren(
            extra,
            h(
              "div",
              { class: "inline-form confirm" },
              h("span", null, t("integr.hookDeleteConfirm")),
              h(
                "button",
                {
                  type: "button",
                  class: "btn danger small",
                  onclick: async () => {
                    try {
                      await api.deleteWebhook(w.id);
                      open.delete(w.id);
                      await loadHooks();
                    } catch (e) {
                      ctx.toast(ctx.errorText(e), "warn");
                    }
                  },
                },
                t("integr.hookDeleteYes"),
              ),
              h("button", { type: "button", class: "btn ghost small", onclick: () => clear(extra) }, t("settings.cancel")),
            ),
          ),
      },
      t("settings.delete"),
    );
    const row = h(
      "li",
      { class: `hook-row${w.active ? "" : " inactive"}`, dataset: { hookId: String(w.id) } },
      h(
        "div",
        { class: "hook-main" },
        h("span", { class: "hook-icon", "aria-hidden": "true" }, "🔗"),
        h(
          "div",
          { class: "hook-text" },
          h("code", { class: "hook-url", title: w.url }, w.url),
          w.description ? h("span", { class: "hook-desc" }, w.description) : null,
          h(
            "span",
            { class: "hook-tags" },
            w.events.map((e) => pill(t(`event.${e}`))),
            w.include_notes ? pill(t("integr.withNotes"), "note") : null,
          ),
        ),
        h(
          "span",
          { class: "hook-counts", "aria-label": t("integr.counts", { ok: c.ok, pending: c.pending, failed: c.failed }) },
          h("span", { class: "cnt ok", title: t("delivery.ok") }, `✓ ${c.ok}`),
          h("span", { class: "cnt pending", title: t("delivery.pending") }, `⏳ ${c.pending}`),
          h("span", { class: `cnt failed${c.failed ? " some" : ""}`, title: t("delivery.failed") }, `✕ ${c.failed}`),
        ),
        h("div", { class: "op-actions" }, toggle, del),
      ),
      extra,
      log,
    );
    if (open.has(w.id)) loadDeliveries(w, log);
    return row;
  }

  async function loadDeliveries(w, log) {
    if (!log.firstChild) replaceChildren(log, h("p", { class: "muted" }, t("list.loading")));
    let rows;
    try {
      rows = (await api.deliveries(w.id)).deliveries || [];
    } catch (e) {
      replaceChildren(log, h("p", { class: "form-msg error" }, ctx.errorText(e)));
      return;
    }
    if (!open.has(w.id)) return;
    const refresh = h(
      "button",
      { type: "button", class: "btn ghost small", onclick: () => loadHooks() },
      "↻ ",
      t("integr.refresh"),
    );
    const head = h(
      "div",
      { class: "log-head" },
      h("strong", null, t("integr.logTitle")),
      h("span", { class: "muted" }, t("integr.logHint")),
      refresh,
    );
    if (!rows.length) {
      replaceChildren(log, head, h("p", { class: "muted empty-row" }, t("integr.logEmpty")));
      return;
    }
    const table = h(
      "table",
      { class: "log-table", "aria-label": `${t("integr.logTitle")}: ${w.url}` },
      h(
        "thead",
        null,
        h(
          "tr",
          null,
          [t("integr.colEvent"), t("integr.colStatus"), t("integr.colAttempts"), t("integr.colHttp"), t("integr.colTime"), ""].map((c) =>
            h("th", { scope: "col" }, c),
          ),
        ),
      ),
      h(
        "tbody",
        null,
        rows.map((d) =>
          h(
            "tr",
            { class: `delivery ${d.status}`, dataset: { deliveryId: String(d.id), status: d.status } },
            h("td", null, h("code", null, d.event)),
            h(
              "td",
              null,
              h("span", { class: `pill dstatus ${d.status}` }, t(`delivery.${d.status}`)),
              d.last_error ? h("span", { class: "delivery-error", title: d.last_error }, d.last_error) : null,
            ),
            h("td", { class: "num" }, String(d.attempts)),
            h("td", { class: "num" }, d.last_status === null || d.last_status === undefined ? "—" : String(d.last_status)),
            h(
              "td",
              null,
              h("time", { datetime: d.delivered_at || d.updated_at || d.created_at }, when(d.delivered_at || d.updated_at || d.created_at)),
              d.status === "pending" && d.next_attempt_at
                ? h("span", { class: "muted next-try" }, t("integr.nextTry", { when: when(d.next_attempt_at) }))
                : null,
            ),
            h(
              "td",
              null,
              d.status === "failed"
                ? h(
                    "button",
                    {
                      type: "button",
                      class: "btn ghost small",
                      onclick: async () => {
                        try {
                          await api.retryDelivery(w.id, d.id);
                          await loadDeliveries(w, log);
                        } catch (e) {
                          ctx.toast(ctx.errorText(e), "warn");
                        }
                      },
                    },
                    t("integr.retry"),
                  )
                : null,
            ),
          ),
        ),
      ),
    );
    replaceChildren(log, head, h("div", { class: "table-scroll" }, table));
  }

  const card = h(
    "section",
    { class: "settings-card wide", "aria-labelledby": "hooks-heading" },
    h("h2", { id: "hooks-heading" }, "🔗 ", t("integr.hooks")),
    h("p", { class: "muted" }, t("integr.hooksHelp")),
    list,
    created,
    h("h3", { class: "form-title" }, t("integr.hookNew")),
    form,
  );
  replaceChildren(list, h("li", { class: "muted empty-row" }, t("list.loading")));
  loadHooks();
  return card;
}

// ---------------------------------------------------------------- API tokens

function tokensCard() {
  const list = h("ul", { class: "token-list" });
  const created = h("div", { class: "created-slot" });
  const name = h("input", { id: "token-name", autocomplete: "off", required: true, maxlength: 100, placeholder: t("integr.tokenNameHint") });
  const boxes = SCOPES.map((sc) =>
    h(
      "label",
      { class: "check-chip" },
      h("input", { type: "checkbox", value: sc, checked: sc === "tickets:read" }),
      h("span", null, t(`scope.${sc}`)),
      h("code", null, sc),
    ),
  );
  const msg = h("p", { class: "form-msg", role: "status" });
  const form = h(
    "form",
    { class: "stack-form integr-form", novalidate: true },
    h("div", { class: "form-row" }, h("div", { class: "grow" }, h("label", { for: "token-name" }, t("integr.tokenName")), name)),
    h("fieldset", { class: "checks" }, h("legend", null, t("integr.tokenScopes")), boxes),
    msg,
    h("button", { type: "submit", class: "btn primary" }, t("integr.tokenAdd")),
  );
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    msg.className = "form-msg";
    msg.textContent = "";
    const scopes = boxes.map((b) => b.querySelector("input")).filter((i) => i.checked).map((i) => i.value);
    if (!name.value.trim()) {
      msg.textContent = t("integr.tokenNameNeeded");
      msg.classList.add("error");
      name.focus();
      return;
    }
    if (!scopes.length) {
      msg.textContent = t("integr.tokenScopesNeeded");
      msg.classList.add("error");
      return;
    }
    try {
      const r = await api.addToken({ name: name.value.trim(), scopes });
      name.value = "";
      replaceChildren(
        created,
        h(
          "div",
          { class: "created-card" },
          h("p", { class: "form-msg ok" }, t("integr.tokenCreated", { name: r.token.name })),
          secretBox({
            id: `token-secret-${r.token.id}`,
            label: t("integr.tokenSecret"),
            value: r.secret,
            warning: t("integr.tokenOnce"),
          }),
          h("button", { type: "button", class: "btn ghost small", onclick: () => clear(created) }, t("integr.done")),
        ),
      );
      await loadTokens();
    } catch (e) {
      msg.textContent = ctx.errorText(e);
      msg.classList.add("error");
    }
  });

  async function loadTokens() {
    let tokens;
    try {
      tokens = (await api.tokens()).tokens || [];
    } catch (e) {
      replaceChildren(list, h("li", { class: "form-msg error" }, ctx.errorText(e)));
      return;
    }
    if (!tokens.length) {
      replaceChildren(list, h("li", { class: "muted empty-row" }, t("integr.tokenNone")));
      return;
    }
    replaceChildren(list, tokens.map(tokenRow));
  }

  function tokenRow(tk) {
    const extra = h("div", { class: "op-extra" });
    const actions = h("div", { class: "op-actions" });
    if (!tk.revoked) {
      actions.append(
        h(
          "button",
          {
            type: "button",
            class: "btn danger-soft small",
            "aria-label": `${t("integr.tokenRevoke")}: ${tk.name}`,
            onclick: () =>
              replaceChildren(
                extra,
                h(
                  "div",
                  { class: "inline-form confirm" },
                  h("span", null, t("integr.tokenRevokeConfirm", { name: tk.name })),
                  h(
                    "button",
                    {
                      type: "button",
                      class: "btn danger small",
                      onclick: async () => {
                        try {
                          await api.revokeToken(tk.id);
                          await loadTokens();
                        } catch (e) {
                          ctx.toast(ctx.errorText(e), "warn");
                        }
                      },
                    },
                    t("integr.tokenRevokeYes"),
                  ),
                  h("button", { type: "button", class: "btn ghost small", onclick: () => clear(extra) }, t("settings.cancel")),
                ),
              ),
          },
          t("integr.tokenRevoke"),
        ),
      );
    }
    const meta = [
      tk.operator ? t("integr.actsAs", { name: tk.operator.name }) : null,
      t("integr.createdAt", { when: when(tk.created_at) }),
      tk.last_used_at ? t("integr.usedAt", { when: when(tk.last_used_at) }) : t("integr.neverUsed"),
      tk.revoked ? t("integr.revokedAt", { when: when(tk.revoked_at) }) : null,
    ].filter(Boolean);
    return h(
      "li",
      { class: `token-row${tk.revoked ? " revoked" : ""}`, dataset: { tokenId: String(tk.id) } },
      h(
        "div",
        { class: "hook-main" },
        h("span", { class: "hook-icon", "aria-hidden": "true" }, "🔑"),
        h(
          "div",
          { class: "hook-text" },
          h(
            "span",
            { class: "token-title" },
            h("strong", null, tk.name),
            h("code", { class: "token-prefix", title: t("integr.prefixHint") }, `${tk.prefix}…`),
            tk.revoked ? pill(t("integr.revoked"), "revoked") : pill(t("integr.active"), "active"),
          ),
          h("span", { class: "hook-tags" }, tk.scopes.map((sc) => pill(t(`scope.${sc}`)))),
          h("span", { class: "muted token-meta" }, meta.join(" · ")),
        ),
        actions,
      ),
      extra,
    );
  }

  const card = h(
    "section",
    { class: "settings-card wide", "aria-labelledby": "tokens-heading" },
    h("h2", { id: "tokens-heading" }, "🔑 ", t("integr.tokens")),
    h("p", { class: "muted" }, t("integr.tokensHelp")),
    list,
    created,
    h("h3", { class: "form-title" }, t("integr.tokenNew")),
    form,
  );
  replaceChildren(list, h("li", { class: "muted empty-row" }, t("list.loading")));
  loadTokens();
  return card;
}

/** The two admin cards for the settings page. options: {errorText, toast} */
export function buildIntegrations(options) {
  ctx = { ...ctx, ...options };
  return [webhooksCard(), tokensCard()];
}
