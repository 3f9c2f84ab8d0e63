// The settings page: its cards (account, canned responses, operators, widget, labels, ...).

import { buildAccountCard } from "./account.js";
import { api, request } from "./api.js";
import { boot } from "./app.js";
import { buildAuditCard } from "./audit.js";
import { labelCtx } from "./conversation.js";
import { clear, h, replaceChildren } from "./dom.js";
import { avatar, errorText, toast } from "./helpers.js";
import { getLang, t } from "./i18n.js";
import { loadCanned, loadOperators } from "./inbox.js";
import { buildIntegrations } from "./integrations.js";
import { buildLabelsCard } from "./labels.js";
import { buildRoutingCard } from "./routing.js";
import { buildSelftestCard } from "./selftest.js";
import { renderMute, switchLang } from "./shell.js";
import { chime, isMuted, setMuted } from "./sound.js";
import { MAX_LEN, state, ui } from "./state.js";

// ---------------------------------------------------------------- settings

/** Leaving the inbox: forget its DOM so live updates do not try to render into it. */
export function dropInboxRefs() {
  for (const k of [
    "list",
    "inbox",
    "convPane",
    "infoPane",
    "msgs",
    "msgsScroll",
    "reply",
    "composer",
    "assignSelect",
    "teamList",
    "cannedList",
    "opsList",
    "soundToggle",
    "recorder",
    "stagedList",
  ]) {
    ui[k] = null;
  }
}

export function buildSettings() {
  dropInboxRefs();

  // Canned responses
  ui.cannedList = h("ul", { class: "canned-list" });
  const cName = h("input", {
    id: "canned-name",
    maxlength: 60,
    required: true,
    autocomplete: "off",
    placeholder: t("settings.cannedNameHint"),
  });
  const cText = h("textarea", { id: "canned-text", rows: 3, maxlength: MAX_LEN, required: true });
  const cError = h("p", { class: "form-error", role: "alert", hidden: true });
  const cannedForm = h(
    "form",
    { class: "stack-form", novalidate: true },
    h("label", { for: "canned-name" }, t("settings.cannedName")),
    cName,
    h("label", { for: "canned-text" }, t("settings.cannedText")),
    cText,
    cError,
    h("button", { type: "submit", class: "btn primary" }, t("settings.cannedAdd")),
  );
  cannedForm.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    // Names are single words ("/dostavka"): anything else becomes a dash.
    const name = cName.value
      .trim()
      .replace(/^\/+/, "")
      .replace(/[^\p{L}\p{N}_-]+/gu, "-")
      .replace(/^-+|-+$/g, "");
    const text = cText.value.trim();
    if (!name || !text) {
      cError.textContent = t("error.invalid");
      cError.hidden = false;
      return;
    }
    try {
      await api.addCanned(name, text);
      cName.value = "";
      cText.value = "";
      cError.hidden = true;
      await loadCanned();
    } catch (e) {
      cError.textContent = errorText(e);
      cError.hidden = false;
    }
  });

  // Notifications & language
  ui.soundToggle = h("input", { type: "checkbox", id: "sound-toggle", checked: !isMuted() });
  ui.soundToggle.addEventListener("change", () => {
    setMuted(!ui.soundToggle.checked);
    renderMute();
    if (ui.soundToggle.checked) chime();
  });
  const langSelect = h(
    "select",
    { id: "lang-select", class: "select" },
    h("option", { value: "ru" }, "Русский"),
    h("option", { value: "en" }, "English"),
  );
  langSelect.value = getLang();
  langSelect.addEventListener("change", () => switchLang(langSelect.value));

  const sections = [
    buildAccountCard({ me: state.me, errorText, toast }),
    h(
      "section",
      { class: "settings-card", "aria-labelledby": "canned-heading" },
      h("h2", { id: "canned-heading" }, "⚡ ", t("settings.canned")),
      h("p", { class: "muted" }, t("settings.cannedHelp")),
      ui.cannedList,
      cannedForm,
    ),
  ];
  sections.push(
    h(
      "section",
      { class: "settings-card", "aria-labelledby": "notify-heading" },
      h("h2", { id: "notify-heading" }, "🔔 ", t("settings.notifications")),
      h("div", { class: "check-row" }, ui.soundToggle, h("label", { for: "sound-toggle" }, t("settings.sound"))),
      h("label", { for: "lang-select", class: "field-label" }, t("settings.language")),
      langSelect,
    ),
  );
  if (state.me.role === "admin") {
    sections.push(buildOperatorsCard());
    sections.push(buildLabelsCard(labelCtx));
    sections.push(buildRoutingCard(labelCtx)); // teams and routing (routing.js)
    sections.push(...buildIntegrations({ errorText, toast }));
    sections.push(buildSelftestCard({ errorText, toast }));
    sections.push(buildAuditCard({ errorText })); // the audit log (audit.js)
  }
  replaceChildren(
    ui.main,
    h(
      "div",
      { class: "settings" },
      h("h1", null, t("settings.heading")),
      h("div", { class: "settings-grid" }, sections),
    ),
  );
  renderCannedList();
  loadCanned();
  if (state.me.role === "admin") loadOperators();
}

