"""The scale-out profile on one machine: every process of docs/deploy.md, on loopback.

`make up` starts PostgreSQL, Redis, two uvicorn processes, a Celery worker and Celery beat, with
nginx in front of the two ASGI processes using deploy/nginx/supportdesk.conf, the file operators
install; `make down` stops exactly what `make up` started. The test suite and the benchmarks
start the same classes (tests/servers.py re-exports them), so a fault test kills the very
process an operator runs, with a real signal.

Standard library only: nothing here imports Django or the project, so the command works with
any Python 3.11 and a test can start servers before Django is configured.

    python scripts/stack.py up [--port 8000] [--asgi-ports 8001,8002]
    python scripts/stack.py status
    python scripts/stack.py down
"""

import argparse
import atexit
import json
import os
import re
import secrets
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, closing, suppress
from dataclasses import asdict, dataclass
from glob import glob
from pathlib import Path
from types import TracebackType
from typing import ClassVar, Literal, Self

ROOT = Path(__file__).resolve().parents[1]
NGINX_SITE = ROOT / "deploy" / "nginx" / "supportdesk.conf"
# One stack per checkout; `make up STACK_STATE=...` (the tests) keeps another one apart.
STATE_FILE = ROOT / ".run" / "stack.json"
LOOPBACK = "127.0.0.1"
DEFAULT_PORT = 8000
DEFAULT_ASGI_PORTS = (8001, 8002)
# The directory the shipped nginx site logs to; a stack run logs to its own.
NGINX_LOG_DIR = "/var/log/nginx/"
# With these two a server would send routing traffic to the real Anthropic API (or wherever
# ANTHROPIC_BASE_URL points): never inherited by a server that a test or benchmark starts.
ANTHROPIC_VARIABLES = ("ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL")
PAGES = (
    ("widget", "/"),
    ("desk", "/desk/"),
    ("reports", "/reports/"),
    ("admin", "/admin/"),
    ("API docs", "/api/docs/"),
)


# --- Environments -------------------------------------------------------------------------


def service_env(base: Mapping[str, str], **overrides: str) -> dict[str, str]:
    """`base` with `overrides` applied, minus ANTHROPIC_API_KEY and ANTHROPIC_BASE_URL unless
    an override sets them: a developer's exported key must not reach a test's server."""
    env = {name: value for name, value in base.items() if name not in ANTHROPIC_VARIABLES}
    env.update(overrides)
    return env


def embedded_env(workdir: Path, **extra: str) -> dict[str, str]:
    """Environment for the embedded profile with its own SQLite file (tests, benchmarks)."""
    return service_env(
        os.environ,
        DJANGO_SETTINGS_MODULE="supportdesk.settings.local",
        DEBUG="false",
        SQLITE_PATH=str(workdir / "db.sqlite3"),
        ALLOWED_HOSTS="127.0.0.1,localhost",
        CHAT_ALLOWED_ORIGINS="*",
        LOG_LEVEL="WARNING",
        **extra,
    )


# --- Ports and commands -------------------------------------------------------------------


# Where free_ports looks: above the ports services are usually configured on (PostgreSQL's
# 5432, Redis's 6379, `make up`'s 8000-8002), minus the kernel's ephemeral range.
CHOSEN_PORTS = range(10_000, 65_536)
# Linux's default ip_local_port_range, for a kernel that does not say.
DEFAULT_EPHEMERAL_PORTS = range(32_768, 61_000)


