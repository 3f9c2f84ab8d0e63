"""The help center: articles (Markdown, RU and EN), their search, and what the widget
showed customers before they asked a person.

- Writing: Markdown is rendered by markdown-it-py (raw HTML off: a `<script>` typed in an
  article is shown as text) and the HTML is cleaned again by nh3 (an allow-list of tags
  and attributes: no script, no event handler, links get rel="noopener noreferrer", only
  http/https/mailto URLs, images only from the help center's own media path). The HTML
  and the plain text are made once, when the article is saved.
- Searching: words are cut to their Snowball stems (PyStemmer: Russian for Cyrillic words,
  English for Latin ones), so "оплата заказов" meets "Как оплатить заказ картой". The stems
  go into an ordinary table (kb_terms: stem, article, weight) queried by one plain SQL
  statement: the same rows, the same integer ranking and so the same results in the same
  order on SQLite and PostgreSQL, by construction (no bm25 on one side and ts_rank on the
  other).
- The widget's record (kb_events): an article that helped (a deflection), one that did
  not, the suggestions shown with a question that was sent, and questions that found
  nothing. The operator sees the first three as a private note in the conversation.
"""

from __future__ import annotations

import asyncio
import hashlib
import html
import os
import re
from collections import Counter
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import Stemmer  # type: ignore[import-not-found]
from sqlalchemy import delete, func, select

from trustdesk.actions import attachments, customers, imaging
from trustdesk.actions import tickets as tickets_actions
from trustdesk.actions.errors import Conflict, Invalid, NotFound
from trustdesk.actions.runtime import Runtime
from trustdesk.store.db import Tx
from trustdesk.store.models import KbArticle, KbEvent, KbTerm, Operator, Visitor, utcnow
from trustdesk.store.raw import Sql

if TYPE_CHECKING:
    from markdown_it import MarkdownIt

LOCALES = ("ru", "en")
MAX_TITLE = 200
MAX_BODY = 50_000
MAX_CATEGORY = 60
MAX_SLUG = 100
MAX_ARTICLES = 5_000
MIN_QUERY, MAX_QUERY = 2, 200
SEARCH_LIMIT = 5
SNIPPET = 160  # characters of the search result's excerpt
DESCRIPTION = 160  # characters of a page's meta description
TITLE_WEIGHT = 5  # a word of the title counts as five of the body
MAX_TERM = 64
# Images in an article: only the help center's own files (no tracking pixels, no hotlinks).
MEDIA_PREFIX = "/help/media/"
EVENT_KINDS = ("helped", "not_helped", "suggested", "no_results")

# ---------------------------------------------------------------- rendering

_TAGS = {
    "p", "br", "hr", "h1", "h2", "h3", "h4", "h5", "h6", "strong", "em", "del", "s", "code",
    "pre", "blockquote", "ul", "ol", "li", "a", "img", "table", "thead", "tbody", "tr", "th",
    "td",
}  # fmt: skip
_ATTRIBUTES = {"a": {"href", "title"}, "img": {"src", "alt", "title"}, "ol": {"start"}}
_BLOCK_END = re.compile(r"</(?:p|h[1-6]|li|pre|blockquote|tr|td|th)>|<br\s*/?>|<hr\s*/?>")
_SPACES = re.compile(r"\s+")


def _attribute_filter(tag: str, attr: str, value: str) -> str | None:
    if tag == "img" and attr == "src":
        return value if value.startswith(MEDIA_PREFIX) and "//" not in value else None
    return value


@lru_cache(maxsize=1)
def _markdown() -> MarkdownIt:
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False}).enable(
        ["table", "strikethrough"]
    )


def render(body: str) -> tuple[str, str]:
    """(clean HTML, plain text) of an article's Markdown."""
    import nh3  # the renderer is loaded by the first article written or previewed

    raw = _markdown().render(body)
    clean = nh3.clean(
        raw,
        tags=_TAGS,
        attributes=_ATTRIBUTES,
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener noreferrer",
        attribute_filter=_attribute_filter,
        strip_comments=True,
    )
    text = nh3.clean(_BLOCK_END.sub(lambda m: m.group(0) + "\n", clean), tags=set())
    text = "\n".join(_SPACES.sub(" ", line).strip() for line in html.unescape(text).split("\n"))
    return clean, re.sub(r"\n{2,}", "\n", text).strip()


