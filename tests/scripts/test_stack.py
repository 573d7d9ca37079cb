"""scripts/stack.py without starting servers: environments, the nginx site, process identity,
and what `up` and `down` do with a recorded stack."""

import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from scripts.stack import (
    NGINX_SITE,
    ProcessIdentity,
    RecordedProcess,
    StackState,
    embedded_env,
    ephemeral_ports,
    free_ports,
    main,
    port_in_use,
    render_nginx_site,
    service_env,
    stop_process,
)


@pytest.fixture
def developer_key(monkeypatch: pytest.MonkeyPatch) -> None:
    """A developer who exported a real key and a base URL before running the tests."""
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-real-key")
    monkeypatch.setenv("ANTHROPIC_BASE_URL", "https://api.anthropic.com")


@pytest.mark.usefixtures("developer_key")
def test_service_env_never_passes_on_the_callers_anthropic_key_or_base_url():
    env = service_env(os.environ, LOG_LEVEL="WARNING")
    assert "ANTHROPIC_API_KEY" not in env
    assert "ANTHROPIC_BASE_URL" not in env
    assert env["LOG_LEVEL"] == "WARNING"
    assert env["PATH"] == os.environ["PATH"]


@pytest.mark.usefixtures("developer_key")
def test_service_env_keeps_anthropic_variables_set_explicitly_for_a_stand_in():
    env = service_env(
        os.environ, ANTHROPIC_API_KEY="sk-ant-test-key", ANTHROPIC_BASE_URL="http://127.0.0.1:1"
    )
    assert env["ANTHROPIC_API_KEY"] == "sk-ant-test-key"
    assert env["ANTHROPIC_BASE_URL"] == "http://127.0.0.1:1"


@pytest.mark.usefixtures("developer_key")
def test_embedded_env_never_passes_on_the_developers_anthropic_key(tmp_path: Path):
    env = embedded_env(tmp_path, MEDIA_ROOT=str(tmp_path / "media"))
    assert "ANTHROPIC_API_KEY" not in env
    assert "ANTHROPIC_BASE_URL" not in env
    assert env["SQLITE_PATH"] == str(tmp_path / "db.sqlite3")
    assert env["MEDIA_ROOT"] == str(tmp_path / "media")


@pytest.mark.usefixtures("developer_key")
def test_embedded_env_passes_a_stand_in_given_explicitly(tmp_path: Path):
    env = embedded_env(
        tmp_path, ANTHROPIC_API_KEY="sk-ant-test-key", ANTHROPIC_BASE_URL="http://127.0.0.1:1"
    )
    assert (env["ANTHROPIC_API_KEY"], env["ANTHROPIC_BASE_URL"]) == (
        "sk-ant-test-key",
        "http://127.0.0.1:1",
    )


def test_the_nginx_site_make_up_runs_is_the_shipped_file_byte_for_byte():
    assert render_nginx_site() == NGINX_SITE.read_text()
    assert render_nginx_site(port=8000, asgi_ports=(8001, 8002)) == NGINX_SITE.read_text()


def test_other_ports_and_log_directory_replace_the_defaults_everywhere():
    site = render_nginx_site(port=9100, asgi_ports=(9101, 9102), log_dir=Path("/run/x"))
    for default in ("8000", "8001", "8002", "/var/log/nginx"):
        assert default not in site
    assert "listen 127.0.0.1:9100;" in site
    assert "server 127.0.0.1:9101 max_fails=1" in site
    assert "server 127.0.0.1:9102 max_fails=1" in site
    assert "access_log /run/x/supportdesk.access.log supportdesk;" in site


def test_ports_are_swapped_in_one_pass_so_a_default_port_may_be_reused_elsewhere():
    site = render_nginx_site(port=8001, asgi_ports=(8000, 8002))
    assert "listen 127.0.0.1:8001;" in site
    assert "server 127.0.0.1:8000 max_fails=1" in site
    assert "server 127.0.0.1:8002 max_fails=1" in site


def identity_once_exec_done(pid: int, cmdline: tuple[str, ...]) -> ProcessIdentity:
    """The process's identity once it runs `cmdline`: until its exec completes, a child shows
    its parent's command line (CI once read that one, and the identity changed under it)."""
    deadline = time.monotonic() + 5
    while (identity := ProcessIdentity.of(pid)) is None or identity.cmdline != cmdline:
        assert time.monotonic() < deadline, f"pid {pid} never ran {cmdline}: {identity}"
        time.sleep(0.01)
    return identity