def ephemeral_ports() -> range:
    """The ports the kernel gives the local end of outgoing connections (and `bind(0)`)."""
    try:
        low, high = map(int, Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    except (OSError, ValueError):
        return DEFAULT_EPHEMERAL_PORTS
    return range(low, high + 1)


def free_ports(count: int) -> list[int]:
    """`count` distinct loopback ports nobody listens on (all held open while choosing).

    Drawn at random from outside the kernel's ephemeral range. A port from `bind(0)` stays
    free only until the kernel gives it to the local end of some outgoing connection: between
    choosing nginx's port and nginx binding it, the stack's own connections to PostgreSQL and
    Redis (and those of other processes) draw from that range, and CI once saw nginx fail with
    "Address already in use" so. Standard library only, as this module is (port-for does the
    same, but `make down` runs without the venv).
    """
    ephemeral = ephemeral_ports()
    # A kernel that lends every port to outgoing connections leaves only checking for now.
    candidates = [port for port in CHOSEN_PORTS if port not in ephemeral] or list(CHOSEN_PORTS)
    rng = secrets.SystemRandom()
    with ExitStack() as held:
        ports: list[int] = []
        for _ in range(100 * count):
            port = rng.choice(candidates)
            if port in ports:
                continue
            sock = held.enter_context(socket.socket())
            try:
                sock.bind((LOOPBACK, port))
            except OSError:
                continue  # taken
            ports.append(port)
            if len(ports) == count:
                return ports
    raise RuntimeError(f"fewer than {count} free loopback ports from {CHOSEN_PORTS}")


def free_port() -> int:
    """A loopback port nobody listens on."""
    return free_ports(1)[0]


def port_in_use(port: int) -> bool:
    """Whether a program already listens on (or holds) the loopback port."""
    with socket.socket() as sock:
        # As servers do: connections of an earlier run lingering in TIME_WAIT do not count.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((LOOPBACK, port))
        except OSError:
            return True
    return False


def port_accepts(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex((LOOPBACK, port)) == 0


def wait_until(
    ready: Callable[[], bool],
    *,
    what: str,
    timeout: float = 30,
    running: Callable[[], bool] = lambda: True,
    log: Path | None = None,
) -> None:
    """Poll `ready` until it holds; fail early when `running` says the process has exited.

    The error carries the end of `log`: the cause is in the failure itself (a test's report,
    `make up`'s output), not only in a file of a temporary directory.
    """
    deadline = time.monotonic() + timeout
    while not ready():
        if not running():
            raise startup_error(what, "exited", log)
        if time.monotonic() > deadline:
            raise startup_error(what, f"not ready after {timeout:.0f} s", log)
        time.sleep(0.1)


def startup_error(what: str, why: str, log: Path | None) -> RuntimeError:
    if log is None:
        return RuntimeError(f"{what}: {why}")
    try:
        tail = log.read_text(errors="replace").splitlines()[-15:]
    except OSError:
        tail = []
    return RuntimeError("\n".join([f"{what}: {why}; see {log}", *tail]))


def wait_for_port(port: int, *, timeout: float = 30) -> None:
    """Return once something accepts connections on the loopback port."""
    wait_until(lambda: port_accepts(port), what=f"127.0.0.1:{port}", timeout=timeout)


def http_status(url: str, *, timeout: float = 2) -> int | None:
    """The HTTP status `url` answers with, or None when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 (http URLs we built)
            return int(response.status)
    except urllib.error.HTTPError as error:
        return error.code
    except OSError:
        return None


def manage(*args: str, env: Mapping[str, str]) -> str:
    """Run a management command in a child process with `env`; return what it printed."""
    completed = subprocess.run(  # noqa: S603 (our own interpreter and manage.py)
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        check=True,
        stdout=subprocess.PIPE,
        text=True,
    )
    return completed.stdout


def render_nginx_site(
    *,
    port: int = DEFAULT_PORT,
    asgi_ports: Sequence[int] = DEFAULT_ASGI_PORTS,
    log_dir: Path | None = None,
    source: Path = NGINX_SITE,
) -> str:
    """The shipped nginx site with another listen port, upstream ports and log directory.

    With the defaults the text is the shipped file, byte for byte: what `make up` runs is what
    an operator installs.
    """
    text = source.read_text()
    addresses = {
        f"{LOOPBACK}:{old}": f"{LOOPBACK}:{new}"
        for old, new in zip((DEFAULT_PORT, *DEFAULT_ASGI_PORTS), (port, *asgi_ports), strict=True)
    }
    for address in addresses:
        if address not in text:
            raise ValueError(f"{source} no longer mentions {address}; update render_nginx_site")
    # One pass, so that a new port equal to another default is not replaced twice.
    pattern = "|".join(re.escape(address) + r"\b" for address in addresses)
    text = re.sub(pattern, lambda match: addresses[match.group(0)], text)
    if log_dir is not None:
        text = text.replace(NGINX_LOG_DIR, f"{log_dir}/")
    return text


# --- Processes ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ProcessIdentity:
    """One process as the kernel knows it. A pid alone can be reused by an unrelated program
    after the process exits; a pid with its start time and command line cannot."""

    pid: int
    started: int  # clock ticks after boot (field 22 of /proc/PID/stat)
    cmdline: tuple[str, ...]

    @classmethod
    def of(cls, pid: int) -> "ProcessIdentity | None":
        """The process running as `pid` now, or None (gone, or a zombie waiting to be reaped)."""
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except (FileNotFoundError, ProcessLookupError):
            return None
        # The command name (field 2) may hold spaces and parentheses: split after the last ")".
        fields = stat[stat.rindex(")") + 2 :].split()
        if fields[0] in ("Z", "X"):
            return None
        args = tuple(arg.decode(errors="replace") for arg in cmdline.split(b"\0") if arg)
        return cls(pid=pid, started=int(fields[19]), cmdline=args)

    def alive(self) -> bool:
        """Whether this very process still runs."""
        return ProcessIdentity.of(self.pid) == self

    def wait_gone(self, timeout: float) -> bool:
        """Wait up to `timeout` seconds for the process to exit; whether it did."""
        deadline = time.monotonic() + timeout
        while self.alive():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.05)
        return True


StopOutcome = Literal["stopped", "killed", "gone"]


def stop_process(process: ProcessIdentity, sig: signal.Signals, *, timeout: float) -> StopOutcome:
    """Ask `process` to stop with `sig` and wait; SIGKILL its process group after `timeout`.

    A pid that now belongs to another process (ours exited and the pid was reused: pid_max can
    be as low as 32768) is never signalled.
    """
    if not process.alive():
        return "gone"
    with suppress(ProcessLookupError):  # it exited just now
        os.kill(process.pid, sig)
    if process.wait_gone(timeout):
        return "stopped"
    kill_group(process)
    process.wait_gone(5)
    return "killed"


def kill_group(leader: ProcessIdentity) -> None:
    """SIGKILL whatever is left of the process group that `leader` started.

    Every process here is started in a session of its own, so its group id is its pid: this
    reaches Celery pool processes and nginx workers whose parent died (a fault test's SIGKILL).
    POSIX does not reuse a pid while a group of that id exists, so the group is ours unless the
    pid now runs another program, which is checked first.
    """
    current = ProcessIdentity.of(leader.pid)
    if current is not None and current != leader:
        return
    with suppress(ProcessLookupError, PermissionError):
        os.killpg(leader.pid, signal.SIGKILL)


def child_pids(parent: int) -> list[int]:
    """Live processes whose parent is `parent`, from /proc/*/stat (some kernels, this VM's
    included, have no /proc/PID/task/TID/children)."""
    children = []
    for stat in glob("/proc/[0-9]*/stat"):
        try:
            text = Path(stat).read_text()
        except OSError:
            continue  # it exited while we looked
        fields = text[text.rindex(")") + 2 :].split()
        if int(fields[1]) == parent and fields[0] not in ("Z", "X"):
            children.append(int(Path(stat).parent.name))
    return sorted(children)


def scratch_dir(prefix: str) -> Path:
    """A new directory under the system temp dir, removed when this Python process exits.

    For servers whose owner gave no directory (a test): their data outlives `stop()`, so that
    `start()` again is a restart, and is gone with the test run.
    """
    path = Path(tempfile.mkdtemp(prefix=prefix))
    atexit.register(shutil.rmtree, path, ignore_errors=True)
    return path


class Service(ABC):
    """One server process: `start()` returns once it serves; `stop()` asks it to finish and waits
    (its own graceful shutdown); `kill()` sends a real signal and cleans nothing up, as a crash
    or the OOM killer would; `restart()` starts it again on the same port with the same data."""

    name: ClassVar[str]
    # The signal the program reads as "finish and exit"; `make down` sends it.
    stop_signal: ClassVar[signal.Signals] = signal.SIGTERM
    stop_timeout: ClassVar[float] = 20.0
    ready_timeout: ClassVar[float] = 60.0

    def __init__(self, *, log: Path, port: int | None) -> None:
        self.log = log
        self.port = port
        self._identity: ProcessIdentity | None = None

    def __str__(self) -> str:
        return self.name if self.port is None else f"{self.name} on port {self.port}"

    @property
    def identity(self) -> ProcessIdentity | None:
        """The process last started (still set after `kill()`; None once stopped)."""
        return self._identity

    @property
    def pid(self) -> int | None:
        """The pid last started (still set after `kill()`; None once stopped)."""
        return None if self._identity is None else self._identity.pid

    def alive(self) -> bool:
        return self._identity is not None and self._identity.alive()

    def start(self) -> None:
        if self.alive():
            raise RuntimeError(f"{self} already runs as pid {self.pid}")
        self._shutdown()  # what a kill() left behind: orphaned workers, a stale pidfile
        self.log.parent.mkdir(parents=True, exist_ok=True)
        try:
            pid = self._launch()
        except BaseException:
            self._abandon()
            raise
        self._identity = ProcessIdentity.of(pid)
        if self._identity is None:
            raise startup_error(str(self), "exited right after starting", self.log)

    def stop(self) -> None:
        self._shutdown()

    def restart(self) -> None:
        self._shutdown()
        self.start()

    def kill(self, sig: signal.Signals = signal.SIGKILL) -> None:
        if self._identity is None or not self._identity.alive():
            raise RuntimeError(f"{self} is not running")
        os.kill(self._identity.pid, sig)

    @abstractmethod
    def _launch(self) -> int:
        """Start the program, wait until it serves, return the pid that leads its group."""

    @abstractmethod
    def _abandon(self) -> None:
        """Kill what a launch that failed half way left running (it has no identity yet)."""

    def _shutdown(self) -> None:
        if self._identity is not None:
            stop_process(self._identity, self.stop_signal, timeout=self.stop_timeout)
            kill_group(self._identity)
            self._identity = None


class ChildService(Service):
    """A program that stays in the foreground as our child, logging to `log`."""

    def __init__(self, env: Mapping[str, str], *, log: Path, port: int | None) -> None:
        super().__init__(log=log, port=port)
        # Kept by reference: a caller may still adjust it (e.g. an origin) before start().
        self.env = env
        self.process: subprocess.Popen[bytes] | None = None

    @abstractmethod
    def command(self) -> list[str]: ...

    @abstractmethod
    def ready(self) -> bool: ...

    def _launch(self) -> int:
        with self.log.open("ab") as log:
            # A session of its own: `make up` may exit and a Ctrl-C in its terminal does not
            # reach the server; its group id is its pid (kill_group).
            self.process = subprocess.Popen(  # noqa: S603 (our own command line)
                self.command(),
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        process = self.process
        wait_until(
            self.ready,
            what=str(self),
            timeout=self.ready_timeout,
            running=lambda: process.poll() is None,
            log=self.log,
        )
        return process.pid

    def _abandon(self) -> None:
        if self.process is not None:
            with suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
            self.process = None

    def _shutdown(self) -> None:
        super()._shutdown()
        if self.process is not None:
            self.process.wait()  # reap it: no zombie is left behind
            self.process = None


class DaemonService(Service):
    """A program that forks into the background by itself and writes its pid to `pidfile`."""

    pidfile: Path

    def _pidfile_pid(self) -> int | None:
        try:
            return int(self.pidfile.read_text().split()[0])
        except (FileNotFoundError, IndexError, ValueError):
            return None

    def _written_pid(self) -> int:
        """The pid in `pidfile`, once the daemon has written it."""
        wait_until(lambda: self._pidfile_pid() is not None, what=f"{self}: pidfile", log=self.log)
        return int(self.pidfile.read_text().split()[0])

    def _abandon(self) -> None:
        pid = self._pidfile_pid()
        identity = None if pid is None else ProcessIdentity.of(pid)
        if identity is not None:
            kill_group(identity)


class PostgresServer(DaemonService):
    """A throw-away PostgreSQL cluster with a `supportdesk` database.

    PostgreSQL refuses to run as root, so as root it runs as the `postgres` user, which cannot
    enter root's 0700 directories (pytest's tmp_path among them): give it a `workdir` that user
    can reach, or none for a new directory under the system temp dir (see `scratch_dir`).
    `stop()` keeps the data, so `start()` afterwards is a database coming back.
    """

    name = "postgres"
    stop_signal = signal.SIGINT  # "fast": roll back open transactions, do not wait for clients

    def __init__(
        self, workdir: Path | None = None, port: int | None = None, *, template: Path | None = None
    ) -> None:
        self.dir = workdir or scratch_dir("sd-pg-")
        self.data = self.dir / "data"
        # A stopped cluster's data directory (`postgres_template`): copied instead of initdb.
        self.template = template
        self.pidfile = self.data / "postmaster.pid"
        super().__init__(log=self.dir / "postgres.log", port=port or free_port())
        self.url = f"postgresql://postgres@{LOOPBACK}:{self.port}/supportdesk"

    @staticmethod
    def bin_dir() -> Path:
        found = sorted(glob("/usr/lib/postgresql/*/bin"))
        if not found:
            raise RuntimeError("PostgreSQL is not installed (bash scripts/system_deps.sh)")
        return Path(found[-1])

    def _as_postgres(self, program: str, *args: str) -> None:
        prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        subprocess.run(  # noqa: S603 (PostgreSQL's own tools)
            [*prefix, str(self.bin_dir() / program), *args],
            check=True,
            stdout=subprocess.DEVNULL,
            start_new_session=True,  # pg_ctl's postmaster must outlive `make up`
        )

    def _launch(self) -> int:
        self.dir.mkdir(parents=True, exist_ok=True)
        self.dir.chmod(0o755)
        fresh = not (self.data / "PG_VERSION").exists()
        if fresh and os.geteuid() == 0:
            shutil.chown(self.dir, "postgres")
        if fresh and self.template is not None:
            # cp -a keeps the owner (postgres) and the 0700 mode PostgreSQL insists on.
            subprocess.run(["cp", "-a", str(self.template), str(self.data)], check=True)  # noqa: S603, S607
        elif fresh:
            self._as_postgres(
                "initdb", "-D", str(self.data), "-A", "trust", "--no-sync", "-U", "postgres"
            )
        self._remove_stale_locks()
        options = (
            f"-p {self.port} -c listen_addresses={LOOPBACK} -k {self.dir} "
            "-c fsync=off -c max_connections=200"
        )
        try:
            self._as_postgres(
                "pg_ctl", "-D", str(self.data), "-w", "-l", str(self.log), "-o", options, "start"
            )
        except subprocess.CalledProcessError as error:
            raise startup_error(str(self), "pg_ctl start failed", self.log) from error
        if fresh and self.template is None:
            self._as_postgres(
                "createdb", "-h", LOOPBACK, "-p", str(self.port), "-U", "postgres", "supportdesk"
            )
        return self._written_pid()

    def _remove_stale_locks(self) -> None:
        """Remove lock files that name a dead postmaster.

        PostgreSQL does so itself, unless the dead postmaster is a zombie: after a SIGKILL its
        parent is init, and an init that reaps late (this VM's) leaves a pid that signal 0 still
        reaches. Orphaned backends still keep it from starting: it checks its shared memory.
        """
        for lock in (self.pidfile, self.dir / f".s.PGSQL.{self.port}.lock"):
            try:
                pid = int(lock.read_text().split()[0])
            except (FileNotFoundError, IndexError, ValueError):
                continue
            if ProcessIdentity.of(pid) is None:
                lock.unlink()

    def stop(self, mode: str = "fast") -> None:
        """`pg_ctl stop -m MODE`: smart (wait for clients), fast or immediate (crash-like)."""
        self._shutdown(mode)

    def restart(self, mode: str = "fast") -> None:
        """Stop with `mode` and start again on the same port and data directory."""
        self._shutdown(mode)
        self.start()

    def _shutdown(self, mode: str = "fast") -> None:
        if self.alive():
            self._as_postgres("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")
        super()._shutdown()


class RedisServer(DaemonService):
    """Redis without persistence: a restart comes back empty, as a real one configured so does."""

    name = "redis"

    def __init__(self, workdir: Path | None = None, port: int | None = None) -> None:
        self.dir = workdir or scratch_dir("sd-redis-")
        self.pidfile = self.dir / "redis.pid"
        super().__init__(log=self.dir / "redis.log", port=port or free_port())
        self.url = f"redis://{LOOPBACK}:{self.port}/0"

    def _launch(self) -> int:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed (bash scripts/system_deps.sh)")
        self.dir.mkdir(parents=True, exist_ok=True)
        self.pidfile.unlink(missing_ok=True)
        command = [
            binary,
            "--port", str(self.port),
            "--bind", LOOPBACK,
            "--daemonize", "yes",
            "--dir", str(self.dir),
            "--pidfile", str(self.pidfile),
            "--logfile", str(self.log),
            "--save", "",
            "--appendonly", "no",
        ]  # fmt: skip
        subprocess.run(  # noqa: S603 (Debian's redis-server)
            command, check=True, stdout=subprocess.DEVNULL, start_new_session=True
        )
        wait_until(self._answers_ping, what=str(self), log=self.log)
        return self._written_pid()

    def _answers_ping(self) -> bool:
        try:
            with socket.create_connection((LOOPBACK, self.port), timeout=1) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False


class AsgiServer(ChildService):
    """An ASGI application (the project by default) under uvicorn or daphne on loopback.

    Ready when `health_path` answers 200, or, without one, when the port accepts connections.
    `proxy_headers` trusts X-Forwarded-For/-Proto from 127.0.0.1 only, i.e. from nginx on the
    same host: on for servers behind nginx, off for servers a test talks to directly (uvicorn
    would otherwise trust any loopback client, the test itself included).
    """

    name = "asgi"

    def __init__(
        self,
        env: Mapping[str, str],
        *,
        log: Path,
        port: int | None = None,
        server: str = "uvicorn",
        app: str = "supportdesk.asgi:application",
        health_path: str | None = "/healthz",
        proxy_headers: bool = False,
        log_level: str = "warning",
        graceful_timeout: int | None = None,
    ) -> None:
        if server not in ("uvicorn", "daphne"):
            raise ValueError(f"unknown ASGI server {server!r}: uvicorn or daphne")
        super().__init__(env, log=log, port=port or free_port())
        self.url = f"http://{LOOPBACK}:{self.port}"
        self.server = server
        self.app = app
        self.health_path = health_path
        self.proxy_headers = proxy_headers
        self.log_level = log_level
        self.graceful_timeout = graceful_timeout

    def command(self) -> list[str]:
        port = str(self.port)
        if self.server == "daphne":
            proxy = ["--proxy-headers"] if self.proxy_headers else []
            return [sys.executable, "-m", "daphne", "-b", LOOPBACK, "-p", port, *proxy, self.app]
        proxy = (
            ["--proxy-headers", "--forwarded-allow-ips", LOOPBACK]
            if self.proxy_headers
            else ["--no-proxy-headers"]
        )
        graceful = (
            ["--timeout-graceful-shutdown", str(self.graceful_timeout)]
            if self.graceful_timeout is not None
            else []
        )
        return [
            sys.executable, "-m", "uvicorn", self.app,
            "--host", LOOPBACK, "--port", port,
            "--log-level", self.log_level,
            *proxy, *graceful,
        ]  # fmt: skip

    def ready(self) -> bool:
        if self.health_path is None:
            return port_accepts(int(self.port or 0))
        return http_status(self.url + self.health_path) == 200


class CeleryWorker(ChildService):
    """`celery -A supportdesk worker`, ready when it answers a ping through the broker."""

    name = "celery-worker"
    # SIGTERM is Celery's warm shutdown: take no new task, finish the running ones.
    stop_timeout = 60.0

    def __init__(
        self,
        env: Mapping[str, str],
        *,
        log: Path,
        pool: Literal["prefork", "solo", "threads"] = "prefork",
        concurrency: int = 2,
        hostname: str | None = None,
    ) -> None:
        super().__init__(env, log=log, port=None)
        self.pool = pool
        self.concurrency = concurrency
        self.hostname = hostname or f"worker-{secrets.token_hex(3)}@{socket.gethostname()}"

    def command(self) -> list[str]:
        return [
            sys.executable, "-m", "celery", "-A", "supportdesk", "worker",
            "--hostname", self.hostname,
            "--pool", self.pool,
            "--concurrency", str(self.concurrency),
        ]  # fmt: skip

    def ready(self) -> bool:
        # The broker round trip proves what matters (connected, consuming, remote control up)
        # whatever LOG_LEVEL hides; about 0.4 s a try once the worker is up.
        ping = [sys.executable, "-m", "celery", "-A", "supportdesk", "inspect", "ping"]
        answered = subprocess.run(  # noqa: S603 (our own interpreter)
            [*ping, "--destination", self.hostname, "--timeout", "1"],
            cwd=ROOT,
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            check=False,
        )
        return answered.returncode == 0

    def child_pids(self) -> list[int]:
        """The pool's processes (prefork): a fault test SIGKILLs the one running a task."""
        return [] if self.pid is None else child_pids(self.pid)


class CeleryBeat(ChildService):
    """`celery -A supportdesk beat`: exactly one per deployment, or periodic tasks run twice."""

    name = "celery-beat"

    def __init__(self, env: Mapping[str, str], *, log: Path, workdir: Path) -> None:
        super().__init__(env, log=log, port=None)
        self.schedule = workdir / "celerybeat-schedule"

    def command(self) -> list[str]:
        return [
            sys.executable, "-m", "celery", "-A", "supportdesk", "beat",
            "--schedule", str(self.schedule),
            # Beat's default pidfile is ./celerybeat.pid: the checkout, shared by every run.
            "--pidfile", str(self.schedule.with_name("celerybeat.pid")),
        ]  # fmt: skip

    def ready(self) -> bool:
        # Beat opens its schedule database (a dbm file, its suffix chosen by the dbm module)
        # once the app is loaded and the scheduler is set up.
        return bool(glob(f"{self.schedule}*"))


class NginxServer(DaemonService):
    """nginx with the shipped site (deploy/nginx/supportdesk.conf) in front of the ASGI ports.

    It runs as our own process with every file under `workdir` (`nginx -p WORKDIR -c MAIN`), so
    neither Debian's nginx service nor its configuration is involved.
    """

    name = "nginx"
    # Graceful: finish requests in flight; the main config bounds how long open sockets may hold
    # the exit (worker_shutdown_timeout). `nginx -s quit` sends the same signal to the same pid.
    stop_signal = signal.SIGQUIT

    def __init__(
        self,
        workdir: Path,
        port: int = DEFAULT_PORT,
        upstream_ports: Sequence[int] = DEFAULT_ASGI_PORTS,
        *,
        log: Path | None = None,
    ) -> None:
        super().__init__(log=log or workdir / "nginx-error.log", port=port)
        self.workdir = workdir
        self.upstream_ports = tuple(upstream_ports)
        self.site = workdir / "supportdesk.conf"
        self.main = workdir / "nginx.conf"
        self.pidfile = workdir / "nginx.pid"
        self.access_log = workdir / "supportdesk.access.log"
        self.url = f"http://{LOOPBACK}:{self.port}"

    def main_config(self) -> str:
        # As root, the workers run as root too: nginx's default (`nobody`) could not write the
        # bodies of uploads to the temp paths below in root's 0700 directories (mktemp, pytest).
        # Debian's own nginx.conf, used in production, runs them as www-data.
        user = "user root;\n" if os.geteuid() == 0 else ""
        temp_paths = "".join(
            f"    {kind}_temp_path {self.workdir}/{kind}_temp;\n"
            for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        )
        return (
            "# Written by scripts/stack.py: nginx for `make up` and the tests. The site is\n"
            "# deploy/nginx/supportdesk.conf, rendered beside this file with this run's ports.\n"
            f"{user}"
            "worker_processes 1;\n"
            f"pid {self.pidfile};\n"
            f"error_log {self.log} warn;\n"
            "# An open WebSocket must not hold `make down` up for ever.\n"
            "worker_shutdown_timeout 10s;\n"
            # Each WebSocket holds two connections (the client's and the upstream's): 1,024
            # capped a run at about 500 sockets. Debian's own nginx.conf says 768 (docs/deploy.md).
            "worker_rlimit_nofile 20000;\n"
            "events {\n    worker_connections 8192;\n}\n"
            "http {\n"
            f"{temp_paths}"
            f"    include {self.site};\n"
            "}\n"
        )

    def _nginx(self, *args: str) -> list[str]:
        binary = shutil.which("nginx") or "/usr/sbin/nginx"
        if not Path(binary).exists():
            raise RuntimeError("nginx is not installed (bash scripts/system_deps.sh)")
        return [binary, "-p", f"{self.workdir}/", "-c", str(self.main), "-e", str(self.log), *args]

    def _launch(self) -> int:
        self.workdir.mkdir(parents=True, exist_ok=True)
        assert self.port is not None
        self.site.write_text(
            render_nginx_site(port=self.port, asgi_ports=self.upstream_ports, log_dir=self.workdir)
        )
        self.main.write_text(self.main_config())
        self.pidfile.unlink(missing_ok=True)
        # nginx checks the configuration and binds the port, then forks its master into a new
        # session and exits: a bad config or a taken port fails right here.
        started = subprocess.run(  # noqa: S603 (Debian's nginx)
            self._nginx(), capture_output=True, text=True, check=False, start_new_session=True
        )
        if started.returncode != 0:
            raise RuntimeError(f"{self}: nginx did not start\n{started.stderr.strip()}")
        # Any answer, even a 502 before the upstreams are up, means a worker serves.
        wait_until(lambda: http_status(self.url + "/") is not None, what=str(self), log=self.log)
        return self._written_pid()


# --- The stack ----------------------------------------------------------------------------


def services_stop(services: list[Service]) -> None:
    """Stop `services` side by side; raise the first error once all have been asked."""
    with ThreadPoolExecutor(len(services)) as pool:
        for job in [pool.submit(service.stop) for service in services]:
            job.result()


def postgres_template(env_base: Mapping[str, str], *, seed: bool) -> Path:
    """A stopped PostgreSQL cluster's data directory, migrated and (with `seed`) seeded by the
    real commands under `env_base`: `Stack(template=...)` and `PostgresServer(template=...)`
    copy it in a fraction of a second instead of running initdb, migrate and seed_demo. Removed
    when this Python process exits."""
    postgres = PostgresServer()
    postgres.start()
    try:
        env = {
            **env_base,
            "DJANGO_SETTINGS_MODULE": "supportdesk.settings.local",
            "DEBUG": "false",
            "DATABASE_URL": postgres.url,
        }
        manage("migrate", "--noinput", env=env)
        if seed:
            manage("seed_demo", env=env)
    finally:
        postgres.stop()  # a clean shutdown: the copy starts without recovery
    return postgres.data


def sqlite_template(env: Mapping[str, str], *, seed: bool) -> Path:
    """The SQLite file at `env`'s SQLITE_PATH (an `embedded_env`), migrated and (with `seed`)
    seeded by the real commands: `sqlite_copy` puts it where a server's SQLITE_PATH points."""
    manage("migrate", "--noinput", env=env)
    if seed:
        manage("seed_demo", env=env)
    return Path(env["SQLITE_PATH"])


def sqlite_copy(template: Path, destination: Path) -> None:
    """Copy a SQLite database with SQLite's online backup: whole, whatever its WAL holds."""
    with (
        closing(sqlite3.connect(template)) as source,
        closing(sqlite3.connect(destination)) as target,
    ):
        source.backup(target)


class Stack:
    """Every process of the scale-out profile on loopback, started in dependency order.

    `env_base` is the environment the processes inherit. `make up` passes its caller's on
    purpose (a developer's ANTHROPIC_API_KEY works, as with `make run`); tests and benchmarks
    pass `service_env(os.environ)` so that no test traffic reaches the real API. Ports left out
    are free ones, so a test never collides with a developer's `make up`.
    """

    def __init__(
        self,
        workdir: Path,
        *,
        env_base: Mapping[str, str],
        port: int | None = None,
        asgi_ports: Sequence[int] | None = None,
        extra_env: Mapping[str, str] | None = None,
        seed: bool = False,
        worker_concurrency: int = 2,
        template: Path | None = None,
        graceful_timeout: int = 10,
    ) -> None:
        chosen = free_ports(3)
        self.port = port or chosen[0]
        self.asgi_ports = tuple(asgi_ports or chosen[1:])
        self.workdir = workdir
        self.url = f"http://{LOOPBACK}:{self.port}"
        self.seed = seed
        self.seed_output = ""
        # Not under `workdir`: PostgreSQL runs as its own user, which may not enter it.
        # A data directory from `postgres_template`, migrated (and seeded, if it was built so):
        # copied in place of initdb, migrate and seed_demo. The tests start a dozen stacks.
        self.template = template
        self.postgres = PostgresServer(Path(tempfile.mkdtemp(prefix="sd-pg-")), template=template)
        self.redis = RedisServer(workdir / "redis")
        self.metrics_dir = workdir / "prometheus"
        origins = f"http://{LOOPBACK}:{self.port},http://localhost:{self.port}"
        self.env: dict[str, str] = {
            **env_base,
            "DJANGO_SETTINGS_MODULE": "supportdesk.settings.local",
            "DEBUG": "false",
            "DATABASE_URL": self.postgres.url,
            "REDIS_URL": self.redis.url,
            "ALLOWED_HOSTS": f"{LOOPBACK},localhost",
            # The widget's page is served through nginx, so its origin is nginx's.
            "CHAT_ALLOWED_ORIGINS": origins,
            # Every process writes its counters here; /metrics of any ASGI process merges them.
            "PROMETHEUS_MULTIPROC_DIR": str(self.metrics_dir),
            "MEDIA_ROOT": str(workdir / "media"),
            **(extra_env or {}),
        }
        self.servers = [
            AsgiServer(
                self.env,
                log=workdir / f"asgi-{asgi_port}.log",
                port=asgi_port,
                proxy_headers=True,
                log_level="info",  # an access log per process: which one answered
                # Seconds uvicorn waits for open requests and sockets at a stop: a channel-layer
                # receive that channels_redis was cancelling can hold a socket's task that long.
                graceful_timeout=graceful_timeout,
            )
            for asgi_port in self.asgi_ports
        ]
        self.worker = CeleryWorker(
            self.env, log=workdir / "celery-worker.log", concurrency=worker_concurrency
        )
        self.beat = CeleryBeat(self.env, log=workdir / "celery-beat.log", workdir=workdir)
        self.nginx = NginxServer(workdir / "nginx", self.port, self.asgi_ports)
        # Closed by stop(): stops what started, in reverse order, then removes the cluster.
        self._started = ExitStack()
        self._started.callback(shutil.rmtree, self.postgres.dir, ignore_errors=True)

    @property
    def processes(self) -> list[Service]:
        """Every process, in start order."""
        return [self.postgres, self.redis, *self.servers, self.worker, self.beat, self.nginx]

    @property
    def logs(self) -> list[Path]:
        return [*(service.log for service in self.processes), self.nginx.access_log]

    def start(self) -> None:
        """Start everything; on any failure stop what had started and raise."""
        try:
            self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.metrics_dir.mkdir(exist_ok=True)  # empty: a fresh deployment
        for store in (self.postgres, self.redis):
            self._started.callback(store.stop)
            store.start()
        if self.template is None:
            manage("migrate", "--noinput", env=self.env)
        # Independent of one another, so started side by side (seeding trains a model, the
        # servers import Django): each start waits for its own readiness.
        group: list[Service] = [*self.servers, self.worker, self.beat]
        # Stopped side by side too: each waits for its own graceful exit (open sockets, a
        # running task), so in turn they would wait one after the other.
        self._started.callback(services_stop, group)
        with ThreadPoolExecutor(len(group) + 1) as pool:
            jobs = [pool.submit(service.start) for service in group]
            if self.seed and self.template is None:
                jobs.append(pool.submit(self._seed))
            for job in jobs:
                job.result()
        self._started.callback(self.nginx.stop)
        self.nginx.start()
        wait_until(
            lambda: http_status(self.url + "/healthz") == 200,
            what=f"/healthz through nginx at {self.url}",
            log=self.nginx.log,
        )

    def _seed(self) -> None:
        self.seed_output = manage("seed_demo", env=self.env)

    def stop(self) -> None:
        """Stop everything that was started, in reverse order."""
        self._started.close()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


# --- `make up` / `make down`: the command line and its state file --------------------------


@dataclass(frozen=True)
class RecordedProcess:
    """What `down` needs to stop a process that another command started."""

    name: str
    pid: int
    started: int
    cmdline: list[str]
    stop_signal: str
    stop_timeout: float
    log: str

    @classmethod
    def of(cls, service: Service) -> "RecordedProcess":
        assert service.identity is not None
        identity = service.identity
        return cls(
            name=str(service),
            pid=identity.pid,
            started=identity.started,
            cmdline=list(identity.cmdline),
            stop_signal=service.stop_signal.name,
            stop_timeout=service.stop_timeout,
            log=str(service.log),
        )

    @property
    def identity(self) -> ProcessIdentity:
        return ProcessIdentity(pid=self.pid, started=self.started, cmdline=tuple(self.cmdline))


@dataclass(frozen=True)
class StackState:
    url: str
    workdir: str
    remove: list[str]  # directories `down` deletes
    logs: list[str]
    processes: list[RecordedProcess]

    @classmethod
    def read(cls, path: Path) -> "StackState | None":
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            return None
        processes = [RecordedProcess(**process) for process in data.pop("processes")]
        return cls(**data, processes=processes)

    def write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(asdict(self), indent=2) + "\n")

    def running(self) -> list[RecordedProcess]:
        return [process for process in self.processes if process.identity.alive()]

    def discard(self, path: Path) -> None:
        for directory in self.remove:
            shutil.rmtree(directory, ignore_errors=True)
        path.unlink(missing_ok=True)


def command_up(state_file: Path, port: int, asgi_ports: Sequence[int]) -> int:
    state = StackState.read(state_file)
    if state is not None:
        running = state.running()
        if len(running) == len(state.processes):
            print(f"already running at {state.url} (make down stops it)")
            return 0
        if running:
            exited = ", ".join(p.name for p in state.processes if p not in running)
            print(
                f"partly running at {state.url}: {exited} exited (logs in {state.workdir}).\n"
                "Run `make down`, then `make up`.",
                file=sys.stderr,
            )
            return 1
        state.discard(state_file)  # nothing left of an earlier run (a reboot, a crash)
    for wanted, variable in ((port, "PORT"), *((p, "ASGI_PORTS") for p in asgi_ports)):
        if port_in_use(wanted):
            print(
                f"port {wanted} is taken by another program (`make run`?); "
                f"stop it or choose another: make up {variable}=...",
                file=sys.stderr,
            )
            return 1
    workdir = Path(tempfile.mkdtemp(prefix="supportdesk-stack-"))
    stack = Stack(workdir, env_base=os.environ, port=port, asgi_ports=asgi_ports, seed=True)
    began = time.monotonic()
    try:
        stack.start()
    except (Exception, KeyboardInterrupt) as error:
        shutil.rmtree(workdir, ignore_errors=True)
        print(f"make up failed, everything it started is stopped:\n{error}", file=sys.stderr)
        return 130 if isinstance(error, KeyboardInterrupt) else 1
    StackState(
        url=stack.url,
        workdir=str(workdir),
        remove=[str(workdir), str(stack.postgres.dir)],
        logs=[str(log) for log in stack.logs],
        processes=[RecordedProcess.of(service) for service in stack.processes],
    ).write(state_file)
    print_started(stack, time.monotonic() - began)
    return 0


def print_started(stack: Stack, seconds: float) -> None:
    print(f"SupportDesk, scale-out profile, on {stack.url} (started in {seconds:.1f} s)")
    width = max(len(label) for label, _ in PAGES)
    for label, path in PAGES:
        print(f"  {label:<{width}}  {stack.url}{path}")
    print()
    print(stack.seed_output.rstrip())
    print()
    print("Processes (nginx round-robin to both ASGI processes):")
    for service in stack.processes:
        print(f"  {service!s:<24} pid {service.pid:<7} log {service.log}")
    print(f"  nginx access log: {stack.nginx.access_log}")
    print("Stop everything with: make down")


def command_down(state_file: Path) -> int:
    state = StackState.read(state_file)
    if state is None:
        print("nothing to stop")
        return 0
    began = time.monotonic()
    for process in reversed(state.processes):
        outcome = stop_process(
            process.identity, signal.Signals[process.stop_signal], timeout=process.stop_timeout
        )
        kill_group(process.identity)
        said = {"stopped": "stopped", "killed": "killed (did not stop in time)"}
        print(f"  {process.name:<24} pid {process.pid:<7} {said.get(outcome, 'had exited')}")
    state.discard(state_file)
    print(f"stopped the stack at {state.url} in {time.monotonic() - began:.1f} s")
    return 0


def command_status(state_file: Path) -> int:
    state = StackState.read(state_file)
    if state is None:
        print("not running (make up starts it)")
        return 0
    running = state.running()
    for process in state.processes:
        status = "running" if process in running else "EXITED"
        print(f"  {process.name:<24} pid {process.pid:<7} {status:<8} {process.log}")
    if len(running) == len(state.processes):
        print(f"running at {state.url} (make down stops it)")
        return 0
    print(f"partly running at {state.url}: make down, then make up", file=sys.stderr)
    return 1


def port_list(text: str) -> tuple[int, ...]:
    return tuple(int(port) for port in text.split(","))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--state", type=Path, default=STATE_FILE, help="state file of this stack")
    commands = parser.add_subparsers(dest="command", required=True)
    up = commands.add_parser("up", help="start the stack (once)")
    up.add_argument("--port", type=int, default=DEFAULT_PORT, help="nginx listens here")
    up.add_argument(
        "--asgi-ports",
        type=port_list,
        default=DEFAULT_ASGI_PORTS,
        help="the two uvicorn processes, comma-separated",
    )
    commands.add_parser("down", help="stop what `up` started")
    commands.add_parser("status", help="which recorded processes run")
    args = parser.parse_args(argv)
    if args.command == "up":
        return command_up(args.state, args.port, args.asgi_ports)
    if args.command == "down":
        return command_down(args.state)
    return command_status(args.state)


if __name__ == "__main__":
    sys.exit(main())
