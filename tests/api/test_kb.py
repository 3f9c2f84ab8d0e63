"""The help center over real HTTP, on SQLite and PostgreSQL (tests/api/conftest.py):
articles (admins), the search that understands Russian (the same results in the same order
on both engines: every test below asserts exact lists), the public pages, the widget's
record and the sanitiser against a stored-XSS payload."""

from __future__ import annotations

import itertools
import re
import uuid
from html.parser import HTMLParser
from typing import Any

import httpx
import pytest

from tests.support.clients import OperatorClient, VisitorClient
from tests.support.server import ServerProcess

_n = itertools.count()
XSS = "<img src=x onerror=alert(1)><script>alert(2)</script>[x](javascript:alert(3))"


def _tag() -> str:
    """A made-up word (letters only, so it is one token), unique per test: the module's
    server is shared, so each test searches among its own articles."""
    letters = "бвгдклмнпрст"
    n = next(_n) * 7919 + uuid.uuid4().int % 1000
    word = ""
    while n or len(word) < 4:
        word += letters[n % len(letters)]
        n //= len(letters)
    return "зю" + word + "ка"


def _create(op: OperatorClient, title: str, body: str = "", **kw: Any) -> dict[str, Any]:
    r = op.post(
        "/api/admin/kb/articles",
        {"title": title, "body": body, "published": kw.pop("published", True), **kw},
    )
    assert r.status_code == 201, r.text
    out: dict[str, Any] = r.json()["article"]
    return out


def _search(v: VisitorClient, q: str, **params: str) -> list[dict[str, Any]]:
    r = v.http.get("/api/support/kb/search", params={"q": q, **params})
    assert r.status_code == 200, r.text
    out: list[dict[str, Any]] = r.json()["articles"]
    return out


def _titles(v: VisitorClient, q: str, **params: str) -> list[str]:
    return [a["title"] for a in _search(v, q, **params)]


def _tags(html: str) -> list[tuple[str, list[tuple[str, str | None]]]]:
    """Every tag of the page with its attributes, as a browser's tokenizer reads them."""
    found: list[tuple[str, list[tuple[str, str | None]]]] = []

    class Parser(HTMLParser):
        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            found.append((tag, attrs))

    Parser().feed(html)
    assert found
    return found


def _error(r: httpx.Response, status: int) -> dict[str, Any]:
    assert r.status_code == status, r.text
    err: dict[str, Any] = r.json()["error"]
    return err


def test_create_contract(server: ServerProcess, operator: OperatorClient) -> None:
    tag = _tag()
    r = operator.post(
        "/api/admin/kb/articles",
        {
            "title": f"Как оплатить заказ картой {tag}",
            "body": "Visa, **Мир**.",
            "published": True,
            "locale": "ru",
        },
    )
    assert r.status_code == 201, r.text
    a = r.json()["article"]
    assert {"id", "slug", "title", "published"} <= set(a)
    assert a["published"] is True and a["locale"] == "ru"
    assert a["slug"].startswith("kak-oplatit-zakaz-kartoy-") and re.fullmatch(
        r"[a-z0-9-]+", a["slug"]
    )
    assert "<strong>Мир</strong>" in a["html"]
    # The same title again gets a slug of its own.
    b = _create(operator, f"Как оплатить заказ картой {tag}")
    assert b["slug"] == a["slug"] + "-2"
    # Read, list, change, delete.
    got = operator.http.get(f"/api/admin/kb/articles/{a['id']}").json()["article"]
    assert got["body"] == "Visa, **Мир**."
    listed = operator.http.get("/api/admin/kb/articles").json()["articles"]
    assert a["id"] in [x["id"] for x in listed]
    r = operator.http.patch(
        f"/api/admin/kb/articles/{a['id']}", json={"published": False, "category": "Оплата"}
    )
    assert r.status_code == 200, r.text
    assert r.json()["article"]["published"] is False and r.json()["article"]["category"] == "Оплата"
    r = operator.http.put(f"/api/admin/kb/articles/{a['id']}", json={"title": "Оплата картой"})
    assert r.json()["article"]["title"] == "Оплата картой"
    assert r.json()["article"]["slug"] == a["slug"]  # a link once given keeps working
    assert operator.http.delete(f"/api/admin/kb/articles/{b['id']}").json() == {"ok": True}
    _error(operator.http.get(f"/api/admin/kb/articles/{b['id']}"), 404)
    _error(operator.http.delete(f"/api/admin/kb/articles/{b['id']}"), 404)


