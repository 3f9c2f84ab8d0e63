// "База знаний": the help center's articles (GET/POST/PATCH/DELETE /api/admin/kb/articles).
// Admins write them in Markdown with a preview rendered and cleaned by the server
// (/api/admin/kb/preview), publish or keep them as drafts, in Russian or English; agents
// read them. The report's card (reportKbCard) shows what they answered without an operator.
// The composer's "insert a link" is kbLinkPicker below.

import { ApiError, getCsrf, request } from "./api.js";
import { h, replaceChildren } from "./dom.js";
import { t } from "./i18n.js";
import { appendCleanHtml } from "/widget/kb.js";

const MAX_TITLE = 200;
const MAX_BODY = 50000;
const MAX_CATEGORY = 60;
const tk = (key, vars) => t(`kb.${key}`, vars);
const DRAFT_KEY = "trustdesk.kbDraft"; // an operator's answer on its way to the editor

/** "📚 В статью" on an operator's answer (admins): the editor opens with it as the body. */
export function kbFromAnswer(m) {
  return h(
    "button",
    {
      type: "button",
      class: "link-btn kb-from-answer",
      title: tk("fromAnswerHint"),
      onclick: () => {
        try {
          sessionStorage.setItem(DRAFT_KEY, JSON.stringify({ body: String(m.message || "").slice(0, MAX_BODY) }));
        } catch {
          return;
        }
        location.hash = "#/kb";
      },
    },
    tk("fromAnswer"),
  );
}

function takeDraft() {
  try {
    const raw = sessionStorage.getItem(DRAFT_KEY);
    sessionStorage.removeItem(DRAFT_KEY);
    const d = raw ? JSON.parse(raw) : null;
    return d && typeof d.body === "string" ? d : null;
  } catch {
    return null;
  }
}

/** What the form sends: the fields that changed (all of them for a new article). */
export function articleChanges(before, form) {
  const out = {};
  for (const key of ["title", "body", "category", "locale", "published"]) {
    const v = key === "title" || key === "category" ? String(form[key] ?? "").trim() : form[key];
    if (!before || before[key] !== v) out[key] = v;
  }
  return out;
}

/** Articles grouped for the list: by locale filter, then category and title. */
export function filterArticles(articles, { locale = "", query = "" } = {}) {
  const q = query.trim().toLowerCase();
  return articles
    .filter((a) => !locale || a.locale === locale)
    .filter((a) => !q || a.title.toLowerCase().includes(q) || (a.category || "").toLowerCase().includes(q))
    .sort((a, b) => (a.category || "").localeCompare(b.category || "") || a.title.localeCompare(b.title));
}

