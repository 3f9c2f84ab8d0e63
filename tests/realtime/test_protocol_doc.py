"""docs/protocol.md is rendered from the frame models; it must not drift from them."""

from __future__ import annotations

from pathlib import Path

from trustdesk.realtime.events import render_protocol_md

DOC = Path(__file__).resolve().parents[2] / "docs" / "protocol.md"


def test_protocol_doc_matches_the_models() -> None:
    assert DOC.read_text() == render_protocol_md(), (
        "docs/protocol.md is stale: run `trustdesk protocol-doc > docs/protocol.md`"
    )
