from importlib import import_module

from django.apps import AppConfig
from django.conf import settings


class OrchestratorConfig(AppConfig):
    name = "apps.orchestrator"
    label = "orchestrator"

    def ready(self) -> None:
        # The `anthropic` SDK takes about a second to import, so it is loaded on first use
        # (apps/orchestrator/services.py); a process with a key will use it: load it now, at
        # start, not in the first customer's routing run.
        if settings.ANTHROPIC_API_KEY:
            import_module("apps.orchestrator.providers.anthropic")
