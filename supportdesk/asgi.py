"""ASGI entry point: HTTP through Django, WebSockets through Channels."""

import gc
import os

from django.core.asgi import get_asgi_application

# A server that was not told which settings to use runs production's, which refuse to start
# without SECRET_KEY and ALLOWED_HOSTS, never local's (DEBUG on, a published SECRET_KEY).
# `make run` and the test and benchmark servers name supportdesk.settings.local explicitly.
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "supportdesk.settings.production")
# Django must be set up before importing consumers (they import models).
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.conf import settings  # noqa: E402

from apps.core.bodylimit import RequestBodyLimit  # noqa: E402
from apps.core.scheduler import EmbeddedBeat  # noqa: E402
from apps.desk.similarity import similarity_warm  # noqa: E402
from supportdesk.routing import websocket_urlpatterns  # noqa: E402

# What the first routed ticket would import while every socket waits (scikit-learn, for the
# agent's context), imported before the server accepts a connection. Celery workers and
# management commands never load this module and start without it.
similarity_warm()

if settings.EMBEDDED_BEAT:
    EmbeddedBeat(settings.CELERY_BEAT_SCHEDULE).start()

application = ProtocolTypeRouter(
    {
        # Bodies over their limit are refused before Django reads (and spools) them.
        "http": RequestBodyLimit(django_asgi_app),
        # Origins are checked by each consumer so that a refusal is an error frame, not a bare 403.
        "websocket": AuthMiddlewareStack(URLRouter(websocket_urlpatterns)),
    }
)

# Everything loaded so far (Django, the apps, the model) lives as long as the process: moved out
# of the collector's reach, it is no longer walked by every full collection, which paused the
# event loop and the database thread for over 100 ms at a time under a steady chat load.
gc.freeze()