export function buildKbPage(main, { errorText, toast, me }) {
  const admin = me && me.role === "admin";
  const state = { articles: [], current: null, locale: "", query: "" };

  const list = h("ul", { class: "kb-list", "aria-label": tk("list") });
  const filter = h(
    "select",
    { class: "select", "aria-label": tk("language") },
    h("option", { value: "" }, tk("allLanguages")),
    h("option", { value: "ru" }, "RU"),
    h("option", { value: "en" }, "EN"),
  );
  const find = h("input", { type: "search", class: "kb-find", placeholder: tk("filter"), "aria-label": tk("filter") });
  const newBtn = admin
    ? h("button", { type: "button", class: "btn primary", onclick: () => edit(null) }, tk("new"))
    : null;

  // The editor.
  const title = h("input", { id: "kb-title", type: "text", maxlength: MAX_TITLE, required: true, autocomplete: "off" });
  const category = h("input", { id: "kb-category", type: "text", maxlength: MAX_CATEGORY, autocomplete: "off", placeholder: tk("categoryHint") });
  const locale = h(
    "select",
    { id: "kb-locale", class: "select" },
    h("option", { value: "ru" }, "Русский"),
    h("option", { value: "en" }, "English"),
  );
  const body = h("textarea", { id: "kb-body", rows: 14, maxlength: MAX_BODY, spellcheck: "true", placeholder: tk("bodyHint") });
  const published = h("input", { id: "kb-published", type: "checkbox" });
  const preview = h("div", { class: "kb-preview", "aria-live": "polite", hidden: true });
  const error = h("p", { class: "form-error", role: "alert", hidden: true });
  const heading = h("h2", { id: "kb-editor-heading" }, tk("new"));
  const link = h("a", { class: "kb-open-link", target: "_blank", rel: "noopener", hidden: true }, tk("openPublic"));
  const previewBtn = h("button", { type: "button", class: "btn soft", onclick: togglePreview }, tk("preview"));
  const saveBtn = h("button", { type: "submit", class: "btn primary" }, tk("save"));
  const deleteBtn = h("button", { type: "button", class: "btn danger-soft", hidden: true, onclick: remove }, tk("delete"));
  const imageInput = h("input", { type: "file", accept: "image/png,image/jpeg,image/gif,image/webp", class: "sr-only", tabindex: "-1", "aria-hidden": "true" });
  const imageBtn = admin
    ? h("button", { type: "button", class: "btn soft", onclick: () => imageInput.click() }, tk("image"))
    : null;
  imageInput.addEventListener("change", () => {
    const file = imageInput.files && imageInput.files[0];
    imageInput.value = "";
    if (file) addImage(file);
  });
  for (const el of [title, category, locale, body, published]) el.disabled = !admin;
  const form = h(
    "form",
    { class: "stack-form kb-form", novalidate: true },
    h("label", { for: "kb-title" }, tk("title")),
    title,
    h(
      "div",
      { class: "kb-row" },
      h("div", null, h("label", { for: "kb-category" }, tk("category")), category),
      h("div", null, h("label", { for: "kb-locale" }, tk("language")), locale),
    ),
    h("label", { for: "kb-body" }, tk("body")),
    body,
    preview,
    h("label", { class: "kb-check" }, published, " ", tk("published")),
    error,
    h("div", { class: "kb-actions" }, previewBtn, imageBtn, imageInput, admin ? saveBtn : null, deleteBtn, link),
  );
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    save();
  });
  const editor = h("section", { class: "settings-card kb-editor", "aria-labelledby": "kb-editor-heading" }, heading, form);

  replaceChildren(
    main,
    h(
      "div",
      { class: "settings kb-page" },
      h("h1", null, tk("heading")),
      h("p", { class: "muted kb-lead" }, tk("lead"), " ", h("a", { href: "/help", target: "_blank", rel: "noopener" }, "/help")),
      h(
        "div",
        { class: "settings-grid" },
        h(
          "section",
          { class: "settings-card kb-articles", "aria-labelledby": "kb-list-heading" },
          h("h2", { id: "kb-list-heading" }, tk("list")),
          h("div", { class: "kb-tools" }, find, filter, newBtn),
          list,
        ),
        editor,
      ),
    ),
  );
  filter.addEventListener("change", () => {
    state.locale = filter.value;
    renderList();
  });
  find.addEventListener("input", () => {
    state.query = find.value;
    renderList();
  });

  function showError(e) {
    error.textContent = e ? errorText(e) : "";
    error.hidden = !e;
  }

  function renderList() {
    const rows = filterArticles(state.articles, state);
    replaceChildren(
      list,
      rows.length
        ? rows.map((a) =>
            h(
              "li",
              { class: `kb-item${state.current && state.current.id === a.id ? " active" : ""}`, dataset: { id: String(a.id) } },
              h(
                "button",
                { type: "button", class: "kb-item-btn", onclick: () => open(a.id) },
                h("span", { class: "kb-item-title" }, a.title),
                h(
                  "span",
                  { class: "kb-item-meta" },
                  h("span", { class: "kb-lang" }, a.locale.toUpperCase()),
                  a.category ? h("span", null, a.category) : null,
                  h("span", { class: a.published ? "kb-state published" : "kb-state draft" }, a.published ? tk("isPublished") : tk("isDraft")),
                ),
              ),
            ),
          )
        : h("li", { class: "muted kb-empty" }, state.articles.length ? tk("noMatch") : tk("empty")),
    );
  }

  function fill(a) {
    state.current = a;
    heading.textContent = a ? tk("editing") : tk("new");
    title.value = a ? a.title : "";
    category.value = a ? a.category : "";
    locale.value = a ? a.locale : "ru";
    body.value = a ? a.body || "" : "";
    published.checked = a ? a.published : false;
    deleteBtn.hidden = !(a && admin);
    link.hidden = !(a && a.published);
    if (a) link.href = a.url;
    preview.hidden = true;
    previewBtn.textContent = tk("preview");
    showError(null);
    renderList();
  }

  function edit(a) {
    fill(a);
    title.focus();
  }

  async function load() {
    try {
      state.articles = (await request("GET", "/api/admin/kb/articles")).articles || [];
      renderList();
    } catch (e) {
      showError(e);
    }
  }

  async function open(id) {
    try {
      fill((await request("GET", `/api/admin/kb/articles/${id}`)).article);
    } catch (e) {
      showError(e);
    }
  }

  async function togglePreview() {
    if (!preview.hidden) {
      preview.hidden = true;
      previewBtn.textContent = tk("preview");
      return;
    }
    try {
      const out = await request("POST", "/api/admin/kb/preview", { body: body.value });
      replaceChildren(preview);
      appendCleanHtml(preview, out.html);
      if (!preview.childNodes.length) preview.append(h("p", { class: "muted" }, tk("previewEmpty")));
      preview.hidden = false;
      previewBtn.textContent = tk("hidePreview");
    } catch (e) {
      showError(e);
    }
  }

  async function addImage(file) {
    showError(null);
    try {
      const res = await fetch("/api/admin/kb/upload", {
        method: "POST",
        headers: { "X-CSRF-Token": getCsrf() || "", "Content-Type": "application/octet-stream" },
        body: file,
        credentials: "same-origin",
      });
      const data = await res.json().catch(() => ({}));
      if (!res.ok) throw new ApiError(res.status, data.error?.code || null, data.error?.message || res.statusText);
      const start = body.selectionStart ?? body.value.length;
      const before = body.value.slice(0, start);
      const gap = before && !before.endsWith("\n\n") ? (before.endsWith("\n") ? "\n" : "\n\n") : "";
      body.setRangeText(`${gap}${data.markdown}\n`, start, body.selectionEnd ?? start, "end");
      body.focus();
    } catch (e) {
      showError(e);
    }
  }

  async function save() {
    const values = {
      title: title.value,
      body: body.value,
      category: category.value,
      locale: locale.value,
      published: published.checked,
    };
    if (!values.title.trim()) {
      showError(new ApiError(422, "invalid_title", tk("titleRequired")));
      title.focus();
      return;
    }
    const before = state.current;
    const changes = articleChanges(before, values);
    try {
      const out = before
        ? Object.keys(changes).length
          ? await request("PATCH", `/api/admin/kb/articles/${before.id}`, changes)
          : { article: before }
        : await request("POST", "/api/admin/kb/articles", changes);
      const a = out.article;
      state.articles = [...state.articles.filter((x) => x.id !== a.id), a];
      fill(a);
      toast(a.published ? tk("savedPublished") : tk("savedDraft"));
    } catch (e) {
      showError(e);
    }
  }

  async function remove() {
    const a = state.current;
    if (!a) return;
    if (deleteBtn.dataset.confirm !== "1") {
      deleteBtn.dataset.confirm = "1";
      deleteBtn.textContent = tk("confirmDelete");
      return;
    }
    delete deleteBtn.dataset.confirm;
    deleteBtn.textContent = tk("delete");
    try {
      await request("DELETE", `/api/admin/kb/articles/${a.id}`);
      state.articles = state.articles.filter((x) => x.id !== a.id);
      fill(null);
      toast(tk("deleted"));
    } catch (e) {
      showError(e);
    }
  }

  fill(null);
  const draft = admin ? takeDraft() : null;
  if (draft) {
    body.value = draft.body;
    title.focus();
  }
  load();
}

