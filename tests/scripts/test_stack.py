"""scripts/stack.py without starting servers: environments, the nginx site, process identity."""

import os
import signal
import subprocess
from pathlib import Path

import pytest

from scripts.stack import (
    NGINX_SITE,
    ProcessIdentity,
    embedded_env,
    main,
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


def test_a_pid_reused_by_another_process_is_never_signalled():
    sleeper = subprocess.Popen(["sleep", "30"])
    try:
        current = ProcessIdentity.of(sleeper.pid)
        assert current is not None
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
