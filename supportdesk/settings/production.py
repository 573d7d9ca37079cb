"""Production: everything from base, tightened. Secrets have no defaults here."""

import os

from django.core.exceptions import ImproperlyConfigured

from supportdesk.settings.base import *  # noqa: F403
from supportdesk.settings.base import LOGGING

DEBUG = False
if not os.environ.get("SECRET_KEY"):
    raise ImproperlyConfigured("SECRET_KEY must be set in production")
SECRET_KEY = os.environ["SECRET_KEY"]
if not os.environ.get("ALLOWED_HOSTS"):
    raise ImproperlyConfigured("ALLOWED_HOSTS must be set in production")
if os.environ.get("REVIEW_AUDIT_SEED"):
    raise ImproperlyConfigured("REVIEW_AUDIT_SEED makes audits predictable; not in production")
# seed_demo creates staff accounts (a superuser among them) with a published password.
DEMO_SEED_ALLOWED = False

# One JSON object per log line for the log shipper, unless LOG_FORMAT says otherwise.
LOG_FORMAT = os.environ.get("LOG_FORMAT", "json")
LOGGING["handlers"]["console"]["formatter"] = LOG_FORMAT

SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_HSTS_SECONDS = int(os.environ.get("SECURE_HSTS_SECONDS", "0"))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
