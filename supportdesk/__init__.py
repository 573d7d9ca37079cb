"""SupportDesk project package: settings, ASGI/Celery entry points and URL routing."""

from supportdesk.celery import app as celery_app

__all__ = ["celery_app"]
