from django.apps import AppConfig

from apps.core.metrics import collector_register


class ReportsConfig(AppConfig):
    name = "apps.reports"
    label = "reports"
    verbose_name = "Manager reports and alerts"

    def ready(self) -> None:
        from apps.reports.metrics import QueueCollector  # its models load once apps are ready

        collector_register(QueueCollector())
