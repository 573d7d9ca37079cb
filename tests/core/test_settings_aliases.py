"""Renamed settings keep reading their old environment variable, with a warning."""

import pytest

from supportdesk.settings.base import env_bool_renamed


def test_the_new_name_is_read_without_a_warning(monkeypatch, recwarn):
    monkeypatch.setenv("BACKGROUND_IN_THREAD", "true")
    monkeypatch.delenv("ROUTER_IN_THREAD", raising=False)
    assert env_bool_renamed("BACKGROUND_IN_THREAD", old="ROUTER_IN_THREAD") is True
    assert not [w for w in recwarn if issubclass(w.category, FutureWarning)]


def test_the_old_name_still_works_and_warns(monkeypatch):
    monkeypatch.delenv("BACKGROUND_IN_THREAD", raising=False)
    monkeypatch.setenv("ROUTER_IN_THREAD", "false")
    with pytest.warns(FutureWarning, match="ROUTER_IN_THREAD is deprecated; set BACKGROUND_IN"):
        in_thread = env_bool_renamed("BACKGROUND_IN_THREAD", old="ROUTER_IN_THREAD", default=True)
    assert in_thread is False


def test_the_new_name_wins_over_the_old_one(monkeypatch):
    monkeypatch.setenv("BACKGROUND_IN_THREAD", "false")
    monkeypatch.setenv("ROUTER_IN_THREAD", "true")
    with pytest.warns(FutureWarning, match="ignored: BACKGROUND_IN_THREAD is set"):
        assert env_bool_renamed("BACKGROUND_IN_THREAD", old="ROUTER_IN_THREAD") is False


def test_neither_name_gives_the_default(monkeypatch):
    monkeypatch.delenv("BACKGROUND_IN_THREAD", raising=False)
    monkeypatch.delenv("ROUTER_IN_THREAD", raising=False)
    assert env_bool_renamed("BACKGROUND_IN_THREAD", old="ROUTER_IN_THREAD", default=True) is True