def test_admin_writes_need_an_admin_and_csrf(
    server: ServerProcess, operator: OperatorClient
) -> None:
    body = {"title": "Без CSRF", "body": "", "published": True, "locale": "ru"}
    bare = httpx.Client(base_url=server.url, cookies=operator.http.cookies)
    assert _error(bare.post("/api/admin/kb/articles", json=body), 403)["code"] == "csrf_failed"
    anonymous = httpx.Client(base_url=server.url)
    _error(anonymous.post("/api/admin/kb/articles", json=body), 401)
    email = f"agent-kb-{uuid.uuid4().hex[:6]}@trust.store"
    new = {"email": email, "name": "Агент", "password": "agent password one", "role": "agent"}
    assert operator.post("/api/admin/operators", new).status_code == 201
    agent = OperatorClient(server.url, email, "agent password one")
    assert _error(agent.post("/api/admin/kb/articles", body), 403)["code"] == "admin_only"
    assert agent.http.get("/api/admin/kb/articles").status_code == 200  # agents read


@pytest.mark.parametrize(
    "body",
    [
        {"title": "", "body": "x", "published": True, "locale": "ru"},
        {"title": "x" * 201, "body": "x", "published": True, "locale": "ru"},
        {"title": "Статья", "body": "x", "published": True, "locale": "de"},
        {"title": "Статья", "body": "x", "published": "yes", "locale": "ru"},
        {"title": "Статья", "body": "x" * 50_001, "published": True, "locale": "ru"},
        {"title": "Статья", "body": "x", "published": True, "locale": "ru", "slug": "Не так"},
        {"title": "Статья", "body": "x", "published": True, "locale": "ru", "extra": 1},
    ],
)
def test_bad_articles_are_422(
    server: ServerProcess, operator: OperatorClient, body: dict[str, Any]
) -> None:
    _error(operator.post("/api/admin/kb/articles", body), 422)


def test_taken_slug_is_409(server: ServerProcess, operator: OperatorClient) -> None:
    slug = f"vozvrat-{uuid.uuid4().hex[:8]}"
    _create(operator, "Возврат", slug=slug)
    r = operator.post(
        "/api/admin/kb/articles",
        {"title": "Возврат 2", "body": "", "published": True, "locale": "ru", "slug": slug},
    )
    assert _error(r, 409)["code"] == "slug_taken"
    # The other locale may use it; /help/<slug> then picks by ?lang=.
    en = _create(operator, "Returns", "Send it back.", locale="en", slug=slug)
    assert en["slug"] == slug
    assert "<h1>Возврат</h1>" in httpx.get(f"{server.url}/help/{slug}").text
    assert "<h1>Returns</h1>" in httpx.get(f"{server.url}/help/{slug}?lang=en").text


def test_russian_morphology(server: ServerProcess, operator: OperatorClient) -> None:
    tag = _tag()
    pay = _create(operator, f"Как оплатить заказ картой {tag}", "Принимаем Visa и Мир.")
    deliver = _create(operator, f"Доставка {tag}", "Курьером по Москве и почтой по России.")
    _create(operator, f"Оплата заказов наличными {tag}", "Черновик.", published=False)
    _create(operator, f"Возврат товара {tag}", "В течение 14 дней, с чеком.")
    v = VisitorClient(server.url)
    # "оплата заказов" meets "оплатить заказ": stems оплат + заказ; the draft never shows.
    # Best first: all three words; then one word each (title weight 5), the newest first.
    got = _titles(v, f"оплата заказов {tag}")
    assert got == [pay["title"], f"Возврат товара {tag}", deliver["title"]]
    found = _search(v, f"оплата заказов {tag}")[0]
    assert set(found) >= {"id", "slug", "title", "snippet"}
    assert found["id"] == pay["id"] and found["slug"] == pay["slug"]
    assert found["snippet"] == "Принимаем Visa и Мир."
    # "доставку" meets "Доставка"; a body word in another case too ("москва" / "Москве").
    assert _titles(v, f"доставку {tag}")[0] == deliver["title"]
    assert _titles(v, f"москва {tag}")[0] == deliver["title"]
    # Only stopwords: nothing to look for, an empty list (not an error).
    assert _titles(v, "как и в") == []
    # The locale filter: no English article has the tag.
    assert _titles(v, f"оплата {tag}", locale="en") == []