/** The report's card: questions answered by an article (no operator needed), and what
 * customers searched for in vain. */
export function reportKbCard(days) {
  const body = h("div", { class: "kb-report-body" }, h("p", { class: "muted" }, "…"));
  const card = h(
    "section",
    { class: "report-card kb-report", "aria-labelledby": "kb-report-heading" },
    h("div", { class: "report-card-head" }, h("h2", { id: "kb-report-heading" }, tk("report"))),
    body,
  );
  request("GET", `/api/admin/kb/stats?days=${encodeURIComponent(days || 30)}`)
    .then((s) => {
      const articles = (s.articles || []).filter((a) => a.helped || a.not_helped || a.suggested);
      replaceChildren(
        body,
        h("p", { class: "kb-deflected" }, tk("deflected", { n: s.deflected || 0 })),
        articles.length
          ? h(
              "table",
              { class: "kb-table" },
              h("thead", null, h("tr", null, h("th", null, tk("article")), h("th", null, tk("helped")), h("th", null, tk("notHelped")), h("th", null, tk("suggested")))),
              h(
                "tbody",
                null,
                articles.map((a) =>
                  h("tr", { dataset: { id: String(a.id) } }, h("td", null, a.title), h("td", null, String(a.helped)), h("td", null, String(a.not_helped)), h("td", null, String(a.suggested))),
                ),
              ),
            )
          : h("p", { class: "muted" }, tk("reportEmpty")),
        h("h3", null, tk("noResults")),
        (s.no_results || []).length
          ? h("ul", { class: "kb-misses" }, s.no_results.map((x) => h("li", null, h("span", null, x.query), h("span", { class: "kb-n" }, String(x.count)))))
          : h("p", { class: "muted" }, tk("noResultsEmpty")),
      );
    })
    .catch(() => replaceChildren(body, h("p", { class: "muted" }, tk("reportFailed"))));
  return card;
}