export function renderCannedList() {
  if (!ui.cannedList) return;
  if (!state.canned.length) {
    replaceChildren(ui.cannedList, h("li", { class: "muted" }, t("settings.cannedNone")));
    return;
  }
  replaceChildren(
    ui.cannedList,
    state.canned.map((c) =>
      h(
        "li",
        { class: "canned-row", dataset: { cannedId: String(c.id) } },
        h("div", { class: "canned-row-main" }, h("code", null, `/${c.name}`), h("p", null, c.text)),
        h(
          "button",
          {
            type: "button",
            class: "btn ghost small",
            "aria-label": `${t("settings.delete")} /${c.name}`,
            onclick: async () => {
              try {
                await api.deleteCanned(c.id);
                await loadCanned();
              } catch (e) {
                toast(errorText(e), "warn");
              }
            },
          },
          t("settings.delete"),
        ),
      ),
    ),
  );
}

function buildOperatorsCard() {
  ui.opsList = h("ul", { class: "ops-list" });
  const name = h("input", { id: "op-name", autocomplete: "off", required: true, maxlength: 100 });
  const email = h("input", { id: "op-email", type: "email", autocomplete: "off", required: true });
  const password = h("input", { id: "op-password", type: "password", autocomplete: "new-password", required: true });
  const role = h(
    "select",
    { id: "op-role", class: "select" },
    h("option", { value: "agent" }, t("role.agent")),
    h("option", { value: "admin" }, t("role.admin")),
  );
  const gender = h(
    "select",
    { id: "op-gender", class: "select" },
    ...["", "male", "female"].map((g) => h("option", { value: g }, t(`account.gender.${g || "unset"}`))),
  );
  const msg = h("p", { class: "form-msg", role: "status" });
  const form = h(
    "form",
    { class: "stack-form two-col", novalidate: true },
    h("div", null, h("label", { for: "op-name" }, t("settings.opName")), name),
    h("div", null, h("label", { for: "op-email" }, t("settings.opEmail")), email),
    h("div", null, h("label", { for: "op-password" }, t("settings.opPassword")), password),
    h("div", null, h("label", { for: "op-role" }, t("settings.opRole")), role),
    h("div", null, h("label", { for: "op-gender" }, t("account.gender.label")), gender),
    msg,
    h("button", { type: "submit", class: "btn primary" }, t("settings.opAdd")),
  );
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    msg.className = "form-msg";
    try {
      await api.addOperator({
        name: name.value.trim(),
        email: email.value.trim(),
        password: password.value,
        role: role.value,
        gender: gender.value || null,
      });
      msg.textContent = t("settings.opAdded", { name: name.value.trim() });
      msg.classList.add("ok");
      name.value = "";
      email.value = "";
      password.value = "";
      await loadOperators();
    } catch (e) {
      msg.textContent = errorText(e);
      msg.classList.add("error");
    }
  });
  return h(
    "section",
    { class: "settings-card wide", "aria-labelledby": "ops-heading" },
    h("h2", { id: "ops-heading" }, "👥 ", t("settings.operators")),
    ui.opsList,
    h("h3", { class: "form-title" }, t("settings.opNew")),
    form,
  );
}