def test_english_and_limits(server: ServerProcess, operator: OperatorClient) -> None:
    tag = "zq" + uuid.uuid4().hex[:8].replace("0", "x")
    titles = [f"Shipping times {tag} {i}" for i in range(7)]
    for i, t in enumerate(titles):
        _create(operator, t, "We ship " * (i + 1), locale="en")
    v = VisitorClient(server.url)
    got = _titles(v, f"{tag} shipped", locale="en")
    # At most 5; more body matches of "ship" weigh more; ties: the newest first.
    assert got == [titles[6], titles[5], titles[4], titles[3], titles[2]]


@pytest.mark.parametrize("q", ["", "a", " б ", "x" * 201])
def test_bad_queries_are_422(server: ServerProcess, q: str) -> None:
    v = VisitorClient(server.url)
    r = v.http.get("/api/support/kb/search", params={"q": q})
    assert _error(r, 422)["code"] == "invalid_query"


def test_search_needs_a_visitor(server: ServerProcess) -> None:
    r = httpx.get(f"{server.url}/api/support/kb/search", params={"q": "доставка"})
    assert _error(r, 401)["code"] == "token_required"
    r = httpx.get(
        f"{server.url}/api/support/kb/search",
        params={"q": "доставка"},
        headers={"Authorization": "Bearer nope"},
    )
    _error(r, 401)


def test_help_pages(server: ServerProcess, operator: OperatorClient) -> None:
    tag = _tag()
    a = _create(
        operator,
        f"Сроки доставки <b>{tag}</b>",
        "Доставляем за **2–5 дней**. [Трекинг](https://track.example/1)",
        category="Доставка & оплата",
    )
    draft = _create(operator, f"Черновик {tag}", "Скоро.", published=False)
    page = httpx.get(f"{server.url}/help/{a['slug']}")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    html = page.text
    assert f"<title>Сроки доставки &lt;b&gt;{tag}&lt;/b&gt;</title>" in html
    assert '<meta name="description" content="Доставляем за 2–5 дней. Трекинг">' in html
    assert f'<link rel="canonical" href="{server.url}/help/{a["slug"]}">' in html
    assert "<strong>2–5 дней</strong>" in html and "Доставка &amp; оплата" in html
    assert 'href="https://track.example/1" rel="noopener noreferrer"' in html
    assert "<script" not in html
    assert "script-src 'self'" in page.headers["content-security-policy"]
    theme = httpx.get(f"{server.url}/help/theme.css")
    assert re.search(r"--td-accent: #[0-9a-fA-F]{6};", theme.text)
    assert httpx.get(f"{server.url}/help/help.css").status_code == 200
    # Drafts and unknown slugs: 404 (an HTML page).
    assert httpx.get(f"{server.url}/help/{draft['slug']}").status_code == 404
    assert httpx.get(f"{server.url}/help/no-such-article-{tag}").status_code == 404
    assert httpx.get(f"{server.url}/help/Bad_Slug!").status_code == 404
    # The list: categories, only published; the search box searches.
    index = httpx.get(f"{server.url}/help").text
    assert a["title"].replace("<", "&lt;").replace(">", "&gt;") in index
    assert draft["title"] not in index and "<h2>Доставка &amp; оплата</h2>" in index
    found = httpx.get(f"{server.url}/help", params={"q": f"доставка {tag}"}).text
    assert f'href="/help/{a["slug"]}"' in found
    assert 'name="q" value="доставка' in found
    short = httpx.get(f"{server.url}/help", params={"q": "д"})
    assert short.status_code == 200 and "от 2 до 200" in short.text
    # Publishing the draft makes its page.
    operator.http.patch(f"/api/admin/kb/articles/{draft['id']}", json={"published": True})
    assert httpx.get(f"{server.url}/help/{draft['slug']}").status_code == 200


