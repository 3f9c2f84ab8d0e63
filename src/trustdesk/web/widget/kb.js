// The help center in the widget: while the customer types a first question (no ticket yet),
// up to three matching articles above the composer; one opens inside the widget with
// "Это помогло" / "Нет, нужен оператор". What was shown and chosen goes to
// /api/support/kb/feedback, and, once the question is sent, with its ticket (the operator
// then sees a private note). Loaded by chat.js on demand (the first keystrokes), so a first
// open costs nothing more; its texts and its stylesheet (kb.css) come with it.

export const MIN_CHARS = 3;
export const DEBOUNCE_MS = 300;
export const SHOW_AT_MOST = 3;

const TEXTS = {
  ru: {
    maybe: "Возможно, ответ уже есть:",
    back: "Назад",
    helped: "Это помогло",
    notHelped: "Нет, нужен оператор",
    thanks: "Рады, что статья помогла! Если появятся вопросы — пишите.",
    openFull: "Открыть в центре помощи",
    loading: "Загрузка…",
    failed: "Не удалось открыть статью",
    article: "Статья",
  },
  en: {
    maybe: "This may already answer it:",
    back: "Back",
    helped: "That helped",
    notHelped: "No, I need a person",
    thanks: "Glad the article helped! Write to us if anything else comes up.",
    openFull: "Open in the help center",
    loading: "Loading…",
    failed: "Could not open the article",
    article: "Article",
  },
};

/** The query to search for `text`, or null: too short, or the same as the last one. */
export function queryFor(text, last) {
  const q = String(text || "").replace(/\s+/g, " ").trim().slice(0, 200);
  if (q.length < MIN_CHARS) return null;
  return q.toLowerCase() === String(last || "").toLowerCase() ? null : q;
}

// What an article may contain here (the server cleaned it already: this is the second
// line). Anything else is dropped; its text stays.
const TAGS = new Set([
  "P", "BR", "HR", "H1", "H2", "H3", "H4", "H5", "H6", "STRONG", "EM", "DEL", "S", "CODE",
  "PRE", "BLOCKQUOTE", "UL", "OL", "LI", "A", "IMG", "TABLE", "THEAD", "TBODY", "TR", "TH",
  "TD",
]);

/** A link or image address that may stay: http(s)/mailto links, the help center's images. */
export function safeUrl(tag, value) {
  const v = String(value || "").trim();
  if (tag === "IMG") return v.startsWith("/help/media/") && !v.includes("//") ? v : null;
  if (v.startsWith("/") && !v.startsWith("//")) return v;
  return /^(https?:|mailto:)/i.test(v) ? v : null;
}

/** Copy the parsed article into real nodes, element by element (never innerHTML). */
function copyInto(target, source, doc) {
  for (const node of source.childNodes) {
    if (node.nodeType === 3) {
      target.append(doc.createTextNode(node.textContent));
      continue;
    }
    if (node.nodeType !== 1) continue;
    if (!TAGS.has(node.tagName)) {
      copyInto(target, node, doc); // unknown element: keep its text only
      continue;
    }
    const el = doc.createElement(node.tagName.toLowerCase());
    if (node.tagName === "A") {
      const href = safeUrl("A", node.getAttribute("href"));
      if (href) {
        el.href = href;
        el.target = "_blank";
        el.rel = "noopener noreferrer";
      }
    } else if (node.tagName === "IMG") {
      const src = safeUrl("IMG", node.getAttribute("src"));
      if (!src) continue;
      el.src = src;
      el.alt = node.getAttribute("alt") || "";
    }
    copyInto(el, node, doc);
    target.append(el);
  }
}

/** The server-cleaned HTML of an article, appended to `target` node by node. (Also used by
 * the dashboard's preview, web/admin/kb.js.) */
export function appendCleanHtml(target, html) {
  const parsed = new DOMParser().parseFromString(String(html || ""), "text/html");
  copyInto(target, parsed.body, target.ownerDocument);
}

/**
 * ctx: { locale, api(path, opts), ensureSession(), els (chat.js's DOM handles: input, form,
 *        app) }. The suggestions go above the composer, the article in the chat's place.
 */