export function renderOperatorsTable() {
  if (!ui.opsList) return;
  const ops = [...state.operators.values()].filter((o) => o.email !== undefined);
  ops.sort((a, b) => Number(b.active !== false) - Number(a.active !== false) || a.name.localeCompare(b.name));
  replaceChildren(
    ui.opsList,
    ops.map((o) => {
      const row = h("li", { class: `op-row${o.active === false ? " inactive" : ""}`, dataset: { operatorId: String(o.id) } });
      const extra = h("div", { class: "op-extra" });
      const statusText = o.active === false ? t("settings.opInactive") : o.online ? t("info.online") : t("info.offline");
      const actions = h("div", { class: "op-actions" });
      if (o.active === false) {
        actions.append(
          h(
            "button",
            {
              type: "button",
              class: "btn ghost small",
              "aria-label": `${t("settings.opActivate")}: ${o.name}`,
              onclick: async () => {
                try {
                  await api.activate(o.id);
                  await loadOperators();
                } catch (e) {
                  toast(errorText(e), "warn");
                }
              },
            },
            t("settings.opActivate"),
          ),
        );
      }
      if (o.active !== false) actions.append(roleSelect(o));
      if (o.active !== false) {
        actions.append(
          h(
            "button",
            {
              type: "button",
              class: "btn ghost small",
              "aria-label": `${t("settings.opReset")}: ${o.name}`,
              onclick: () => showPasswordForm(o, extra),
            },
            t("settings.opReset"),
          ),
        );
        if (o.id !== state.me.id) {
          actions.append(
            h(
              "button",
              {
                type: "button",
                class: "btn danger-soft small",
                "aria-label": `${t("settings.opDeactivate")}: ${o.name}`,
                onclick: () => showDeactivate(o, extra),
              },
              t("settings.opDeactivate"),
            ),
          );
        }
      }
      row.append(
        h(
          "div",
          { class: "op-main" },
          avatar(o.name, { online: o.active !== false && Boolean(o.online), seed: o.email || o.name }),
          h(
            "div",
            { class: "op-text" },
            h("strong", null, o.name, o.id === state.me.id ? h("span", { class: "muted" }, ` (${t("you")})`) : null),
            h("span", { class: "muted" }, `${o.email} · ${t(`role.${o.role}`)} · ${statusText}`),
          ),
          actions,
        ),
        extra,
      );
      return row;
    }),
  );
}

/** Admin or agent; the server keeps the last admin one (409 last_admin). */
function roleSelect(o) {
  const select = h(
    "select",
    { class: "select small op-role", "aria-label": t("settings.opRoleOf", { name: o.name }) },
    ...["agent", "admin"].map((r) => h("option", { value: r, selected: o.role === r }, t(`role.${r}`))),
  );
  select.addEventListener("change", async () => {
    try {
      await request("POST", `/api/admin/operators/${o.id}/role`, { role: select.value });
      await loadOperators();
      toast(t("settings.opRoleSaved", { name: o.name, role: t(`role.${select.value}`) }));
    } catch (e) {
      select.value = o.role;
      toast(errorText(e), "warn");
    }
  });
  return select;
}

function showPasswordForm(o, extra) {
  const inputId = `op-pw-${o.id}`;
  const input = h("input", { id: inputId, type: "password", autocomplete: "new-password", minlength: 8 });
  const msg = h("span", { class: "form-msg", role: "status" });
  const form = h(
    "form",
    { class: "inline-form", novalidate: true },
    h("label", { for: inputId }, t("settings.opNewPassword", { name: o.name })),
    input,
    h("button", { type: "submit", class: "btn primary small" }, t("settings.opSave")),
    h("button", { type: "button", class: "btn ghost small", onclick: () => clear(extra) }, t("settings.cancel")),
    msg,
  );
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    try {
      await api.setPassword(o.id, input.value);
      replaceChildren(extra, h("p", { class: "form-msg ok", role: "status" }, t("settings.opSaved")));
    } catch (e) {
      msg.textContent = errorText(e);
      msg.className = "form-msg error";
    }
  });
  replaceChildren(extra, form);
  input.focus();
}

function showDeactivate(o, extra) {
  replaceChildren(
    extra,
    h(
      "div",
      { class: "inline-form confirm" },
      h("span", null, t("settings.opConfirm", { name: o.name })),
      h(
        "button",
        {
          type: "button",
          class: "btn danger small",
          onclick: async () => {
            try {
              await api.deactivate(o.id);
              await loadOperators();
            } catch (e) {
              toast(errorText(e), "warn");
            }
          },
        },
        t("settings.opConfirmYes"),
      ),
      h("button", { type: "button", class: "btn ghost small", onclick: () => clear(extra) }, t("settings.cancel")),
    ),
  );
}

boot();
