"""The processes under test: the bare relay, and TrustDesk on SQLite or PostgreSQL + Redis.

TrustDesk runs exactly as the tests run it (tests/support/server.py: `python -m trustdesk run`
as a child process, loopback only), with the per-visitor send rate lifted for load.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil

from tests.support.server import ADMIN_EMAIL, ADMIN_NAME, ADMIN_PASSWORD, ServerProcess
from tests.support.services import Postgres, Redis, free_port, port_open, wait_until

ROOT = Path(__file__).resolve().parent.parent

LOAD_ENV = {
    "TRUSTDESK_VISITOR_RATE_PER_MINUTE": "1000000",
    "TRUSTDESK_VISITOR_RATE_BURST": "1000000",
    "TRUSTDESK_IP_RATE_PER_MINUTE": "100000000",
    "TRUSTDESK_IP_RATE_BURST": "100000000",
    "TRUSTDESK_SESSION_CREATE_PER_MINUTE_PER_IP": "100000000",
    "TRUSTDESK_WS_PER_IP": "100000000",
    "TRUSTDESK_TICKETS_PER_IP_PER_HOUR": "100000000",
    "TRUSTDESK_TICKETS_PER_VISITOR_PER_HOUR": "100000000",
}


def raise_nofile(want: int = 65536) -> int:
    """Raise RLIMIT_NOFILE (children inherit it); returns the soft limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    for new_hard in (max(hard, want), hard):
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (min(want, new_hard), new_hard))
            break
        except (ValueError, OSError):
            continue
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


class CpuMeter:
    """CPU seconds used by some processes and their children (e.g. postgres backends)."""

    def __init__(self, pids: list[int]) -> None:
        self.roots = [psutil.Process(p) for p in pids if psutil.pid_exists(p)]

    def cpu_seconds(self) -> float:
        total = 0.0
        seen: set[int] = set()
        for root in self.roots:
            try:
                procs = [root, *root.children(recursive=True)]
            except psutil.Error:
                continue
            for p in procs:
                if p.pid in seen:
                    continue
                seen.add(p.pid)
                try:
                    t = p.cpu_times()
                    total += t.user + t.system
                except psutil.Error:
                    pass
        return total


def rss(pid: int) -> int:
    return int(psutil.Process(pid).memory_info().rss)


class RelayProcess:
    """bench/relay.py: the bare relay, or with `store` (sqlite:PATH, postgresql://...) the
    durable relay that commits each frame before forwarding it."""

    name = "relay"

    def __init__(self, log_dir: Path, store: str | None = None) -> None:
        self.store = store
        self.port = free_port()
        self.log_path = log_dir / f"relay-{self.port}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self) -> RelayProcess:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bench.relay",
                "--port",
                str(self.port),
                *(["--store", self.store] if self.store else []),
            ],
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        wait_until(lambda: port_open(self.port), 30, "relay port")
        return self

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        self.proc = None


