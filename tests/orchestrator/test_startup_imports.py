"""A process starts without the heavy libraries it may never use.

The `anthropic` SDK and scikit-learn take about a second each to import, and every process
(each uvicorn, Celery worker and beat, each management command) imports the whole project
at start. Routing with a stored model needs neither: the SDK is loaded at start only where a
key says the model will be called, scikit-learn only where a model is fitted or a reply
suggested; a server also loads scikit-learn before it accepts a connection.
"""

import os
import subprocess
import sys

from tests.servers import ROOT, service_env

PROBE = (
    "import sys, django; django.setup(); {more}"
    "print(' '.join(name for name in ('anthropic', 'sklearn') if name in sys.modules))"
)


def loaded_at_start(*, server: bool = False, **env: str) -> set[str]:
    more = "import supportdesk.asgi; " if server else ""
    completed = subprocess.run(
        [sys.executable, "-c", PROBE.format(more=more)],
        cwd=ROOT,
        env=service_env(os.environ, DJANGO_SETTINGS_MODULE="supportdesk.settings.local", **env),
        check=True,
        capture_output=True,
        text=True,
    )
    return set(completed.stdout.split())


def test_a_process_without_a_key_imports_neither_the_sdk_nor_scikit_learn():
    assert loaded_at_start() == set()


def test_a_process_with_a_key_loads_the_sdk_at_start_not_in_its_first_routing_run():
    assert loaded_at_start(ANTHROPIC_API_KEY="sk-ant-test") == {"anthropic"}


def test_a_server_imports_scikit_learn_before_it_accepts_a_connection():
    # Else the first routed ticket's context imports it while every socket waits its turn.
    assert loaded_at_start(server=True) == {"sklearn"}
