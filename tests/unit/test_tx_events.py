"""Tx.emit: one wake-up per change; a ticket change for everyone covers one for a single
operator (every dashboard reads the ticket again for each, so fewer is cheaper)."""

from __future__ import annotations

from typing import Any

from trustdesk.config import Settings
from trustdesk.store.db import Tx


def _tx() -> Tx:
    return Tx(session=None, dialect="sqlite", settings=Settings())  # type: ignore[arg-type]


def changed(ref: str, only: int | None = None) -> dict[str, Any]:
    ev: dict[str, Any] = {"type": "ticket_changed", "ticket_ref": ref}
    if only is not None:
        ev["only"] = only
    return ev


def test_identical_events_are_sent_once() -> None:
    tx = _tx()
    msg = {"type": "message", "message": {"id": 1}}
    tx.emit("operators", msg)
    tx.emit("operators", dict(msg))
    tx.emit("ticket:a", msg)
    assert tx.events == [("operators", msg), ("ticket:a", msg)]


def test_a_change_for_everyone_covers_one_for_an_operator() -> None:
    tx = _tx()
    tx.emit("operators", changed("a"))
    tx.emit("operators", changed("a", only=7))  # covered
    tx.emit("operators", changed("b", only=7))  # another ticket: kept
    assert tx.events == [("operators", changed("a")), ("operators", changed("b", only=7))]


def test_a_later_change_for_everyone_replaces_earlier_ones_for_operators() -> None:
    tx = _tx()
    tx.emit("operators", changed("a", only=7))
    tx.emit("operators", changed("a", only=8))
    tx.emit("operators", {"type": "read", "ticketId": "T"})
    tx.emit("operators", changed("a"))
    assert tx.events == [
        ("operators", {"type": "read", "ticketId": "T"}),
        ("operators", changed("a")),
    ]
