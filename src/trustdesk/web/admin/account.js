// The operator's own account: "Забыли пароль?" and the reset link (#/reset/<token>), the
// login's second step (TOTP or a recovery code), and the settings card (change password,
// two-factor login, and for admins "require it of everyone").
//
// Same rules as app.js: text only through textContent (`h`), no inline script or style.

import { request } from "./api.js";
import { h, replaceChildren } from "./dom.js";
import { has, t } from "./i18n.js";

const RESET_ROUTE = /^#\/reset\/([A-Za-z0-9_-]{16,128})$/;
let rules = { min_length: 8, max_length: 256, reset_minutes: 30, smtp: true }; // replaced by the server's

async function loadRules() {
  try {
    rules = await request("GET", "/api/admin/password/rules", undefined, { quiet401: true });
  } catch {
    /* keep the defaults: the server states the rule in its 422 anyway */
  }
  return rules;
}

function ruleText() {
  return t("account.rule", { min: rules.min_length, max: rules.max_length });
}

/** The message for an error: ours if we have one, else the server's (it names the rule). */
function explain(e, fallback) {
  if (e.code && has(`error.${e.code}`)) return t(`error.${e.code}`);
  if (e.status === 422 && e.message) return e.message;
  if (e.status === 429) return t("error.rate");
  if (e.status === 0) return t("login.offline");
  return fallback ? fallback(e) : e.message;
}

function passwordInput(id, autocomplete) {
  return h("input", {
    id,
    type: "password",
    autocomplete,
    required: true,
    minlength: rules.min_length,
    maxlength: rules.max_length,
  });
}

function note(kind = "") {
  const el = h("p", { class: `form-error ${kind}`.trim(), role: "alert" });
  el.hidden = true;
  return el;
}

function say(el, text, kind) {
  el.textContent = text;
  el.className = `form-error${kind ? ` ${kind}` : ""}`;
  el.hidden = !text;
}

function loginPage(root, title, subtitle, ...content) {
  root.className = "login-screen";
  const card = h(
    "form",
    { class: "login-card", novalidate: true, "aria-labelledby": "account-title" },
    h("div", { class: "login-brand" }, h("img", { src: "/admin/icon.svg", alt: "", width: 40, height: 40 }), h("span", null, "TrustDesk")),
    h("h1", { id: "account-title" }, title),
    subtitle ? h("p", { class: "muted" }, subtitle) : null,
    ...content,
  );
  replaceChildren(root, h("main", { class: "login-wrap" }, card));
  return card;
}

async function busy(button, label, job) {
  const text = button.textContent;
  button.disabled = true;
  button.textContent = label;
  try {
    return await job();
  } finally {
    button.disabled = false;
    button.textContent = text;
  }
}

// ---------------------------------------------------------------- on the login screen

/** The "Забыли пароль?" link under the password field. */
export function forgotLink(root, back) {
  return h("button", { type: "button", class: "link-btn forgot-link", onclick: () => showForgot(root, back) }, t("account.forgot"));
}

/** A success notice on the login screen (showLogin shows its message as an alert). */
function backWith(back, message) {
  back(message);
  const el = document.querySelector(".login-card .form-error");
  if (el) el.classList.add("ok");
}

export async function showForgot(root, back) {
  const email = h("input", { id: "forgot-email", type: "email", autocomplete: "username", inputmode: "email", required: true, maxlength: 254 });
  const msg = note();
  const submit = h("button", { type: "submit", class: "btn primary block" }, t("account.forgotSend"));
  const cancel = h("button", { type: "button", class: "btn ghost block", onclick: () => back() }, t("account.backToLogin"));
  const form = loginPage(root, t("account.forgotTitle"), t("account.forgotHelp"), h("label", { for: "forgot-email" }, t("login.email")), email, msg, submit, cancel);
  email.focus();
  const noSmtp = () => say(msg, t("account.noSmtp", { email: email.value.trim() || "…" }), "info");
  if (!(await loadRules()).smtp) noSmtp();
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    if (!email.value.trim() || !email.value.includes("@")) {
      say(msg, t("error.invalid_email"));
      email.focus();
      return;
    }
    try {
      const r = await busy(submit, t("account.sending"), () =>
        request("POST", "/api/admin/password/forgot", { email: email.value.trim() }, { quiet401: true }),
      );
      if (r.smtp === false) noSmtp();
      else say(msg, t("account.forgotSent", { min: rules.reset_minutes || 30 }), "ok");
    } catch (e) {
      say(msg, explain(e));
    }
  });
}