def test_stored_xss_is_harmless(server: ServerProcess, operator: OperatorClient) -> None:
    tag = _tag()
    a = _create(operator, f"Опасная статья {tag}", XSS)
    for html in (
        httpx.get(f"{server.url}/help/{a['slug']}").text,
        a["html"],
        operator.post("/api/admin/kb/preview", {"body": XSS}).json()["html"],
    ):
        assert "<script" not in html and "<img src=x" not in html
        tags = _tags(html)
        assert not [a for _, attrs in tags for a, _ in attrs if a.startswith("on")]
        assert "script" not in [t for t, _ in tags]
        urls = [v or "" for _, attrs in tags for a, v in attrs if a in ("href", "src")]
        assert not [u for u in urls if "javascript" in u or u == "x"]
    v = VisitorClient(server.url)
    got = v.http.get(f"/api/support/kb/articles/{a['id']}").json()["article"]
    assert got["html"] == a["html"] and "&lt;script&gt;" in got["html"]
    # Images only from the help center's own files.
    md = "![a](/help/media/a.png) ![b](https://evil.example/b.png) ![c](//evil.example/c.png)"
    out = operator.post("/api/admin/kb/preview", {"body": md}).json()["html"]
    assert 'src="/help/media/a.png"' in out and "evil" not in out


def test_visitor_article_and_drafts(server: ServerProcess, operator: OperatorClient) -> None:
    draft = _create(operator, f"Черновик {_tag()}", "Скоро.", published=False)
    v = VisitorClient(server.url)
    _error(v.http.get(f"/api/support/kb/articles/{draft['id']}"), 404)
    _error(v.http.get("/api/support/kb/articles/999999999"), 404)
    operator.http.patch(f"/api/admin/kb/articles/{draft['id']}", json={"published": True})
    assert v.http.get(f"/api/support/kb/articles/{draft['id']}").status_code == 200


def _stats(op: OperatorClient) -> dict[str, Any]:
    r = op.http.get("/api/admin/kb/stats")
    assert r.status_code == 200, r.text
    out: dict[str, Any] = r.json()
    return out


def _row(stats: dict[str, Any], article_id: int) -> dict[str, Any]:
    return next((a for a in stats["articles"] if a["id"] == article_id), {"helped": 0})


def test_feedback_deflection_and_the_operators_note(
    server: ServerProcess, operator: OperatorClient
) -> None:
    tag = _tag()
    a = _create(operator, f"Доставка {tag}", "За 2–5 дней.")
    b = _create(operator, f"Доставка в Казахстан {tag}", "За 7 дней.")
    before = _row(_stats(operator), a["id"])["helped"]
    # One customer is answered by the article: a deflection, no ticket.
    v1 = VisitorClient(server.url)
    r = v1.http.post(
        "/api/support/kb/feedback",
        json={
            "query": f"доставка {tag}",
            "shown": [a["id"], b["id"]],
            "article_id": a["id"],
            "helpful": True,
        },
    )
    assert r.status_code == 200, r.text
    assert _row(_stats(operator), a["id"])["helped"] == before + 1
    # Another reads it, says no, and asks: the operator sees what was suggested.
    v2 = VisitorClient(server.url)
    feedback = {"query": f"доставка {tag}", "shown": [a["id"], b["id"]], "article_id": b["id"]}
    assert (
        v2.http.post("/api/support/kb/feedback", json={**feedback, "helpful": False}).status_code
        == 200
    )
    sent = v2.send(f"Сколько идёт доставка в Алматы? {tag}")
    r = v2.http.post(
        "/api/support/kb/feedback",
        json={**feedback, "helpful": False, "ticketId": sent["ticketId"]},
    )
    assert r.status_code == 200, r.text
    msgs = operator.open(sent["ticketId"])["messages"]
    notes = [
        m
        for m in msgs
        if m["kind"] == "note" and (m.get("notice") or {}).get("code") == "kb_not_helped"
    ]
    assert len(notes) == 1
    assert notes[0]["message"] == (
        f"📚 Клиент прочитал статью «{b['title']}»: не помогло. "
        f"Предлагались: «{a['title']}», «{b['title']}»"
    )
    assert all(m["kind"] != "note" for m in v2.messages()["messages"])  # private
    stats = _stats(operator)
    assert _row(stats, b["id"])["not_helped"] == 1 and _row(stats, b["id"])["suggested"] == 1
    # Someone else's ticket: 404; an unknown or draft article: 404.
    v3 = VisitorClient(server.url)
    r = v3.http.post("/api/support/kb/feedback", json={**feedback, "ticketId": sent["ticketId"]})
    _error(r, 404)
    draft = _create(operator, f"Черновик {tag}", "", published=False)
    r = v3.http.post("/api/support/kb/feedback", json={"article_id": draft["id"], "helpful": True})
    _error(r, 404)
    _error(v3.http.post("/api/support/kb/feedback", json={"shown": list(range(1, 10))}), 422)


