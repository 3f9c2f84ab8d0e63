"""The public help center: /help (categories, articles, search) and /help/<slug>.

Server-rendered HTML, no script at all (the CSP allows none inline anyway), every value
escaped here; the article's body is the HTML actions/kb.py cleaned when it was saved. The
shop's widget colour comes in /help/theme.css (generated from the settings), the rest of
the look in web/help/help.css. Indexable: a title, a meta description and a canonical URL.
"""

from __future__ import annotations

import re
from html import escape
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from trustdesk.actions import kb
from trustdesk.actions.errors import Invalid, NotFound
from trustdesk.actions.runtime import Runtime

router = APIRouter(include_in_schema=False)
WEB = Path(__file__).resolve().parent.parent / "web" / "help"
_COLOR = re.compile(r"^#[0-9a-fA-F]{6}$")
_HEADERS = {"Cache-Control": "no-cache"}

T: dict[str, dict[str, str]] = {
    "ru": {
        "help": "Помощь",
        "center": "Центр помощи",
        "search": "Поиск по статьям",
        "find": "Найти",
        "found": "Найдено по запросу «{q}»",
        "nothing": "По запросу «{q}» ничего не нашлось. "
        "Попробуйте другие слова или напишите нам в чат.",
        "bad_query": "Запрос должен быть от 2 до 200 символов.",
        "empty": "Статей пока нет.",
        "other": "Разное",
        "updated": "Обновлено",
        "back": "Все статьи",
        "not_found": "Статья не найдена",
        "not_found_text": "Такой статьи нет или она ещё не опубликована.",
        "lang": "English",
        "description": "Ответы на частые вопросы",
    },
    "en": {
        "help": "Help",
        "center": "Help center",
        "search": "Search articles",
        "find": "Search",
        "found": "Results for “{q}”",
        "nothing": "Nothing found for “{q}”. Try other words or ask us in the chat.",
        "bad_query": "A search needs 2 to 200 characters.",
        "empty": "No articles yet.",
        "other": "Other",
        "updated": "Updated",
        "back": "All articles",
        "not_found": "Article not found",
        "not_found_text": "There is no such article, or it is not published yet.",
        "lang": "Русский",
        "description": "Answers to common questions",
    },
}


def _lang(value: str | None) -> str:
    return value if value in kb.LOCALES else "ru"


def _base(rt: Runtime) -> str:
    return rt.settings.public_url.rstrip("/")


def _page(
    rt: Runtime,
    lang: str,
    *,
    title: str,
    description: str,
    canonical: str,
    main: str,
    q: str = "",
) -> str:
    t = T[lang]
    shop = rt.live.current.title.strip()
    brand = f"{shop} · {t['help']}" if shop else t["center"]
    other = "en" if lang == "ru" else "ru"
    home = "/help" + ("" if lang == "ru" else "?lang=en")
    return (
        f'<!doctype html>\n<html lang="{lang}">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{escape(title)}</title>\n"
        f'<meta name="description" content="{escape(description)}">\n'
        f'<link rel="canonical" href="{escape(canonical)}">\n'
        '<link rel="stylesheet" href="/help/help.css">\n'
        '<link rel="stylesheet" href="/help/theme.css">\n'
        "</head>\n<body>\n"
        '<header class="top"><div class="wrap">'
        f'<a class="brand" href="{home}">{escape(brand)}</a>'
        f'<a class="lang" href="/help?lang={other}" hreflang="{other}">{T[lang]["lang"]}</a>'
        "</div>"
        f'<form class="search wrap" method="get" action="/help" role="search">'
        f'<input type="hidden" name="lang" value="{lang}">'
        f'<input type="search" name="q" value="{escape(q)}" maxlength="200" '
        f'placeholder="{t["search"]}" aria-label="{t["search"]}">'
        f'<button type="submit">{t["find"]}</button></form></header>\n'
        f'<main class="wrap">{main}</main>\n</body>\n</html>\n'
    )


def _item(a: dict[str, Any], text: str) -> str:
    return (
        f'<li><a href="{escape(a["url"])}">{escape(a["title"])}</a>'
        + (f"<p>{escape(text)}</p>" if text else "")
        + "</li>"
    )


