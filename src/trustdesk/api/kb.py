"""The help center's JSON API (actions/kb.py): admins write articles under
/api/admin/kb (session + CSRF), operators read and search them, and the widget searches
published ones with the visitor's token under /api/support/kb. The public pages are in
api/help.py."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt

from trustdesk.actions import kb
from trustdesk.actions.errors import Invalid
from trustdesk.api import schemas as s
from trustdesk.api.admin import ERRORS, RowId
from trustdesk.api.deps import AdminDep, OperatorDep, RuntimeDep, VisitorDep
from trustdesk.api.ratelimit import TokenBucket
from trustdesk.store.models import utcnow

admin_router = APIRouter(prefix="/api/admin/kb", tags=["help center"])
visitor_router = APIRouter(prefix="/api/support/kb", tags=["help center"])

Locale = Literal["ru", "en"]
# The query is checked by actions/kb.py (2-200 characters: 422); this only bounds reading it.
SearchQ = Annotated[str, Query(max_length=1000)]
LocaleQ = Annotated[Locale | None, Query()]


class ArticleIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    title: str = Field(max_length=kb.MAX_TITLE * 2)
    body: str = Field(max_length=kb.MAX_BODY)
    published: StrictBool = False
    locale: Locale = "ru"
    category: str = Field("", max_length=kb.MAX_CATEGORY * 2)
    slug: str | None = Field(None, max_length=kb.MAX_SLUG)


class ArticlePatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    title: str | None = Field(None, max_length=kb.MAX_TITLE * 2)
    body: str | None = Field(None, max_length=kb.MAX_BODY)
    published: StrictBool | None = None
    locale: Locale | None = None
    category: str | None = Field(None, max_length=kb.MAX_CATEGORY * 2)
    slug: str | None = Field(None, max_length=kb.MAX_SLUG)


class Article(BaseModel):
    id: int
    slug: str
    title: str
    locale: Locale
    category: str
    published: bool
    url: str
    updated_at: str
    description: str = ""
    body: str | None = None
    html: str | None = None
    author: str | None = None
    created_at: str | None = None


class ArticleOut(BaseModel):
    article: Article


class ArticlesOut(BaseModel):
    articles: list[Article]


class PreviewIn(BaseModel):
    body: str = Field(max_length=kb.MAX_BODY)


class PreviewOut(BaseModel):
    html: str


class Found(BaseModel):
    id: int
    slug: str
    title: str
    snippet: str
    locale: Locale
    url: str


class SearchOut(BaseModel):
    articles: list[Found]


class VisitorArticle(BaseModel):
    id: int
    slug: str
    title: str
    locale: Locale
    url: str
    html: str


class VisitorArticleOut(BaseModel):
    article: VisitorArticle


class FeedbackIn(BaseModel):
    """What the widget showed and what the customer chose (see actions/kb.record_feedback)."""

    model_config = ConfigDict(extra="forbid")
    query: str = Field("", max_length=kb.MAX_QUERY * 2)
    shown: list[Annotated[StrictInt, Field(ge=1, le=2**62)]] = Field(
        default_factory=list, max_length=kb.SEARCH_LIMIT
    )
    article_id: StrictInt | None = Field(None, ge=1, le=2**62)
    helpful: StrictBool | None = None
    ticketId: str | None = Field(None, min_length=1, max_length=40)  # noqa: N815 - the API's name


class StatArticle(BaseModel):
    id: int
    title: str
    helped: int
    not_helped: int
    suggested: int


class EmptySearch(BaseModel):
    query: str
    count: int


class StatsOut(BaseModel):
    days: int
    deflected: int
    articles: list[StatArticle]
    no_results: list[EmptySearch]


def _found(rows: list[dict[str, Any]]) -> SearchOut:
    return SearchOut(
        articles=[
            Found(**r, url=f"/help/{r['slug']}" + ("" if r["locale"] == "ru" else "?lang=en"))
            for r in rows
        ]
    )


# ---------------------------------------------------------------- admins and operators


@admin_router.get("/articles", response_model=ArticlesOut, responses=ERRORS)
async def list_articles(auth: OperatorDep, rt: RuntimeDep, locale: LocaleQ = None) -> ArticlesOut:
    """Every article (drafts too), by category and title, without bodies."""
    rows = await kb.list_articles(rt, locale=locale)
    return ArticlesOut(articles=[Article(**r) for r in rows])


@admin_router.post("/articles", status_code=201, response_model=ArticleOut, responses=ERRORS)
async def create_article(body: ArticleIn, auth: AdminDep, rt: RuntimeDep) -> ArticleOut:
    """A new article (admins). Its slug comes from the title (transliterated) unless given;
    409 slug_taken if a given slug is used in that locale."""
    out = await kb.create_article(
        rt,
        auth.operator,
        title=body.title,
        body=body.body,
        published=body.published,
        locale=body.locale,
        category=body.category,
        slug=body.slug,
    )
    return ArticleOut(article=Article(**out))


@admin_router.get("/articles/{article_id}", response_model=ArticleOut, responses=ERRORS)
async def get_article(article_id: RowId, auth: OperatorDep, rt: RuntimeDep) -> ArticleOut:
    return ArticleOut(article=Article(**await kb.get_article(rt, article_id, published_only=False)))


@admin_router.patch("/articles/{article_id}", response_model=ArticleOut, responses=ERRORS)
@admin_router.put("/articles/{article_id}", response_model=ArticleOut, responses=ERRORS)
async def update_article(
    article_id: RowId, body: ArticlePatch, auth: AdminDep, rt: RuntimeDep
) -> ArticleOut:
    """Change the fields given (admins); publish or unpublish with `published`."""
    changes = body.model_dump(exclude_unset=True)
    if changes.get("published", True) is None or changes.get("title", "") is None:
        raise Invalid("null is not a value here", "invalid_null")
    changes = {k: v for k, v in changes.items() if v is not None or k == "category"}
    return ArticleOut(article=Article(**await kb.update_article(rt, article_id, changes)))


@admin_router.delete("/articles/{article_id}", response_model=s.Ok, responses=ERRORS)
async def delete_article(article_id: RowId, auth: AdminDep, rt: RuntimeDep) -> s.Ok:
    await kb.delete_article(rt, article_id)
    return s.Ok()


@admin_router.post("/preview", response_model=PreviewOut, responses=ERRORS)
async def preview(body: PreviewIn, auth: OperatorDep, rt: RuntimeDep) -> PreviewOut:
    """The Markdown as the help center will show it (rendered and cleaned here)."""
    return PreviewOut(html=kb.preview(body.body))


class MediaOut(BaseModel):
    url: str
    markdown: str


@admin_router.post(
    "/upload",
    response_model=MediaOut,
    responses={**ERRORS, 415: {"model": s.ErrorOut}},
    openapi_extra={"requestBody": {"content": {"application/octet-stream": {}}, "required": True}},
)
async def upload_image(request: Request, auth: AdminDep, rt: RuntimeDep) -> MediaOut:
    """An image for articles (request body = its bytes; PNG, JPEG, GIF or WebP, at most
    5 MiB, re-encoded without metadata). Returns its /help/media/ URL and the Markdown."""
    url = await kb.save_media(rt, await request.body())
    return MediaOut(url=url, markdown=f"![]({url})")


@admin_router.get("/search", response_model=SearchOut, responses=ERRORS)
async def operator_search(
    auth: OperatorDep, rt: RuntimeDep, q: SearchQ = "", locale: LocaleQ = None
) -> SearchOut:
    """Published articles for the composer's "insert a link" (as the widget finds them)."""
    return _found(await kb.search(rt, q, locale))