def description(text: str, size: int = DESCRIPTION) -> str:
    """The first words of the text, at most `size` characters, cut on a word."""
    text = _SPACES.sub(" ", text).strip()
    if len(text) <= size:
        return text
    cut = text[: size - 1].rsplit(" ", 1)[0]
    return cut.rstrip(",.;:—-") + "…"


# ---------------------------------------------------------------- words and stems

_WORD = re.compile(r"[0-9a-zа-яё]+", re.IGNORECASE)
_CYRILLIC = re.compile(r"[а-яё]")
# Words too common to tell articles apart (matched before stemming, lower-cased, ё as е).
_STOPWORDS = """и в во не что он на я с со как а то все она так его но да ты к у же вы за бы по
    только ее мне было вот от меня еще нет о из ему теперь когда даже ну вдруг ли если уже
    или ни быть был него до вас нибудь опять уж вам ведь там потом себя ничего ей может они
    тут где есть надо ней для мы тебя их чем была сам чтоб без будто чего раз тоже себе под
    будет ж тогда кто этот того потому этого какой совсем ним здесь этом один почти мой тем
    чтобы нее были куда зачем всех никогда можно при наконец два об другой хоть после над
    больше тот через эти нас про всего них какая много разве три эту моя впрочем хорошо
    свою этой перед иногда лучше чуть том нельзя такой им более всегда конечно всю между
    мой мои ваш ваша ваше ваши наш это
    a an and are as at be by for from has have how i in is it its of on or that the this
    to was were what when where which who why will with you your do does can my me we our"""
STOPWORDS = frozenset(_STOPWORDS.split())


@lru_cache(maxsize=2)
def _stemmer(language: str) -> Any:
    return Stemmer.Stemmer(language)


def words(text: str) -> list[str]:
    return [w.lower().replace("ё", "е") for w in _WORD.findall(text)]


def stem(word: str) -> str:
    """The Snowball stem of one lower-cased word (Russian if it has Cyrillic letters)."""
    language = "russian" if _CYRILLIC.search(word) else "english"
    return str(_stemmer(language).stemWord(word))[:MAX_TERM]


def terms(text: str) -> list[str]:
    """The stems of the text's words, stopwords left out, in order (repeats kept)."""
    return [stem(w) for w in words(text) if w not in STOPWORDS and len(w) <= 2 * MAX_TERM]


def query_terms(q: str) -> list[str]:
    """A query's distinct stems, in order, at most 20."""
    return list(dict.fromkeys(terms(q)))[:20]


def index_terms(title: str, text: str) -> dict[str, int]:
    """stem -> weight: each occurrence in the body counts 1, in the title TITLE_WEIGHT."""
    weights: Counter[str] = Counter(terms(text))
    for t in terms(title):
        weights[t] += TITLE_WEIGHT
    return {t: min(w, 10_000) for t, w in weights.items()}


def snippet(text: str, stems: list[str], size: int = SNIPPET) -> str:
    """A short plain-text excerpt of `text` around its first word with one of the stems."""
    wanted = set(stems)
    start = 0
    for m in _WORD.finditer(text[:20_000]):
        w = m.group(0).lower().replace("ё", "е")
        if w not in STOPWORDS and stem(w) in wanted:
            start = m.start()
            break
    if start > 40:  # a little of what comes before, from a word's start
        lead = text.rfind(" ", 0, start - 40)
        start = lead + 1 if lead >= 0 and start - lead < 80 else start
    piece = description(text[start:], size)
    return ("…" + piece) if start > 0 else piece


# ---------------------------------------------------------------- slugs

_TRANSLIT = dict(
    zip(
        "абвгдеёзийклмнопрстуфхцыэ",
        ("a", "b", "v", "g", "d", "e", "e", "z", "i", "y", "k", "l", "m", "n", "o", "p", "r")
        + ("s", "t", "u", "f", "h", "ts", "y", "e"),
        strict=True,
    )
)
_TRANSLIT.update({"ж": "zh", "ч": "ch", "ш": "sh", "щ": "sch", "ю": "yu", "я": "ya"})
_TRANSLIT.update({"ъ": "", "ь": ""})
_SLUG_RE = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")