export function createKb({ locale, api, ensureSession, els }) {
  const doc = document;
  const ctx = {
    locale,
    api,
    ensureSession,
    footer: els.form.parentNode,
    app: els.app,
    clearInput() {
      els.input.value = "";
      els.input.dispatchEvent(new Event("input", { bubbles: true })); // (resize, send button)
    },
    focusInput: () => els.input.focus({ preventScroll: true }),
  };
  const tx = TEXTS[ctx.locale] || TEXTS.ru;
  const css = doc.createElement("link");
  css.rel = "stylesheet";
  css.href = new URL("./kb.css", import.meta.url).href;
  doc.head.append(css);

  const box = doc.createElement("section");
  box.className = "kb-suggest";
  box.hidden = true;
  box.setAttribute("aria-live", "polite");
  const lead = doc.createElement("p");
  lead.className = "kb-suggest__lead";
  lead.textContent = tx.maybe;
  const list = doc.createElement("ul");
  list.className = "kb-suggest__list";
  box.append(lead, list);
  ctx.footer.prepend(box);

  const view = doc.createElement("section");
  view.className = "kb-article";
  view.hidden = true;
  view.setAttribute("role", "dialog");
  view.setAttribute("aria-label", tx.article);
  ctx.footer.before(view); // in the chat's place (see kb.css), above "Работает на TrustDesk"

  const state = {
    last: "", // the last query searched
    query: "", // the query whose results are shown
    shown: [], // ids of the articles shown for it
    opened: null, // the article opened, if any
    helpful: null, // the customer's answer about it
    done: false, // a ticket exists: no more suggestions
    dismissed: new Set(), // articles answered "no": not suggested again
  };
  let timer = 0;
  let controller = null;

  function render(articles) {
    list.replaceChildren();
    for (const a of articles) {
      const li = doc.createElement("li");
      const b = doc.createElement("button");
      b.type = "button";
      b.className = "kb-suggest__item";
      b.dataset.id = String(a.id);
      const title = doc.createElement("strong");
      title.textContent = a.title;
      const snip = doc.createElement("span");
      snip.textContent = a.snippet;
      b.append(title, snip);
      b.addEventListener("click", () => open(a));
      li.append(b);
      list.append(li);
    }
    box.hidden = articles.length === 0;
  }

  async function search(q) {
    controller?.abort();
    controller = new AbortController();
    const signal = controller.signal;
    try {
      if (!(await ctx.ensureSession())) return;
      const params = new URLSearchParams({ q, locale: ctx.locale === "en" ? "en" : "ru" });
      const res = await ctx.api(`/api/support/kb/search?${params}`, { signal });
      if (!res.ok || signal.aborted || state.done) return;
      const found = ((await res.json()).articles || []).filter((a) => !state.dismissed.has(a.id));
      if (signal.aborted || state.done) return;
      const shown = found.slice(0, SHOW_AT_MOST);
      state.query = q;
      state.shown = shown.map((a) => a.id);
      render(shown);
    } catch {
      /* aborted, or offline: no suggestions, the chat works as ever */
    }
  }

  function input(text) {
    if (state.done) return;
    clearTimeout(timer);
    const q = queryFor(text, state.last);
    if (q === null) {
      if (String(text || "").trim().length < MIN_CHARS) {
        controller?.abort();
        state.last = "";
        state.query = "";
        state.shown = [];
        render([]);
      }
      return;
    }
    timer = setTimeout(() => {
      state.last = q;
      search(q);
    }, DEBOUNCE_MS);
  }

  function feedback(body) {
    return ctx
      .api("/api/support/kb/feedback", { method: "POST", body })
      .catch(() => undefined);
  }

  function closeView() {
    view.hidden = true;
    view.replaceChildren();
    ctx.app.classList.remove("kb-open");
  }

  async function open(a) {
    state.opened = a.id;
    state.helpful = null;
    view.replaceChildren();
    const back = doc.createElement("button");
    back.type = "button";
    back.className = "kb-article__back";
    back.textContent = `‹ ${tx.back}`;
    back.addEventListener("click", () => {
      closeView();
      ctx.focusInput();
    });
    const scroll = doc.createElement("div");
    scroll.className = "kb-article__scroll";
    const h = doc.createElement("h2");
    h.className = "kb-article__title";
    h.textContent = a.title;
    const body = doc.createElement("div");
    body.className = "kb-article__body";
    body.textContent = tx.loading;
    scroll.append(h, body);
    view.append(back, scroll);
    view.hidden = false;
    ctx.app.classList.add("kb-open");
    back.focus();
    let article = null;
    try {
      const res = await ctx.api(`/api/support/kb/articles/${encodeURIComponent(a.id)}`);
      if (res.ok) article = (await res.json()).article;
    } catch {
      article = null;
    }
    if (view.hidden || state.opened !== a.id) return;
    body.replaceChildren();
    if (!article) {
      body.textContent = tx.failed;
      return;
    }
    appendCleanHtml(body, article.html);
    const full = doc.createElement("a");
    full.className = "kb-article__full";
    full.href = safeUrl("A", article.url) || "/help";
    full.target = "_blank";
    full.rel = "noopener noreferrer";
    full.textContent = tx.openFull;
    const actions = doc.createElement("div");
    actions.className = "kb-article__actions";
    const yes = doc.createElement("button");
    yes.type = "button";
    yes.className = "kb-article__yes";
    yes.textContent = tx.helped;
    const no = doc.createElement("button");
    no.type = "button";
    no.className = "kb-article__no";
    no.textContent = tx.notHelped;
    actions.append(yes, no);
    scroll.append(full);
    view.append(actions);
    const base = { query: state.query, shown: state.shown, article_id: a.id };
    yes.addEventListener("click", () => {
      state.helpful = true;
      feedback({ ...base, helpful: true });
      const thanks = doc.createElement("p");
      thanks.className = "kb-article__thanks";
      thanks.setAttribute("role", "status");
      thanks.textContent = tx.thanks;
      actions.replaceChildren(thanks);
      ctx.clearInput();
      state.last = "";
      render([]);
    });
    no.addEventListener("click", () => {
      state.helpful = false;
      state.dismissed.add(a.id);
      feedback({ ...base, helpful: false });
      closeView();
      render([]);
      ctx.focusInput();
    });
  }

  let pending = null;

  /** The customer sent their question: say what had been suggested once it has a ticket. */
  function sent(text) {
    clearTimeout(timer);
    controller?.abort();
    if (state.last || state.shown.length || state.opened) {
      pending = {
        query: String(text || "").slice(0, 200),
        shown: state.shown,
        article_id: state.opened,
        helpful: state.helpful,
      };
    }
    render([]);
  }

  /** A ticket exists now: suggestions stop; the pending record goes with it. */
  function ticket(ticketId) {
    state.done = true;
    clearTimeout(timer);
    render([]);
    if (pending && ticketId) {
      const body = { ...pending, ticketId };
      if (body.article_id === null) delete body.article_id;
      if (body.helpful === null) delete body.helpful;
      pending = null;
      feedback(body);
    }
  }

  /** A new conversation: suggestions again. */
  function reset() {
    state.done = false;
    state.last = "";
    state.query = "";
    state.shown = [];
    state.opened = null;
    state.helpful = null;
    pending = null;
    render([]);
    closeView();
  }

  return { input, sent, ticket, reset };
}