def test_a_pid_reused_by_another_process_is_never_signalled():
    sleeper = subprocess.Popen(["sleep", "30"])
    try:
        current = identity_once_exec_done(sleeper.pid, ("sleep", "30"))
        assert current.alive()
        # The same pid started at another time: what a recycled pid looks like.
        earlier = ProcessIdentity(current.pid, current.started - 1, current.cmdline)
        assert not earlier.alive()
        assert stop_process(earlier, signal.SIGTERM, timeout=1) == "gone"
        assert sleeper.poll() is None
        assert stop_process(current, signal.SIGTERM, timeout=5) == "stopped"
    finally:
        sleeper.kill()
        sleeper.wait()
    assert ProcessIdentity.of(sleeper.pid) is None


def test_down_with_nothing_recorded_says_so_and_succeeds(tmp_path: Path, capsys):
    assert main(["--state", str(tmp_path / "stack.json"), "down"]) == 0
    assert capsys.readouterr().out == "nothing to stop\n"


def recorded_sleeper(tmp_path: Path, sleeper: subprocess.Popen[bytes], **changes) -> Path:
    """A state file as `make up` writes it, recording `sleeper` as the stack's one process."""
    identity = ProcessIdentity.of(sleeper.pid)
    assert identity is not None
    process = RecordedProcess(
        name="sleeper",
        pid=identity.pid,
        started=identity.started,
        cmdline=list(identity.cmdline),
        stop_signal="SIGTERM",
        stop_timeout=5,
        log=str(tmp_path / "sleeper.log"),
    )
    state = StackState(
        url="http://127.0.0.1:1",
        workdir=str(tmp_path / "stack"),
        remove=[str(tmp_path / "stack")],
        logs=[],
        processes=[replace(process, **changes)],
    )
    state_file = tmp_path / "stack.json"
    state.write(state_file)
    return state_file


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    process = subprocess.Popen(["sleep", "30"])
    yield process
    process.kill()
    process.wait()


def test_up_while_the_recorded_processes_run_says_already_running_and_starts_nothing(
    tmp_path: Path, sleeper, capsys
):
    state_file = recorded_sleeper(tmp_path, sleeper)
    before = state_file.read_text()
    assert main(["--state", str(state_file), "up"]) == 0
    assert capsys.readouterr().out == (
        "already running at http://127.0.0.1:1 (make down stops it)\n"
    )
    assert state_file.read_text() == before


def test_up_refuses_a_port_another_program_listens_on(tmp_path: Path, capsys):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        first, second = free_ports(2)
        arguments = ["up", "--port", str(port), "--asgi-ports", f"{first},{second}"]
        assert main(["--state", str(tmp_path / "stack.json"), *arguments]) == 1
    assert f"port {port} is taken by another program" in capsys.readouterr().err
    assert not (tmp_path / "stack.json").exists()


def test_down_stops_the_recorded_process_and_forgets_the_stack(tmp_path: Path, sleeper, capsys):
    state_file = recorded_sleeper(tmp_path, sleeper)
    (tmp_path / "stack").mkdir()
    assert main(["--state", str(state_file), "down"]) == 0
    assert sleeper.wait(timeout=5) == -signal.SIGTERM
    assert "sleeper" in capsys.readouterr().out
    assert not state_file.exists()
    assert not (tmp_path / "stack").exists()


def test_down_leaves_alone_a_process_that_took_a_recorded_pid(tmp_path: Path, sleeper, capsys):
    # The recorded process exited long ago and its pid now runs something else.
    state_file = recorded_sleeper(tmp_path, sleeper, started=1)
    assert main(["--state", str(state_file), "down"]) == 0
    assert sleeper.poll() is None
    assert "had exited" in capsys.readouterr().out


def test_the_ephemeral_range_read_is_the_one_the_kernel_draws_from():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        assert sock.getsockname()[1] in ephemeral_ports()


def test_free_ports_are_distinct_unused_and_outside_the_ephemeral_range():
    """Outgoing connections cannot take them before the server that was given one binds it."""
    ports = free_ports(50)
    assert len(set(ports)) == 50
    assert not [port for port in ports if port in ephemeral_ports()]
    assert not [port for port in ports if port_in_use(port)]