@admin_router.get("/stats", response_model=StatsOut, responses=ERRORS)
async def stats(
    auth: OperatorDep, rt: RuntimeDep, days: Annotated[int, Query(ge=1, le=366)] = 30
) -> StatsOut:
    """Per article: questions it answered (helped), did not, times suggested with a question
    that was sent; and the questions that found nothing, most frequent first."""
    out = await kb.stats(rt, utcnow() - timedelta(days=days))
    return StatsOut(days=days, **out)


# ---------------------------------------------------------------- the widget

_search_bucket = TokenBucket(120, 30)  # per visitor: typing with a debounce stays well under
_feedback_bucket = TokenBucket(30, 10)


@visitor_router.get("/search", response_model=SearchOut, responses=ERRORS)
async def visitor_search(
    visitor: VisitorDep, rt: RuntimeDep, q: SearchQ = "", locale: LocaleQ = None
) -> SearchOut:
    """Published articles matching the question, best first, at most 5 (q: 2-200
    characters, else 422). Words match by their stems: "оплата заказов" finds "Как
    оплатить заказ картой"."""
    _search_bucket.check(visitor.id, "too many searches, slow down")
    return _found(await kb.search(rt, q, locale))


@visitor_router.get("/articles/{article_id}", response_model=VisitorArticleOut, responses=ERRORS)
async def visitor_article(
    article_id: RowId, visitor: VisitorDep, rt: RuntimeDep
) -> VisitorArticleOut:
    """A published article's HTML, cleaned on the server (drafts: 404)."""
    a = await kb.get_article(rt, article_id, published_only=True)
    return VisitorArticleOut(article=VisitorArticle(**a))


@visitor_router.post("/feedback", response_model=s.Ok, responses=ERRORS)
async def feedback(body: FeedbackIn, visitor: VisitorDep, rt: RuntimeDep) -> s.Ok:
    """ "Это помогло" / "Нет, нужен оператор" (article_id + helpful), or, with ticketId
    once the question was sent, what had been suggested: the operator sees it as a note."""
    _feedback_bucket.check(visitor.id, "too many answers, slow down")
    await kb.record_feedback(
        rt,
        visitor,
        query=body.query,
        shown=body.shown,
        article_id=body.article_id,
        helpful=body.helpful,
        ticket=body.ticketId,
    )
    return s.Ok()