def slugify(title: str) -> str:
    latin = "".join(_TRANSLIT.get(c, c) for c in title.lower())
    slug = re.sub(r"[^a-z0-9]+", "-", latin).strip("-")[:80].strip("-")
    return slug or "article"


# ---------------------------------------------------------------- checks


def _text(value: object, field: str, low: int, high: int) -> str:
    if not isinstance(value, str):
        raise Invalid(f"{field} must be a string", f"invalid_{field}", field=field)
    value = value.replace("\x00", "").replace("\r\n", "\n")
    if field != "body":
        value = _SPACES.sub(" ", value).strip()
    if not low <= len(value) <= high:
        raise Invalid(f"{field} must have {low}-{high} characters", f"invalid_{field}", field=field)
    return value


def clean_locale(locale: object) -> str:
    if locale not in LOCALES:
        raise Invalid("locale must be ru or en", "invalid_locale", field="locale")
    return str(locale)


def clean_slug(slug: object) -> str:
    if not isinstance(slug, str) or not 1 <= len(slug) <= MAX_SLUG or not _SLUG_RE.match(slug):
        raise Invalid(
            "slug: lower-case latin letters, digits and dashes", "invalid_slug", field="slug"
        )
    return slug


def clean_query(q: object) -> str:
    if not isinstance(q, str):
        raise Invalid("q must be a string", "invalid_query", field="q")
    q = _SPACES.sub(" ", q.replace("\x00", "")).strip()
    if not MIN_QUERY <= len(q) <= MAX_QUERY:
        raise Invalid(f"q must have {MIN_QUERY}-{MAX_QUERY} characters", "invalid_query", field="q")
    return q


# ---------------------------------------------------------------- JSON


def article_json(a: KbArticle, *, full: bool = True) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": a.id,
        "slug": a.slug,
        "title": a.title,
        "locale": a.locale,
        "category": a.category,
        "published": a.published,
        "url": f"/help/{a.slug}" + ("" if a.locale == "ru" else "?lang=en"),
        "updated_at": a.updated_at.isoformat(),
    }
    if full:
        out.update(
            body=a.body,
            html=a.body_html,
            description=description(a.body_text),
            author=a.author_name,
            created_at=a.created_at.isoformat(),
        )
    return out


# ---------------------------------------------------------------- writing (admins)


async def _free_slug(tx: Tx, locale: str, base: str, but: int | None = None) -> str:
    """`base`, or base-2, base-3...: free in this locale. An automatic slug also avoids the
    other locale's, so /help/<slug> names one article."""
    taken = set(
        (
            await tx.session.scalars(
                select(KbArticle.slug).where(
                    (KbArticle.slug == base) | KbArticle.slug.like(base + "-%"),
                    KbArticle.id != (but or 0),
                )
            )
        ).all()
    )
    if base not in taken:
        return base
    n = 2
    while f"{base}-{n}" in taken:
        n += 1
    return f"{base}-{n}"


async def _index(tx: Tx, a: KbArticle) -> None:
    await tx.session.execute(delete(KbTerm).where(KbTerm.article_id == a.id))
    weights = index_terms(a.title, a.body_text)
    if weights:
        tx.session.add_all(KbTerm(term=t, article_id=a.id, weight=w) for t, w in weights.items())


async def create_article(
    rt: Runtime,
    op: Operator,
    *,
    title: object,
    body: object,
    published: bool,
    locale: object,
    category: object = "",
    slug: object = None,
) -> dict[str, Any]:
    t = _text(title, "title", 1, MAX_TITLE)
    b = _text(body, "body", 0, MAX_BODY)
    loc = clean_locale(locale)
    cat = _text(category or "", "category", 0, MAX_CATEGORY)
    wanted = None if slug is None else clean_slug(slug)
    html_, text = render(b)
    async with rt.store.transaction() as tx:
        await tx.lock_scope("kb")  # two admins saving "Доставка" at once get two slugs
        if (await tx.session.scalar(select(func.count(KbArticle.id))) or 0) >= MAX_ARTICLES:
            raise Conflict(f"at most {MAX_ARTICLES} articles", "too_many_articles")
        if wanted is not None:
            await _check_slug(tx, loc, wanted)
        now = utcnow()
        a = KbArticle(
            locale=loc,
            slug=wanted or await _free_slug(tx, loc, slugify(t)),
            title=t,
            category=cat,
            body=b,
            body_html=html_,
            body_text=text,
            published=bool(published),
            author_id=op.id,
            author_name=op.display_name[:100],
            created_at=now,
            updated_at=now,
        )
        tx.session.add(a)
        await tx.session.flush()
        await _index(tx, a)
        return article_json(a)