/** The token of a #/reset/<token> link, or null. */
export function resetToken() {
  const m = location.hash.match(RESET_ROUTE);
  return m ? m[1] : null;
}

export async function showReset(root, back) {
  const token = resetToken();
  await loadRules();
  const pw = passwordInput("reset-password", "new-password");
  const again = passwordInput("reset-again", "new-password");
  const msg = note();
  const submit = h("button", { type: "submit", class: "btn primary block" }, t("account.resetSave"));
  const form = loginPage(
    root,
    t("account.resetTitle"),
    t("account.resetHelp"),
    h("label", { for: "reset-password" }, t("account.newPassword")),
    pw,
    h("p", { class: "field-hint", id: "reset-rule" }, ruleText()),
    h("label", { for: "reset-again" }, t("account.repeatPassword")),
    again,
    msg,
    submit,
  );
  pw.setAttribute("aria-describedby", "reset-rule");
  pw.focus();
  const leave = (message) => {
    history.replaceState(null, "", `${location.pathname}${location.search}`); // the token leaves the URL
    backWith(back, message);
  };
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    if (pw.value.length < rules.min_length || pw.value.length > rules.max_length) {
      say(msg, ruleText());
      pw.focus();
      return;
    }
    if (pw.value !== again.value) {
      say(msg, t("account.mismatch"));
      again.focus();
      return;
    }
    try {
      await busy(submit, t("account.saving"), () =>
        request("POST", "/api/admin/password/reset", { token, password: pw.value }, { quiet401: true }),
      );
      leave(t("account.resetDone"));
    } catch (e) {
      say(msg, explain(e));
      if (e.field === "token") submit.disabled = true; // this link is spent: ask for a new one
    }
  });
  form.append(h("button", { type: "button", class: "btn ghost block", onclick: () => leave() }, t("account.backToLogin")));
}

/** The login's second step: a code from the app, or one recovery code. */
export function showTotpStep(root, pending, { signedIn, back }) {
  const code = h("input", {
    id: "totp-code",
    inputmode: "numeric",
    autocomplete: "one-time-code",
    maxlength: 16,
    required: true,
    spellcheck: "false",
  });
  const msg = note();
  const submit = h("button", { type: "submit", class: "btn primary block" }, t("account.verify"));
  const form = loginPage(
    root,
    t("account.totpTitle"),
    t("account.totpHelp"),
    h("label", { for: "totp-code" }, t("account.code")),
    code,
    h("p", { class: "field-hint" }, t("account.recoveryHint")),
    msg,
    submit,
    h("button", { type: "button", class: "btn ghost block", onclick: () => back() }, t("account.backToLogin")),
  );
  code.focus();
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    if (!code.value.trim()) {
      say(msg, t("account.codeNeeded"));
      return;
    }
    try {
      const r = await busy(submit, t("login.busy"), () =>
        request("POST", "/api/admin/login/totp", { pending, code: code.value.trim() }, { quiet401: true }),
      );
      signedIn(r);
    } catch (e) {
      if (e.code === "login_expired") return backWith(back, t("error.login_expired"));
      say(msg, explain(e));
      code.select();
    }
  });
}

// ---------------------------------------------------------------- after login

/** Admins require two-factor login and this operator has none: open its setup. */
export async function checkRequired2fa(go) {
  try {
    const acc = await request("GET", "/api/admin/account");
    if (acc.require_2fa && !acc.totp_enabled) go();
  } catch {
    /* the settings card shows it again */
  }
}

// ---------------------------------------------------------------- the settings card

export function buildAccountCard({ me, errorText, toast }) {
  const body = h("div", { class: "account-body" }, h("p", { class: "muted" }, t("account.loading")));
  const card = h(
    "section",
    { class: "settings-card account-card", id: "account-card", "aria-labelledby": "account-heading" },
    h("h2", { id: "account-heading" }, "🔐 ", t("account.heading")),
    h("p", { class: "muted" }, t("account.signedInAs", { email: me.email })),
    body,
  );
  const ctx = { me, body, toast, fail: (e) => explain(e, errorText) };
  renderCard(ctx);
  return card;
}

