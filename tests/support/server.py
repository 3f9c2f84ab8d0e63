"""Run the real TrustDesk server as a child process, as a user would with `trustdesk run`."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx

from tests.support.services import free_port, wait_until

ADMIN_EMAIL = "artem@trust.store"
ADMIN_PASSWORD = "correct horse battery staple"  # noqa: S105 - test fixture
ADMIN_NAME = "Артём"


class ServerProcess:
    def __init__(
        self,
        data_dir: Path,
        database_url: str | None = None,
        redis_url: str | None = None,
        port: int | None = None,
        extra_env: dict[str, str] | None = None,
    ) -> None:
        self.data_dir = data_dir
        self.port = port or free_port()
        self.env = dict(os.environ)
        self.env.update(
            {
                "TRUSTDESK_DATA_DIR": str(data_dir),
                "TRUSTDESK_PUBLIC_URL": f"http://127.0.0.1:{self.port}",
                "TRUSTDESK_ALLOWED_ORIGINS": f"http://localhost:{self.port}",
                "TRUSTDESK_CREATE_FIRST_OPERATOR": "false",
                "TRUSTDESK_SECRET_KEY": "test-secret-key-for-this-run-only",
                # Many visitors come from 127.0.0.1 in tests; rate-limit tests lower these.
                "TRUSTDESK_SESSION_CREATE_PER_MINUTE_PER_IP": "100000",
                "TRUSTDESK_IP_RATE_PER_MINUTE": "100000",
                "TRUSTDESK_IP_RATE_BURST": "100000",
                "TRUSTDESK_WS_PER_IP": "100000",
                "TRUSTDESK_TICKETS_PER_IP_PER_HOUR": "100000",
                "TRUSTDESK_TICKETS_PER_VISITOR_PER_HOUR": "100000",
                "TRUSTDESK_LOGIN_ATTEMPTS_PER_15MIN": "1000",
                # Tests receive browser push on a local endpoint (no outside network).
                "TRUSTDESK_PUSH_ALLOW_LOCAL_ENDPOINTS": "true",
            }
        )
        for key in ("TRUSTDESK_DATABASE_URL", "TRUSTDESK_REDIS_URL"):
            self.env.pop(key, None)
        if database_url:
            self.env["TRUSTDESK_DATABASE_URL"] = database_url
        if redis_url:
            self.env["TRUSTDESK_REDIS_URL"] = redis_url
        self.env.update(extra_env or {})
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = data_dir / f"server-{self.port}.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def cli(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "trustdesk", *args],
            env=self.env,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=120,
        )

    def create_operator(
        self,
        email: str,
        name: str,
        password: str,
        role: str = "admin",
        gender: str | None = None,
    ) -> None:
        """`gender` for the notices about them; the spec's Артём (ADMIN_NAME) is male."""
        if gender is None and name == ADMIN_NAME:
            gender = "male"
        extra = ["--gender", gender] if gender else []
        out = self.cli(
            "create-operator",
            "--email",
            email,
            "--name",
            name,
            "--role",
            role,
            *extra,
            "--password-stdin",
            stdin=password + "\n",
        )
        assert out.returncode == 0, out.stderr

    def start(self, workers: int = 1) -> ServerProcess:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        cmd = [
            sys.executable,
            "-m",
            "trustdesk",
            "run",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
        ]
        if workers > 1:
            cmd += ["--workers", str(workers)]
        self.proc = subprocess.Popen(
            cmd, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        wait_until(self.healthy, 60, f"server on port {self.port} (log: {self.log_path})")
        return self

    def healthy(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise RuntimeError(f"server exited: {self.log_path.read_text()[-3000:]}")
        try:
            return httpx.get(self.url + "/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        self.proc = None

    def kill(self) -> None:
        """kill -9, as a crash would."""
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)
        self.proc = None