async def _check_slug(tx: Tx, locale: str, slug: str, but: int | None = None) -> None:
    q = select(KbArticle.id).where(KbArticle.locale == locale, KbArticle.slug == slug)
    if but is not None:
        q = q.where(KbArticle.id != but)
    if await tx.session.scalar(q) is not None:
        raise Conflict("an article with this slug exists", "slug_taken", field="slug")


async def update_article(rt: Runtime, article_id: int, changes: dict[str, Any]) -> dict[str, Any]:
    """Change any of title, body, published, locale, category, slug (the others stay)."""
    clean: dict[str, Any] = {}
    if "title" in changes:
        clean["title"] = _text(changes["title"], "title", 1, MAX_TITLE)
    if "body" in changes:
        clean["body"] = _text(changes["body"], "body", 0, MAX_BODY)
    if "locale" in changes:
        clean["locale"] = clean_locale(changes["locale"])
    if "category" in changes:
        clean["category"] = _text(changes["category"] or "", "category", 0, MAX_CATEGORY)
    if "slug" in changes:
        clean["slug"] = clean_slug(changes["slug"])
    if "published" in changes:
        if not isinstance(changes["published"], bool):
            raise Invalid("published must be true or false", "invalid_published", "published")
        clean["published"] = changes["published"]
    if not clean:
        raise Invalid("nothing to change", "nothing_to_change")
    async with rt.store.transaction() as tx:
        await tx.lock_scope("kb")
        a = await tx.session.get(KbArticle, article_id)
        if a is None:
            raise NotFound("no such article", "article_not_found")
        locale = clean.get("locale", a.locale)
        if "slug" in clean or locale != a.locale:
            await _check_slug(tx, locale, clean.get("slug", a.slug), but=a.id)
        for k, v in clean.items():
            setattr(a, k, v)
        if "body" in clean:
            a.body_html, a.body_text = render(a.body)
        a.updated_at = utcnow()
        await tx.session.flush()
        if "body" in clean or "title" in clean:
            await _index(tx, a)
        return article_json(a)


async def delete_article(rt: Runtime, article_id: int) -> None:
    async with rt.store.transaction() as tx:
        a = await tx.session.get(KbArticle, article_id)
        if a is None:
            raise NotFound("no such article", "article_not_found")
        await tx.session.execute(delete(KbTerm).where(KbTerm.article_id == a.id))
        await tx.session.execute(delete(KbEvent).where(KbEvent.article_id == a.id))
        await tx.session.delete(a)


# ---------------------------------------------------------------- reading


async def list_articles(
    rt: Runtime, *, locale: str | None = None, published_only: bool = False
) -> list[dict[str, Any]]:
    """Articles by category, then title (without their bodies)."""
    q = select(KbArticle).order_by(KbArticle.category, KbArticle.title, KbArticle.id)
    if locale is not None:
        q = q.where(KbArticle.locale == clean_locale(locale))
    if published_only:
        q = q.where(KbArticle.published.is_(True))
    async with rt.store.read() as session:
        rows = (await session.scalars(q)).all()
        return [
            {**article_json(a, full=False), "description": description(a.body_text)} for a in rows
        ]


async def get_article(rt: Runtime, article_id: int, *, published_only: bool) -> dict[str, Any]:
    async with rt.store.read() as session:
        a = await session.get(KbArticle, article_id)
        if a is None or (published_only and not a.published):
            raise NotFound("no such article", "article_not_found")
        return article_json(a)


async def published_by_slug(rt: Runtime, slug: str, lang: str | None) -> dict[str, Any]:
    """The published article at /help/<slug>: of `lang` if two locales share the slug,
    else Russian first. Drafts and unknown slugs: 404."""
    if not isinstance(slug, str) or not _SLUG_RE.match(slug) or len(slug) > MAX_SLUG:
        raise NotFound("no such article", "article_not_found")
    async with rt.store.read() as session:
        rows = (
            await session.scalars(
                select(KbArticle).where(KbArticle.slug == slug, KbArticle.published.is_(True))
            )
        ).all()
    if not rows:
        raise NotFound("no such article", "article_not_found")
    rows = sorted(rows, key=lambda a: (a.locale != (lang or "ru"), a.locale != "ru"))
    out = article_json(rows[0])
    out["shared_slug"] = len(rows) > 1
    return out