async function renderCard(ctx) {
  let acc;
  try {
    [acc] = await Promise.all([request("GET", "/api/admin/account"), loadRules()]);
  } catch (e) {
    replaceChildren(ctx.body, h("p", { class: "form-msg error" }, ctx.fail(e)));
    return;
  }
  const parts = [genderForm(ctx), passwordForm(ctx), twoFactor(ctx, acc)];
  if (ctx.me.role === "admin") parts.push(requireToggle(ctx, acc));
  replaceChildren(ctx.body, parts);
  if (acc.require_2fa && !acc.totp_enabled) {
    ctx.body.closest(".settings-card").scrollIntoView({ block: "start" });
  }
}

/** The grammatical gender the notices about this operator use ("Мария подключилась"). */
function genderForm(ctx) {
  const select = h(
    "select",
    { id: "acc-gender", class: "select", "aria-describedby": "acc-gender-hint" },
    ...["", "male", "female"].map((g) =>
      h("option", { value: g, selected: (ctx.me.gender || "") === g }, t(`account.gender.${g || "unset"}`)),
    ),
  );
  const msg = h("p", { class: "form-msg", role: "status" });
  select.addEventListener("change", async () => {
    try {
      const r = await request("POST", "/api/admin/account/gender", { gender: select.value || null });
      ctx.me.gender = r.operator.gender;
      msg.textContent = t("account.gender.saved");
      msg.className = "form-msg ok";
    } catch (e) {
      select.value = ctx.me.gender || "";
      msg.textContent = ctx.fail(e);
      msg.className = "form-msg error";
    }
  });
  return h(
    "div",
    { class: "stack-form" },
    h("h3", { class: "form-title" }, t("account.gender.title")),
    h("label", { for: "acc-gender" }, t("account.gender.label")),
    select,
    h("p", { class: "field-hint", id: "acc-gender-hint" }, t("account.gender.hint")),
    msg,
  );
}

function passwordForm(ctx) {
  const current = passwordInput("acc-current", "current-password");
  current.removeAttribute("minlength");
  const pw = passwordInput("acc-new", "new-password");
  const msg = h("p", { class: "form-msg", role: "status" });
  const submit = h("button", { type: "submit", class: "btn primary" }, t("account.changeSave"));
  const form = h(
    "form",
    { class: "stack-form", novalidate: true },
    h("h3", { class: "form-title" }, t("account.changeTitle")),
    h("label", { for: "acc-current" }, t("account.currentPassword")),
    current,
    h("label", { for: "acc-new" }, t("account.newPassword")),
    pw,
    h("p", { class: "field-hint", id: "acc-rule" }, ruleText()),
    msg,
    submit,
  );
  pw.setAttribute("aria-describedby", "acc-rule");
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const show = (text, kind) => {
      msg.textContent = text;
      msg.className = `form-msg ${kind}`;
    };
    if (!current.value) return show(t("account.currentNeeded"), "error");
    if (pw.value.length < rules.min_length || pw.value.length > rules.max_length) return show(ruleText(), "error");
    try {
      await busy(submit, t("account.saving"), () =>
        request("POST", "/api/admin/password/change", { current: current.value, password: pw.value }),
      );
      current.value = "";
      pw.value = "";
      show(t("account.changed"), "ok");
    } catch (e) {
      show(ctx.fail(e), "error");
      (e.field === "current" ? current : pw).focus();
    }
  });
  return form;
}

