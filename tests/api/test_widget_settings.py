"""The widget's settings, saved in the dashboard and applied without a restart (issue 20)."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from tests.support.clients import OperatorClient, VisitorClient
from tests.support.server import ADMIN_EMAIL, ADMIN_PASSWORD, ServerProcess

PATH = "/api/admin/settings/widget"
KEYS = {
    "title",
    "greeting",
    "color",
    "position",
    "allowed_origins",
    "away_message",
    "business_hours",
    "business_timezone",
}


def _agent(admin: OperatorClient, server: ServerProcess) -> OperatorClient:
    email, password = f"{uuid.uuid4().hex[:8]}@trust.store", "agent-password-1"
    r = admin.post(
        "/api/admin/operators",
        json={"email": email, "name": "Ольга", "password": password, "role": "agent"},
    )
    assert r.status_code == 201, r.text
    return OperatorClient(server.url, email, password)


def _get(op: OperatorClient) -> dict[str, Any]:
    r = op.http.get(PATH)
    assert r.status_code == 200, r.text
    out: dict[str, Any] = r.json()["settings"]
    return out


def test_defaults_have_the_contract_shape(operator: OperatorClient) -> None:
    got = _get(operator)
    assert set(got) == KEYS
    assert got["color"].startswith("#") and len(got["color"]) == 7
    assert got["position"] in ("right", "left")
    assert isinstance(got["allowed_origins"], list)
    assert got["greeting"]  # a new shop greets its customers out of the box


def test_a_save_applies_at_once_to_the_widget_and_its_frame(
    server: ServerProcess, operator: OperatorClient
) -> None:
    before = _get(operator)
    r = operator.http.put(
        PATH,
        json={
            "greeting": "Здравствуйте! Trust Store на связи.",
            "allowed_origins": ["https://Shop.Example:8443/", "http://localhost:8080"],
            "color": "#0F766E",
        },
    )
    assert r.status_code == 200, r.text
    saved = r.json()["settings"]
    assert saved["allowed_origins"] == ["http://localhost:8080", "https://shop.example:8443"]
    assert saved["color"] == "#0f766e"
    assert saved["title"] == before["title"]  # a key not sent is kept
    assert _get(operator) == saved
    # The frame may now be embedded by the new sites (no restart).
    csp = httpx.get(f"{server.url}/widget/frame.html").headers["content-security-policy"]
    assert "frame-ancestors 'self' http://localhost:8080 https://shop.example:8443" in csp
    # A new chat starts with the new greeting, as the bot; the widget's status says it too.
    visitor = VisitorClient(server.url)
    visitor.send("Где мой заказ?")
    first = visitor.messages()["messages"][0]
    assert (first["sender_type"], first["message"]) == ("bot", saved["greeting"])
    status = visitor.http.get("/api/support/status").json()
    assert status["greeting"] == saved["greeting"]


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"color": "red"}, "color"),
        ({"color": "#12345"}, "color"),
        ({"allowed_origins": ["shop.example"]}, "allowed_origins"),
        ({"allowed_origins": ["https://shop.example/path"]}, "allowed_origins"),
        ({"allowed_origins": "https://shop.example"}, "allowed_origins"),
        ({"business_hours": "weekdays 9 to 6"}, "business_hours"),
        ({"business_hours": "mon 18:00-09:00"}, "business_hours"),
        ({"business_timezone": "Mars/Olympus"}, "business_timezone"),
        ({"greeting": "x" * 501}, "greeting"),
        ({"position": "top"}, "position"),
        ({"title": 5}, "title"),
        ({"colour": "#ffffff"}, "colour"),
    ],
)
def test_bad_values_are_refused_by_name_and_change_nothing(
    operator: OperatorClient, patch: dict[str, Any], field: str
) -> None:
    before = _get(operator)
    # A valid key beside the bad one is not applied either.
    r = operator.http.put(PATH, json={"title": "Другое имя", **patch})
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["field"] == field and field in error["message"]
    assert _get(operator) == before


def test_only_admins_change_settings(server: ServerProcess, operator: OperatorClient) -> None:
    agent = _agent(operator, server)
    assert agent.http.get(PATH).status_code == 403
    r = agent.http.put(PATH, json={"title": "Взлом"})
    assert r.status_code == 403 and r.json()["error"]["code"] == "admin_only"
    assert httpx.get(f"{server.url}{PATH}").status_code == 401
    no_csrf = httpx.put(
        f"{server.url}{PATH}", json={"title": "Взлом"}, cookies=operator.http.cookies
    )
    assert no_csrf.status_code == 403
    assert _get(operator)["title"] != "Взлом"


def test_an_unallowed_site_is_told_and_shown_to_admins(
    server: ServerProcess, operator: OperatorClient
) -> None:
    stranger = "https://other-shop.example"
    r = httpx.get(f"{server.url}/api/support/site", headers={"Origin": stranger})
    assert r.status_code == 200 and r.json() == {"allowed": False}
    assert r.headers["access-control-allow-origin"] == "*"
    listed = operator.http.get("/api/admin/settings/blocked-origins").json()["origins"]
    assert stranger in [o["origin"] for o in listed]
    # Its own site (no Origin: same-origin GET) and an allowed one are fine.
    assert httpx.get(f"{server.url}/api/support/site").json() == {"allowed": True}
    origins = _get(operator)["allowed_origins"]
    r = operator.http.put(PATH, json={"allowed_origins": [*origins, stranger]})
    assert r.status_code == 200, r.text
    r = httpx.get(f"{server.url}/api/support/site", headers={"Origin": stranger})
    assert r.json() == {"allowed": True}
    listed = operator.http.get("/api/admin/settings/blocked-origins").json()["origins"]
    assert stranger not in [o["origin"] for o in listed]  # allowed: off the notice


def test_settings_survive_a_restart(server: ServerProcess, operator: OperatorClient) -> None:
    r = operator.http.put(PATH, json={"title": "Trust Store", "position": "left"})
    assert r.status_code == 200, r.text
    server.stop()
    server.start()
    again = OperatorClient(server.url, ADMIN_EMAIL, ADMIN_PASSWORD)
    got = _get(again)
    assert (got["title"], got["position"]) == ("Trust Store", "left")
