"""Real servers for browser, scale-out and benchmark runs: uvicorn, Redis and PostgreSQL.

Each runs on a free loopback port with its data in a temporary directory and is stopped by
its owner. Nothing here is a stand-in: these are the same programs production runs.
"""

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from glob import glob
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, *, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout}s")


def manage(*args: str, env: dict[str, str]) -> None:
    subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
    )


class AsgiServer:
    """An ASGI application (the project by default) under uvicorn or daphne on loopback.

    Ready when `health_path` answers 200, or, without one, when the port accepts connections.
    """

    def __init__(
        self,
        env: dict[str, str],
        *,
        log: Path,
        server: str = "uvicorn",
        app: str = "supportdesk.asgi:application",
        health_path: str | None = "/healthz",
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = env
        self.log = log
        self.server = server
        self.app = app
        self.health_path = health_path
        self.process: subprocess.Popen[bytes] | None = None

    def command(self) -> list[str]:
        if self.server == "daphne":
            return [
                sys.executable,
                "-m",
                "daphne",
                "-b",
                "127.0.0.1",
                "-p",
                str(self.port),
                self.app,
            ]
        return [
            sys.executable,
            "-m",
            "uvicorn",
            self.app,
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--log-level",
            "warning",
        ]

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                self.command(), cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT
            )
        if self.health_path is None:
            wait_for_port(self.port)
            return
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited; see {self.log}")
            try:
                with urllib.request.urlopen(self.url + self.health_path, timeout=1) as response:
                    if response.status == 200:
                        return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"server did not start; see {self.log}")

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None


def embedded_env(workdir: Path, **extra: str) -> dict[str, str]:
    """Environment for the embedded profile with its own SQLite file."""
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "supportdesk.settings.local",
        "DEBUG": "false",
        "SQLITE_PATH": str(workdir / "db.sqlite3"),
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "CHAT_ALLOWED_ORIGINS": "*",
        "LOG_LEVEL": "WARNING",
        **extra,
    }


class RedisServer:
    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="sd-redis-"))
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed (scripts/system_deps.sh)")
        subprocess.run(
            [
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--daemonize",
                "yes",
                "--dir",
                str(self.dir),
                "--pidfile",
                str(self.dir / "redis.pid"),
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        wait_for_port(self.port)

    def stop(self) -> None:
        pidfile = self.dir / "redis.pid"
        if pidfile.exists():
            subprocess.run(["kill", pidfile.read_text().strip()], check=False)
            time.sleep(0.2)
        shutil.rmtree(self.dir, ignore_errors=True)


class PostgresServer:
    """A throw-away cluster; PostgreSQL refuses root, so it runs as the `postgres` user."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="sd-pg-"))
        self.dir.chmod(0o755)
        self.data = self.dir / "data"
        self.port = free_port()
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/supportdesk"

    def _run(self, *args: str) -> None:
        prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        subprocess.run([*prefix, *args], check=True, stdout=subprocess.DEVNULL)

    def start(self) -> None:
        bins = sorted(glob("/usr/lib/postgresql/*/bin"))
        if not bins:
            raise RuntimeError("PostgreSQL is not installed (scripts/system_deps.sh)")
        bin_dir = Path(bins[-1])
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres")
        self._run(
            str(bin_dir / "initdb"),
            "-D",
            str(self.data),
            "-A",
            "trust",
            "--no-sync",
            "-U",
            "postgres",
        )
        self._run(
            str(bin_dir / "pg_ctl"),
            "-D",
            str(self.data),
            "-w",
            "-l",
            str(self.dir / "pg.log"),
            "-o",
            f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.dir} -c fsync=off "
            "-c max_connections=200",
            "start",
        )
        self._run(
            str(bin_dir / "createdb"),
            "-h",
            "127.0.0.1",
            "-p",
            str(self.port),
            "-U",
            "postgres",
            "supportdesk",
        )
        self.bin_dir = bin_dir

    def stop(self) -> None:
        if self.data.exists():
            self._run(str(self.bin_dir / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop")
        shutil.rmtree(self.dir, ignore_errors=True)
