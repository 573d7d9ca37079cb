from django.apps import AppConfig

from apps.pools.hooks import ticket_queued_listen


class DeskConfig(AppConfig):
    name = "apps.desk"
    label = "desk"
    verbose_name = "Agent desk"

    def ready(self) -> None:
        # The user model and the tasks' models exist once apps are ready.
        from apps.desk import signals
        from apps.desk.tasks import ticket_context_gather_enqueue

        signals.connect()
        # A ticket's context is gathered on every arrival in a queue (routed, reviewed, moved,
        # reopened): pools tells the desk, which it cannot import.
        ticket_queued_listen(ticket_context_gather_enqueue)
