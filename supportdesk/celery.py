"""Celery application: configured from Django settings (CELERY_*), tasks found in apps."""

import os

from celery import Celery

# A server that was not told which settings to use runs production's, which refuse to start
# without SECRET_KEY and ALLOWED_HOSTS, never local's (DEBUG on, a published SECRET_KEY).
# `make run` and the test and benchmark servers name supportdesk.settings.local explicitly.
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "supportdesk.settings.production")

app = Celery("supportdesk")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