/** For the composer: search published articles, pick one, get its public link. */
export function kbLinkPicker({ onPick, origin = location.origin }) {
  const input = h("input", { type: "search", class: "kb-pick-input", placeholder: tk("pickHint"), "aria-label": tk("pickHint"), maxlength: 200 });
  const results = h("ul", { class: "kb-pick-results", role: "listbox", "aria-label": tk("pickResults") });
  const box = h("div", { class: "kb-pick", role: "dialog", "aria-label": tk("pick") }, input, results);
  let timer = 0;
  let seq = 0;
  input.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(async () => {
      const q = input.value.trim();
      const mine = ++seq;
      if (q.length < 2) {
        replaceChildren(results);
        return;
      }
      try {
        const out = await request("GET", `/api/admin/kb/search?q=${encodeURIComponent(q)}`);
        if (mine !== seq) return;
        replaceChildren(
          results,
          (out.articles || []).length
            ? out.articles.map((a) =>
                h(
                  "li",
                  { role: "option" },
                  h("button", { type: "button", class: "kb-pick-item", onclick: () => onPick(`${a.title}: ${origin}${a.url}`) }, h("strong", null, a.title), h("span", null, a.snippet)),
                ),
              )
            : h("li", { class: "muted" }, tk("pickNone")),
        );
      } catch {
        replaceChildren(results, h("li", { class: "muted" }, tk("reportFailed")));
      }
    }, 250);
  });
  return { box, focus: () => input.focus() };
}

/** The composer's "📚" button and its picker: the chosen article's title and public link go
 * into the reply at the cursor. `reply()`: the composer's textarea. */
export function kbComposerTool(reply) {
  let picker = null;
  const box = h("div", { class: "kb-pick-wrap", hidden: true });
  const button = h(
    "button",
    {
      type: "button",
      class: "icon-btn tool-btn kb-btn",
      "aria-label": tk("pick"),
      title: tk("pick"),
      "aria-expanded": "false",
      onclick: () => toggle(box.hidden),
    },
    "📚",
  );
  function toggle(show) {
    if (show && !picker) {
      picker = kbLinkPicker({
        onPick(text) {
          const area = reply();
          toggle(false);
          if (!area) return;
          const start = area.selectionStart ?? area.value.length;
          const end = area.selectionEnd ?? area.value.length;
          const before = area.value.slice(0, start);
          const gap = before && !/\s$/.test(before) ? " " : "";
          area.setRangeText(gap + text, start, end, "end");
          area.dispatchEvent(new Event("input", { bubbles: true }));
          area.focus();
        },
      });
      picker.box.addEventListener("keydown", (ev) => {
        if (ev.key === "Escape") {
          ev.stopPropagation();
          toggle(false);
          button.focus();
        }
      });
      box.append(picker.box);
    }
    box.hidden = !show;
    button.setAttribute("aria-expanded", String(show));
    if (show) picker.focus();
  }
  return { button, box };
}
