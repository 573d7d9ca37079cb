from django.apps import AppConfig


class OrchestratorConfig(AppConfig):
    name = "apps.orchestrator"
    label = "orchestrator"