@router.get("/help")
async def help_index(
    request: Request,
    q: Annotated[str, Query(max_length=1000)] = "",
    lang: Annotated[str | None, Query(max_length=5)] = None,
) -> Response:
    rt: Runtime = request.app.state.runtime
    lg = _lang(lang)
    t = T[lg]
    canonical = f"{_base(rt)}/help" + ("" if lg == "ru" else "?lang=en")
    q = q.strip()
    if q:
        try:
            found = await kb.search(rt, q, lg, limit=20)
        except Invalid:
            main = f'<p class="note">{t["bad_query"]}</p>'
        else:
            if found:
                items = "".join(
                    _item(
                        {**a, "url": f"/help/{a['slug']}" + ("" if lg == "ru" else "?lang=en")},
                        a["snippet"],
                    )
                    for a in found
                )
                main = f'<h1>{escape(t["found"].format(q=q))}</h1><ul class="list">{items}</ul>'
            else:
                main = (
                    f'<h1>{t["center"]}</h1><p class="note">{escape(t["nothing"].format(q=q))}</p>'
                )
        title = f"{q} · {t['center']}"
    else:
        rows = await kb.list_articles(rt, locale=lg, published_only=True)
        groups: dict[str, list[dict[str, Any]]] = {}
        for a in rows:
            groups.setdefault(a["category"] or t["other"], []).append(a)
        sections = "".join(
            f'<section class="category"><h2>{escape(name)}</h2><ul class="list">'
            + "".join(_item(a, a["description"]) for a in items)
            + "</ul></section>"
            for name, items in sorted(groups.items(), key=lambda g: (g[0] == t["other"], g[0]))
        )
        main = f"<h1>{t['center']}</h1>" + (sections or f'<p class="note">{t["empty"]}</p>')
        title = t["center"]
    shop = rt.live.current.title.strip()
    page = _page(
        rt,
        lg,
        title=f"{title} · {shop}" if shop else title,
        description=t["description"],
        canonical=canonical,
        main=main,
        q=q,
    )
    return Response(page, media_type="text/html; charset=utf-8", headers=_HEADERS)


@router.get("/help/theme.css")
async def help_theme(request: Request) -> Response:
    color = request.app.state.runtime.live.current.color
    color = color if _COLOR.match(color) else "#2563eb"
    return Response(f":root {{ --td-accent: {color}; }}\n", media_type="text/css", headers=_HEADERS)


@router.get("/help/help.css")
async def help_css() -> Response:
    return Response((WEB / "help.css").read_bytes(), media_type="text/css", headers=_HEADERS)


@router.get("/help/media/{name}")
async def help_media(name: str, request: Request) -> Response:
    """An article's image (actions/kb.py save_media): named by its content, so cached."""
    try:
        data, mime = await kb.read_media(request.app.state.runtime, name[:80])
    except NotFound:
        return Response("Not Found", status_code=404, media_type="text/plain")
    return Response(
        data,
        media_type=mime,
        headers={
            "Cache-Control": "public, max-age=31536000, immutable",
            "Content-Security-Policy": "default-src 'none'; sandbox",
        },
    )


@router.get("/help/{slug}")
async def help_article(
    slug: str,
    request: Request,
    lang: Annotated[str | None, Query(max_length=5)] = None,
) -> Response:
    rt: Runtime = request.app.state.runtime
    try:
        a = await kb.published_by_slug(rt, slug[:200], lang if lang in kb.LOCALES else None)
    except NotFound:
        lg = _lang(lang)
        t = T[lg]
        page = _page(
            rt,
            lg,
            title=t["not_found"],
            description=t["not_found_text"],
            canonical=f"{_base(rt)}/help",
            main=f'<h1>{t["not_found"]}</h1><p class="note">{t["not_found_text"]}</p>'
            f'<p><a href="/help">{t["back"]}</a></p>',
        )
        return Response(
            page, status_code=404, media_type="text/html; charset=utf-8", headers=_HEADERS
        )
    lg = a["locale"]
    t = T[lg]
    home = "/help" + ("" if lg == "ru" else "?lang=en")
    url = f"/help/{a['slug']}" + (f"?lang={lg}" if a["shared_slug"] and lg != "ru" else "")
    crumbs = f'<a href="{home}">{t["center"]}</a>'
    if a["category"]:
        crumbs += f" › {escape(a['category'])}"
    main = (
        f'<nav class="crumbs">{crumbs}</nav><article class="article">'
        f"<h1>{escape(a['title'])}</h1>"
        f'<div class="body">{a["html"]}</div>'
        f'<p class="meta">{t["updated"]} {escape(a["updated_at"][:10])}</p></article>'
    )
    shop = rt.live.current.title.strip()
    page = _page(
        rt,
        lg,
        title=f"{a['title']} · {shop}" if shop else a["title"],
        description=a["description"] or a["title"],
        canonical=_base(rt) + url,
        main=main,
    )
    return Response(page, media_type="text/html; charset=utf-8", headers=_HEADERS)
