"""The serving process loads only what every installation needs (issue 24, idle memory).

Libraries that only some shops use, or that only a rare action needs, are imported on first
use. Each costs megabytes of resident memory for the life of the process if it is imported
at start (figures in docs/benchmarks.md, "Idle memory"). This test starts the app as
`trustdesk run` does, in a fresh interpreter, and lists what got imported.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

# What a default installation (SQLite, no Redis, no bot, no webhooks) must not load at start.
LAZY = [
    "alembic",  # migrations run in a forked child
    "httpx",  # webhooks and the order hook; pulls rich, pygments, click's CLI helpers
    "PIL",  # images are decoded in worker processes
    "markdown_it",  # help-center articles are rendered when written
    "nh3",
    "pyotp",  # two-factor login
    "segno",
    "cryptography",  # TOTP secrets and VAPID keys
    "py_vapid",
    "pywebpush",
    "telegram",
    "redis",
]

SCRIPT = """
import asyncio, json, sys
from trustdesk.cli import _migrate_in_child
from trustdesk.config import Settings
import trustdesk.app

settings = Settings()
_migrate_in_child(settings)
app = trustdesk.app.create_app(settings)

async def main():
    async with app.router.lifespan_context(app):
        await asyncio.sleep(0)

asyncio.run(main())
lazy = json.loads(sys.argv[1])
print(json.dumps(sorted(m for m in lazy if m in sys.modules)))
"""


def test_serving_process_loads_no_optional_library(tmp_path: Path) -> None:
    env = {"TRUSTDESK_DATA_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"}
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT, json.dumps(LAZY)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []
    assert (tmp_path / "trustdesk.db").exists() or any(tmp_path.glob("*.db"))
