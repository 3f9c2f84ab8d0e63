"""The widget's files under hashed names (api/assets.py), with the shared core beside them.

The widget imports `../shared/x.js` (web/shared/, served at /shared/) and loads a feature's
stylesheet with `loadStyle("./x.css", import.meta.url)`: both must be spelled with hashed
names in what is served, and a change in a shared file must change the importing module's
name too (else a year-long cache keeps the old import)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from trustdesk.api.assets import HashedFiles

WEB = Path(__file__).resolve().parents[2] / "src" / "trustdesk" / "web"
HASHED = re.compile(r"^[\w-]+\.[0-9a-f]{10}\.(js|css)$")


def make(tmp_path: Path, shared_dom: str) -> tuple[HashedFiles, HashedFiles]:
    (tmp_path / "shared").mkdir(exist_ok=True)
    (tmp_path / "widget").mkdir(exist_ok=True)
    (tmp_path / "shared" / "dom.js").write_text(shared_dom)
    (tmp_path / "widget" / "chat.js").write_text(
        'import { h } from "../shared/dom.js";\nimport("./lazy.js");\n'
    )
    (tmp_path / "widget" / "lazy.js").write_text(
        'import { loadStyle } from "../shared/dom.js";\nloadStyle("./lazy.css", import.meta.url);\n'
    )
    (tmp_path / "widget" / "lazy.css").write_text(".x { color: red; }\n")
    shared = HashedFiles(tmp_path / "shared")
    return shared, HashedFiles(tmp_path / "widget", shared)


def test_shared_imports_and_feature_styles_are_spelled_hashed(tmp_path: Path) -> None:
    shared, widget = make(tmp_path, "export const h = 1;\n")
    chat = widget.files[widget.hashed["chat.js"]].body.decode()
    assert f'"../shared/{shared.hashed["dom.js"]}"' in chat, chat
    assert f'import("./{widget.hashed["lazy.js"]}")' in chat, chat
    lazy = widget.files[widget.hashed["lazy.js"]].body.decode()
    assert f'loadStyle("./{widget.hashed["lazy.css"]}"' in lazy, lazy
    assert all(HASHED.match(n) for n in [*widget.hashed.values(), *shared.hashed.values()])
    assert widget.files[widget.hashed["lazy.css"]].cache_control.startswith("public")


def test_a_change_in_the_shared_core_renames_its_importers(tmp_path: Path) -> None:
    _, before = make(tmp_path, "export const h = 1;\n")
    _, after = make(tmp_path, "export const h = 2;\n")
    assert before.hashed["chat.js"] != after.hashed["chat.js"]
    assert before.hashed["lazy.js"] != after.hashed["lazy.js"]
    assert before.hashed["lazy.css"] == after.hashed["lazy.css"]


@pytest.mark.parametrize("name", sorted(p.name for p in (WEB / "widget").glob("*.js")))
def test_every_widget_module_refers_only_to_hashed_siblings(name: str) -> None:
    """The real tree: no import or stylesheet of the widget is left unhashed (a typo in a
    name would be served as it is, uncached, or 404)."""
    shared = HashedFiles(WEB / "shared")
    widget = HashedFiles(WEB / "widget", shared)
    if name == "loader.js":
        return  # served at /widget.js, a classic script
    body = widget.files[widget.hashed[name]].body.decode()
    refs = re.findall(r'(?:from|import|loadStyle)\s*\(?\s*"((?:\./|\.\./shared/)[\w.-]+)"', body)
    for ref in refs:
        assert HASHED.match(ref.rsplit("/", 1)[1]), (name, ref)
