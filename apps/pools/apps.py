from django.apps import AppConfig


class PoolsConfig(AppConfig):
    name = "apps.pools"
    label = "pools"

    def ready(self) -> None:
        from apps.pools import signals  # the user model exists once apps are ready

        signals.connect()