# The ranking reads only the terms and the index ix_kb_articles_published (published,
# locale, and the id in it): never an article's row, whose long text comes before the
# flags (SQLite would walk its overflow pages for every candidate). The winners' rows come
# in a second statement.
_RANK = Sql(
    "SELECT t.article_id, count(*) AS hits, sum(t.weight) AS score FROM kb_terms t"
    " WHERE t.term IN :terms[text] AND +t.article_id IN (SELECT a.id FROM kb_articles a"
    "  WHERE a.published = :pub AND (a.locale = :locale OR :locale = ''))"
    " GROUP BY t.article_id"
    " ORDER BY count(*) DESC, sum(t.weight) DESC, t.article_id DESC LIMIT :lim"
)
_ROWS = Sql("SELECT id, slug, title, body_text, locale FROM kb_articles WHERE id IN :ids[bigint]")


async def search(
    rt: Runtime, q: object, locale: str | None = None, limit: int = SEARCH_LIMIT
) -> list[dict[str, Any]]:
    """Published articles matching the query's stems, best first: those with more of the
    query's words, then the heavier matches (title words weigh more), then the newest."""
    stems = query_terms(clean_query(q))
    if not stems:
        return []
    params = {"terms": stems, "pub": True, "locale": locale or "", "lim": limit}
    async with rt.store.raw_read() as raw:
        ranked = [int(r[0]) for r in await raw.all(_RANK, params)]
        rows = {int(r[0]): r for r in await raw.all(_ROWS, {"ids": ranked})} if ranked else {}
    out = []
    for aid in ranked:
        if aid in rows:  # (deleted between the two statements)
            _, slug, title, text, loc = rows[aid]
            out.append(
                {
                    "id": aid,
                    "slug": slug,
                    "title": title,
                    "locale": loc,
                    "snippet": snippet(text, stems),
                }
            )
    return out


def preview(body: object) -> str:
    return render(_text(body, "body", 0, MAX_BODY))[0]


# ---------------------------------------------------------------- images (admins)

MAX_MEDIA = 5 * 1024 * 1024
_MEDIA_NAME = re.compile(r"^([0-9a-f]{64})\.(png|jpg|gif|webp)$")
_MEDIA_TYPES = {"png": "image/png", "jpg": "image/jpeg", "gif": "image/gif", "webp": "image/webp"}


def _media_dir(rt: Runtime) -> Path:
    # Not the attachments' file store: its sweeper deletes what no message refers to.
    return rt.settings.data_dir / "kb-media"


async def save_media(rt: Runtime, data: bytes) -> str:
    """An image for articles (PNG, JPEG, GIF, WebP by content; re-encoded without its
    metadata like a customer's): stored under its sha256, public at /help/media/<name>."""
    if not data:
        raise Invalid("the image is empty", "empty_file")
    if len(data) > MAX_MEDIA:
        raise Invalid(f"at most {MAX_MEDIA // (1024 * 1024)} MiB", "file_too_large")
    ftype = attachments.sniff(data)
    if ftype.kind != "image":
        raise Invalid("an article takes images only (PNG, JPEG, GIF, WebP)", "not_an_image")
    clean, _, _ = await imaging.clean_image(data, ftype.ext, rt.settings)
    name = f"{hashlib.sha256(clean).hexdigest()}.{ftype.ext}"
    folder = _media_dir(rt)

    def write() -> None:
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / name
        if not path.exists():
            tmp = folder / f".{name}.{os.getpid()}.tmp"
            tmp.write_bytes(clean)
            os.replace(tmp, path)

    await asyncio.to_thread(write)
    return MEDIA_PREFIX + name


async def read_media(rt: Runtime, name: str) -> tuple[bytes, str]:
    m = _MEDIA_NAME.match(name) if isinstance(name, str) else None
    path = _media_dir(rt) / name if m else None
    if path is None or not path.is_file():
        raise NotFound("no such image", "not_found")
    return await asyncio.to_thread(path.read_bytes), _MEDIA_TYPES[m.group(2)] if m else ""


