"""The deployment files parse (Docker cannot run here: compose.yaml is checked as YAML and
for what the docs promise; Caddy, nginx and systemd check their files when installed)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"


def test_compose_file_describes_the_scaled_out_setup() -> None:
    doc = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    services = doc["services"]
    assert set(services) == {"app", "postgres", "redis", "caddy"}
    app = services["app"]
    assert app["deploy"]["replicas"] >= 2
    assert (ROOT / app["build"]["context"].replace("..", ".") / app["build"]["dockerfile"]).exists()
    env = app["environment"]
    assert env["TRUSTDESK_DATABASE_URL"].startswith("postgresql://")
    assert env["TRUSTDESK_REDIS_URL"] == "redis://redis:6379/0"
    assert env["TRUSTDESK_COOKIE_SECURE"] == "true" and env["TRUSTDESK_LOG_FORMAT"] == "json"
    assert app["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert "./Caddyfile:/etc/caddy/Caddyfile:ro" in services["caddy"]["volumes"]
    assert {"80:80", "443:443"} <= set(services["caddy"]["ports"])
    assert set(doc["volumes"]) >= {"data", "pgdata"}


def test_proxy_and_service_files() -> None:
    caddy = (DEPLOY / "Caddyfile").read_text()
    assert "reverse_proxy" in caddy and "respond /metrics 404" in caddy
    nginx = (DEPLOY / "nginx.conf").read_text()
    assert "proxy_set_header Upgrade $http_upgrade;" in nginx
    unit = (DEPLOY / "trustdesk.service").read_text()
    assert "ExecStart=/opt/trustdesk/.venv/bin/trustdesk run" in unit
    assert "FROM python:3.11-slim" in (ROOT / "Containerfile").read_text()
    if shutil.which("caddy"):
        out = subprocess.run(
            ["caddy", "validate", "--config", str(DEPLOY / "Caddyfile"), "--adapter", "caddyfile"],
            capture_output=True,
            text=True,
            env={"TRUSTDESK_DOMAIN": "support.example.com", "HOME": "/tmp"},
            timeout=60,
        )
        assert out.returncode == 0, out.stderr[-2000:]
