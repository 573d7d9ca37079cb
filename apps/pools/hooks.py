"""Who hears, after commit, that a ticket arrived in a pool's queue.

The desk registers its context gathering here when it is ready (apps/desk/apps.py): pools
cannot import the desk above it. This module imports no model, so an `AppConfig` may import it.
"""

from collections.abc import Callable

_queued_listeners: list[Callable[[int], None]] = []


def ticket_queued_listen(listener: Callable[[int], None]) -> None:
    """Call `listener(ticket_id)` after commit whenever a ticket arrives in a pool's queue."""
    if listener not in _queued_listeners:
        _queued_listeners.append(listener)


def ticket_queued_listeners() -> list[Callable[[int], None]]:
    """The listeners registered so far, in order."""
    return list(_queued_listeners)
