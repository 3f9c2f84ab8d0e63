"""The message text rules, for any text at all, over HTTP and over the socket.

Rule (docs/protocol.md, the contract): control characters other than tab and newline are
removed (NUL can never be stored), the text is trimmed, and then it must have 1..4000
characters (code points). Everything else is kept exactly: emoji and ZWJ sequences, RTL
text and bidi controls, zero-width characters, combining marks. What the API answers,
what the other side receives and what is stored are the same string.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator

import httpx
import pytest
import websockets
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tests.security.conftest import start_server
from tests.support.clients import VisitorClient
from tests.support.inspect_db import query
from tests.support.server import ServerProcess

MAX = 4000
_CONTROL = {c: None for c in range(32) if c not in (9, 10)} | {127: None}

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    srv = start_server(
        tmp_path_factory,
        "text-rules",
        extra_env={
            "TRUSTDESK_VISITOR_RATE_BURST": "100000",
            "TRUSTDESK_VISITOR_RATE_PER_MINUTE": "100000",
        },
    )
    yield srv
    srv.stop()


def expected(text: str) -> str | None:
    """What must be stored, or None when the text must be refused."""
    clean = text.translate(_CONTROL).strip()
    return clean if 1 <= len(clean) <= MAX else None


ANY_TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=60)
SPECIAL = st.sampled_from(
    [
        "😊",
        "👨‍💼",  # ZWJ sequence: 3 code points
        "🏳️‍🌈",
        "مرحبا بالعالم",
        "\u202eevil\u202c",  # bidi override
        "\u200b\u200c\u200d\u2060\ufeff",  # zero-width
        "e\u0301",  # combining mark
        "\x00",
        "\t",
        "\n",
        "\r\n",
        "\x1b[31m",
        " ",
        "\u3000",
        "Привет",
    ]
)
TEXT = st.one_of(
    ANY_TEXT,
    st.lists(st.one_of(SPECIAL, ANY_TEXT), max_size=8).map("".join),
    # Around the limit, with padding that is or is not trimmed away.
    st.tuples(
        st.sampled_from(["a", "я", "😊", "\u200b", "ع"]),
        st.integers(MAX - 2, MAX + 2),
        st.sampled_from(["", " ", "\n\t ", "\x00", "x"]),
    ).map(lambda t: t[2] + t[0] * t[1] + t[2]),
)


@settings(
    max_examples=60,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)
@given(text=TEXT)
@example(text="я" * MAX)
@example(text="я" * (MAX + 1))
@example(text="  " + "😊" * MAX + "\n")
@example(text="\x00")
@example(text="a\x00b")
@example(text="\u200b")  # zero-width space is not whitespace for str.strip: kept
def test_http_send_follows_the_text_rules(server: ServerProcess, text: str) -> None:
    v = _visitor(server)
    r = v.http.post(
        "/api/support/send-message", json={"message": text, "client_msg_id": uuid.uuid4().hex}
    )
    want = expected(text)
    if want is None:
        assert r.status_code == 422, (r.status_code, r.text)
        code = r.json()["error"]["code"]
        assert code in ("empty_message", "message_too_long", "invalid"), code
        return
    assert r.status_code == 200, (r.status_code, r.text[:300])
    got = r.json()["message"]
    assert got["message"] == want
    v.ticket_id = r.json()["ticketId"]
    assert v.messages(after=got["id"] - 1)["messages"][0]["message"] == want
    assert query(server, "SELECT message FROM support_messages WHERE id = $1", got["id"]) == [
        (want,)
    ]


_visitors: dict[int, VisitorClient] = {}


def _visitor(server: ServerProcess) -> VisitorClient:
    if server.port not in _visitors:
        _visitors[server.port] = VisitorClient(server.url)
    return _visitors[server.port]


def test_socket_send_follows_the_text_rules(server: ServerProcess) -> None:
    v = VisitorClient(server.url)
    cases = [
        "я" * MAX,
        "я" * (MAX + 1),
        " \n" + "😊" * MAX + " ",
        "\x00",
        "a\x00b",
        "مرحبا \u202eevil\u202c 👨‍💼",
        "\u200b",
        "\x1b[31mred",
        "   ",
    ]

    async def go() -> list[dict[str, object]]:
        conn = await websockets.connect(server.ws_url + "/ws/visitor", max_size=2**22)
        await conn.send(
            json.dumps({"type": "hello", "token": v.token, "ticketId": None, "since": 0})
        )
        answers = []
        for i, text in enumerate(cases):
            await conn.send(json.dumps({"type": "send", "message": text, "client_msg_id": f"t{i}"}))
            while True:
                f = json.loads(await asyncio.wait_for(conn.recv(), 15))
                if f["type"] in ("ack", "error") and f.get("client_msg_id") == f"t{i}":
                    answers.append(f)
                    break
        await conn.close()
        return answers

    answers = asyncio.run(asyncio.wait_for(go(), 120))
    for text, f in zip(cases, answers, strict=True):
        want = expected(text)
        if want is None:
            assert f["type"] == "error", (text[:20], f)
            assert f["code"] in ("empty_message", "message_too_long"), f
        else:
            assert f["type"] == "ack", (text[:20], f)
            assert f["message"]["message"] == want  # type: ignore[index]


def test_lone_surrogates_are_refused_not_crashing(server: ServerProcess) -> None:
    """JSON can spell a lone UTF-16 surrogate (\\ud800) that no UTF-8 store can hold."""
    v = VisitorClient(server.url)
    body = b'{"message": "half \\ud800 a pair", "client_msg_id": "s1"}'
    r = v.http.post(
        "/api/support/send-message", content=body, headers={"Content-Type": "application/json"}
    )
    assert 400 <= r.status_code < 500, (r.status_code, r.text)
    ok = v.http.post("/api/support/send-message", json={"message": "всё в порядке"})
    assert ok.status_code == 200

    async def go() -> list[dict[str, object]]:
        conn = await websockets.connect(server.ws_url + "/ws/visitor")
        await conn.send(
            json.dumps({"type": "hello", "token": v.token, "ticketId": None, "since": 0})
        )
        got: list[dict[str, object]] = []
        # Either case of hex digit spells one (the server looks for the escape first).
        for cid, half in (("s2", "\\udfff"), ("s3", "\\uDBFF")):
            await conn.send(
                f'{{"type": "send", "message": "half {half} pair", "client_msg_id": "{cid}"}}'
            )
            while True:
                f = json.loads(await asyncio.wait_for(conn.recv(), 15))
                if f["type"] in ("ack", "error"):
                    got.append(f)
                    break
        # The socket is still usable afterwards.
        await conn.send('{"type": "ping"}')
        while json.loads(await asyncio.wait_for(conn.recv(), 15))["type"] != "pong":
            pass
        await conn.close()
        return got

    got = asyncio.run(asyncio.wait_for(go(), 60))
    assert [f["type"] for f in got] == ["error", "error"], got
    assert httpx.get(server.url + "/healthz").status_code == 200
    n = query(server, "SELECT COUNT(*) FROM support_messages WHERE message LIKE 'half %'")
    assert n == [(0,)]