function twoFactor(ctx, acc) {
  const box = h("div", { class: "totp-box", id: "totp-box" });
  const status = acc.totp_enabled
    ? t("account.totpOn", { n: acc.recovery_codes_left })
    : t("account.totpOff");
  box.append(
    h("h3", { class: "form-title" }, t("account.totpHeading")),
    h("p", { class: `totp-status ${acc.totp_enabled ? "on" : "off"}` }, status),
  );
  if (acc.require_2fa && !acc.totp_enabled) {
    box.append(h("p", { class: "form-msg error totp-required", role: "alert" }, t("account.totpRequired")));
  }
  if (!acc.totp_enabled) {
    const start = h("button", { type: "button", class: "btn primary", id: "totp-start" }, t("account.totpEnable"));
    start.addEventListener("click", () => setupFlow(ctx, box, start));
    box.append(h("p", { class: "muted" }, t("account.totpWhy")), start);
    if (acc.require_2fa) queueMicrotask(() => start.click());
    return box;
  }
  const pw = passwordInput("totp-off-password", "current-password");
  pw.removeAttribute("minlength");
  const msg = h("p", { class: "form-msg", role: "status" });
  const off = h("form", { class: "stack-form", novalidate: true }, h("label", { for: "totp-off-password" }, t("account.totpOffPassword")), pw, msg, h("button", { type: "submit", class: "btn ghost" }, t("account.totpDisable")));
  off.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    try {
      await request("POST", "/api/admin/2fa/disable", { password: pw.value });
      ctx.toast(t("account.totpDisabled"));
      renderCard(ctx);
    } catch (e) {
      msg.textContent = ctx.fail(e);
      msg.className = "form-msg error";
    }
  });
  box.append(off);
  return box;
}

async function setupFlow(ctx, box, start) {
  let setup;
  try {
    setup = await busy(start, t("account.loading"), () => request("POST", "/api/admin/2fa/setup", {}));
  } catch (e) {
    ctx.toast(ctx.fail(e), "warn");
    return;
  }
  start.hidden = true;
  const code = h("input", { id: "totp-confirm", inputmode: "numeric", autocomplete: "one-time-code", maxlength: 8, required: true });
  const msg = h("p", { class: "form-msg", role: "status" });
  const secret = h("input", { id: "totp-secret", class: "secret-value", readonly: true, value: setup.secret, spellcheck: "false" });
  secret.addEventListener("focus", () => secret.select());
  const form = h(
    "form",
    { class: "stack-form totp-setup", novalidate: true },
    h("ol", { class: "totp-steps" }, h("li", null, t("account.step1")), h("li", null, t("account.step2")), h("li", null, t("account.step3"))),
    h("img", { class: "totp-qr", src: setup.qr_svg, alt: t("account.qrAlt"), width: 200, height: 200 }),
    h("label", { for: "totp-secret" }, t("account.secret")),
    secret,
    h("label", { for: "totp-confirm" }, t("account.code")),
    code,
    msg,
    h("button", { type: "submit", class: "btn primary" }, t("account.totpConfirm")),
  );
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    try {
      const r = await request("POST", "/api/admin/2fa/enable", { code: code.value.trim() || "-" });
      showRecoveryCodes(ctx, box, r.recovery_codes);
    } catch (e) {
      msg.textContent = ctx.fail(e);
      msg.className = "form-msg error";
      code.select();
    }
  });
  box.append(form);
  code.focus();
}

function showRecoveryCodes(ctx, box, codes) {
  const list = h("ol", { class: "recovery-codes", id: "recovery-codes" }, codes.map((c) => h("li", null, h("code", null, c))));
  replaceChildren(
    box,
    h("h3", { class: "form-title" }, t("account.totpHeading")),
    h("p", { class: "form-msg ok" }, t("account.totpEnabled")),
    h("p", { class: "secret-warning" }, t("account.codesOnce")),
    list,
    h("button", { type: "button", class: "btn primary", id: "codes-done", onclick: () => renderCard(ctx) }, t("account.codesSaved")),
  );
}

function requireToggle(ctx, acc) {
  const box = h("input", { type: "checkbox", id: "require-2fa", checked: acc.require_2fa });
  box.addEventListener("change", async () => {
    try {
      await request("PUT", "/api/admin/security", { require_2fa: box.checked });
      ctx.toast(box.checked ? t("account.requireOn") : t("account.requireOff"));
      renderCard(ctx);
    } catch (e) {
      box.checked = !box.checked;
      ctx.toast(ctx.fail(e), "warn");
    }
  });
  return h(
    "div",
    { class: "require-2fa" },
    h("h3", { class: "form-title" }, t("account.requireTitle")),
    h("div", { class: "check-row" }, box, h("label", { for: "require-2fa" }, t("account.require"))),
    h("p", { class: "muted" }, t("account.requireHelp")),
  );
}
