"""The ASGI entry point moves what it loaded out of the garbage collector's reach."""

import gc


def test_the_startup_heap_is_frozen():
    import supportdesk.asgi  # noqa: F401  (loading it freezes what it loaded)

    assert gc.get_freeze_count() > 0