def test_searches_that_found_nothing(server: ServerProcess, operator: OperatorClient) -> None:
    tag = _tag()
    v = VisitorClient(server.url)
    q = f"Подарочная Упаковка {tag}"
    assert _search(v, q) == []
    sent = v.send(q)
    r = v.http.post(
        "/api/support/kb/feedback", json={"query": q, "shown": [], "ticketId": sent["ticketId"]}
    )
    assert r.status_code == 200, r.text
    empty = {x["query"]: x["count"] for x in _stats(operator)["no_results"]}
    assert empty.get(q.lower()) == 1
    # No suggestion: no note in the conversation.
    assert all(m["kind"] != "note" for m in operator.open(sent["ticketId"])["messages"])


def test_operator_search(server: ServerProcess, operator: OperatorClient) -> None:
    tag = _tag()
    a = _create(operator, f"Гарантия {tag}", "Год на всё.")
    r = operator.http.get("/api/admin/kb/search", params={"q": f"гарантии {tag}"})
    assert r.status_code == 200
    assert r.json()["articles"][0]["url"] == f"/help/{a['slug']}"


def _png() -> bytes:
    from io import BytesIO

    from PIL import Image

    out = BytesIO()
    Image.new("RGB", (8, 6), (200, 30, 30)).save(out, "PNG")
    return out.getvalue()


def test_article_images(server: ServerProcess, operator: OperatorClient) -> None:
    r = operator.http.post(
        "/api/admin/kb/upload", content=_png(), headers={"Content-Type": "image/png"}
    )
    assert r.status_code == 200, r.text
    url = r.json()["url"]
    assert re.fullmatch(r"/help/media/[0-9a-f]{64}\.png", url)
    assert r.json()["markdown"] == f"![]({url})"
    img = httpx.get(server.url + url)
    assert img.status_code == 200 and img.headers["content-type"] == "image/png"
    assert img.content.startswith(b"\x89PNG") and "immutable" in img.headers["cache-control"]
    a = _create(operator, f"Фото упаковки {_tag()}", f"Вот так:\n\n![упаковка]({url})")
    assert f'<img src="{url}" alt="упаковка">' in httpx.get(f"{server.url}/help/{a['slug']}").text
    # Not an image, nothing, a PDF: refused; unknown names: 404; agents and visitors: no.
    bad = operator.http.post("/api/admin/kb/upload", content=b"<svg onload=alert(1)>")
    assert _error(bad, 415)["code"] == "unsupported_type"
    _error(operator.http.post("/api/admin/kb/upload", content=b""), 422)
    pdf = operator.http.post("/api/admin/kb/upload", content=b"%PDF-1.4\n%%EOF")
    assert _error(pdf, 422)["code"] == "not_an_image"
    assert httpx.get(f"{server.url}/help/media/{'0' * 64}.png").status_code == 404
    assert httpx.get(f"{server.url}/help/media/..%2F..%2Ftrustdesk.db").status_code == 404
    v = VisitorClient(server.url)
    assert v.http.post("/api/admin/kb/upload", content=_png()).status_code == 401


def test_a_customers_erasure_takes_their_questions(
    server: ServerProcess, operator: OperatorClient
) -> None:
    tag = _tag()
    q = f"Примерка перед покупкой {tag}"
    v = VisitorClient(server.url)
    assert (
        v.http.post("/api/support/kb/feedback", json={"query": q, "shown": []}).status_code == 200
    )
    assert {x["query"] for x in _stats(operator)["no_results"]} >= {q.lower()}
    r = operator.http.delete(f"/api/admin/visitors/{v.visitor_id}")
    assert r.status_code == 200, r.text
    assert q.lower() not in {x["query"] for x in _stats(operator)["no_results"]}