# ---------------------------------------------------------------- the widget's record


async def record_feedback(
    rt: Runtime,
    visitor: Visitor,
    *,
    query: str,
    shown: list[int],
    article_id: int | None,
    helpful: bool | None,
    ticket: str | None,
) -> None:
    """What the customer saw and chose. `helpful` True: the article answered them (a
    deflection); False: it did not. With `ticket` (the question was sent after all): the
    conversation gets a private note naming the suggestions, for the operator."""
    # Lower-cased here: SQLite's lower() folds ASCII only, and the report groups by it.
    query = _SPACES.sub(" ", query.replace("\x00", "")).strip()[:MAX_QUERY].lower()
    shown = list(dict.fromkeys(shown))[:SEARCH_LIMIT]
    async with rt.store.transaction() as tx:
        t = None
        if ticket is not None:
            t = await tickets_actions.load_ticket(tx, ticket)
            if t is None or not await customers.owns(tx.session, visitor, t):
                raise NotFound("no such ticket", "ticket_not_found")
        ids = list(dict.fromkeys([*shown, *([article_id] if article_id else [])]))
        found = {
            a.id: a
            for a in (
                await tx.session.scalars(
                    select(KbArticle).where(
                        KbArticle.id.in_(ids or [0]), KbArticle.published.is_(True)
                    )
                )
            ).all()
        }
        if article_id is not None and article_id not in found:
            raise NotFound("no such article", "article_not_found", field="article_id")

        def event(kind: str, aid: int | None) -> None:
            tx.session.add(
                KbEvent(
                    at=utcnow(),
                    kind=kind,
                    article_id=aid,
                    visitor_id=visitor.id,
                    ticket_id=t.id if t else None,
                    query=query,
                )
            )

        if t is None:  # a choice in the widget, before any question was sent
            if helpful is not None and article_id is not None:
                event("helped" if helpful else "not_helped", article_id)
            elif query and not found:
                event("no_results", None)
            return
        # The question was sent after all: what had been suggested, for the report and
        # (as a private note) for the operator. The choice itself was recorded when made.
        if not found:
            if query:
                event("no_results", None)
            return
        for aid in shown:
            if aid in found:
                event("suggested", aid)
        titles = [found[i].title for i in ids if i in found]
        chosen = found[article_id].title if article_id in found else ""
        code = "kb_suggested"
        if chosen:
            code = "kb_not_helped" if helpful is False else "kb_opened"
        args = {"titles": "«" + "», «".join(titles) + "»"}
        await tickets_actions.post_system_note(
            tx, t, code, None, **args, **({"chosen": chosen} if chosen else {})
        )


async def stats(rt: Runtime, since: datetime) -> dict[str, Any]:
    """For the report: per article the questions it answered (helped), those it did not and
    how often it was suggested; the most frequent questions that found nothing."""
    async with rt.store.read() as session:
        n = func.count(KbEvent.id)
        rows = (
            await session.execute(
                select(KbEvent.article_id, KbEvent.kind, n)
                .where(KbEvent.at >= since, KbEvent.article_id.is_not(None))
                .group_by(KbEvent.article_id, KbEvent.kind)
            )
        ).all()
        per: dict[int, dict[str, int]] = {}
        for aid, kind, k in rows:
            per.setdefault(int(aid or 0), {"helped": 0, "not_helped": 0, "suggested": 0})[kind] = (
                int(k)
            )
        titles = dict(
            (
                await session.execute(
                    select(KbArticle.id, KbArticle.title).where(KbArticle.id.in_(list(per) or [0]))
                )
            ).all()
        )
        empty = (
            await session.execute(
                select(KbEvent.query, n)
                .where(KbEvent.at >= since, KbEvent.kind == "no_results")
                .group_by(KbEvent.query)
                .order_by(n.desc(), KbEvent.query)
                .limit(20)
            )
        ).all()
    articles = [
        {"id": aid, "title": titles.get(aid, ""), **c}
        for aid, c in sorted(per.items(), key=lambda x: (-x[1]["helped"], x[0]))
    ]
    return {
        "articles": articles,
        "deflected": sum(a["helped"] for a in articles),
        "no_results": [{"query": q, "count": int(k)} for q, k in empty],
    }