class BenchServer(ServerProcess):
    """ServerProcess, optionally started under cProfile (bench/profiled_server.py)."""

    def __init__(self, *args: object, cprofile_out: Path | None = None, **kw: object) -> None:
        super().__init__(*args, **kw)  # type: ignore[arg-type]
        self.cprofile_out = cprofile_out

    def start(self, workers: int = 1) -> BenchServer:
        if self.cprofile_out is None:
            super().start(workers)
            return self
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        env = dict(self.env, BENCH_CPROFILE_OUT=str(self.cprofile_out))
        cmd = [
            sys.executable,
            "-m",
            "bench.profiled_server",
            "run",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
        ]
        self.proc = subprocess.Popen(
            cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        wait_until(self.healthy, 60, f"server on port {self.port} (log: {self.log_path})")
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid


class TrustDeskStack:
    """One TrustDesk process plus its backing services ("sqlite" or "pg": PostgreSQL + Redis)."""

    def __init__(
        self,
        backend: str,
        root: Path,
        cprofile_out: Path | None = None,
        sqlcount_out: Path | None = None,
        workers: int = 1,
        pg: Postgres | None = None,
    ) -> None:
        """`pg`: a running cluster shared by the run (a database of its own is created on
        it, and the cluster is left running on stop()); without it "pg" starts its own."""
        self.backend = backend
        self.workers = workers
        self.sqlcount_out = sqlcount_out
        self.root = root
        self.pg: Postgres | None = None
        self.own_pg = pg is None
        self.redis: Redis | None = None
        db_url = redis_url = None
        if backend == "pg":
            self.pg = pg or Postgres(root / "pg")
            if self.own_pg:
                self.pg.start()
            db_url = self.pg.create_database(f"trustdesk_bench_{int(time.time() * 1000)}")
            self.redis = Redis(root / "redis")
            self.redis.start()
            redis_url = self.redis.url
        env = dict(LOAD_ENV)
        if sqlcount_out is not None:  # bench/sqlcount/sitecustomize.py counts statements
            env["BENCH_SQLCOUNT_OUT"] = str(sqlcount_out)
            env["PYTHONPATH"] = os.pathsep.join(
                [str(ROOT / "bench" / "sqlcount"), *filter(None, [os.environ.get("PYTHONPATH")])]
            )
        self.server = BenchServer(
            root / "data",
            database_url=db_url,
            redis_url=redis_url,
            extra_env=env,
            cprofile_out=cprofile_out,
        )

    def sql_counts(self) -> dict[str, int]:
        """Statements executed so far (by text), when started with sqlcount_out."""
        if self.sqlcount_out is None:
            return {}
        try:
            return dict(json.loads(self.sqlcount_out.read_text()))
        except (OSError, ValueError):
            return {}

    def start(self, create_admin: bool = True) -> TrustDeskStack:
        try:
            self.server.start(self.workers)
            if create_admin:
                self.server.create_operator(ADMIN_EMAIL, ADMIN_NAME, ADMIN_PASSWORD, "admin")
        except BaseException:
            self.stop()
            raise
        return self

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def ws_url(self) -> str:
        return self.server.ws_url

    @property
    def pid(self) -> int:
        return self.server.pid

    def service_pids(self) -> list[int]:
        """PostgreSQL postmaster and redis-server, for CPU accounting."""
        pids = []
        if self.pg is not None:
            pidfile = self.pg.datadir / "postmaster.pid"
            if pidfile.exists():
                pids.append(int(pidfile.read_text().split()[0]))
        if self.redis is not None and self.redis.proc is not None:
            pids.append(self.redis.proc.pid)
        return pids

    def stop(self) -> None:
        self.server.stop()
        if self.redis is not None:
            self.redis.stop()
        if self.pg is not None and self.own_pg:
            self.pg.stop("immediate")
            if self.pg.root != self.root / "pg":  # a private directory made for root
                shutil.rmtree(self.pg.root, ignore_errors=True)


def versions() -> dict[str, str]:
    """What ran: for the environment table."""
    import platform
    import sqlite3
    from importlib.metadata import PackageNotFoundError, version

    out: dict[str, str] = {"python": platform.python_version(), "sqlite": sqlite3.sqlite_version}
    for pkg in (
        "fastapi",
        "uvicorn",
        "websockets",
        "uvloop",
        "httptools",
        "sqlalchemy",
        "aiosqlite",
        "asyncpg",
        "redis",
        "httpx",
        "psutil",
    ):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = "-"
    for name, cmd in (
        ("postgresql", ["/usr/lib/postgresql/15/bin/postgres", "--version"]),
        ("redis-server", ["redis-server", "--version"]),
    ):
        try:
            out[name] = subprocess.run(cmd, capture_output=True, text=True, timeout=10).stdout
            out[name] = out[name].strip().split("\n")[0]
        except OSError:
            out[name] = "-"
    return out


def machine() -> dict[str, str]:
    import platform

    model = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = psutil.virtual_memory().total
    return {
        "cpu": model,
        "cores": str(psutil.cpu_count(logical=True)),
        "memory": f"{mem / 2**30:.1f} GiB",
        "kernel": platform.release(),
        "os": platform.platform(terse=True),
    }
