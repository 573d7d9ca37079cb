"""Production: everything from base, tightened. Secrets have no defaults here."""

import os

from django.core.exceptions import ImproperlyConfigured

from supportdesk.settings.base import *  # noqa: F403
from supportdesk.settings.base import LOGGING, env_bool, env_int

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
# No SECURE_PROXY_SSL_HEADER: Django would take X-Forwarded-Proto from anyone. uvicorn reads it
# only from the proxies it trusts (--proxy-headers --forwarded-allow-ips, docs/deploy.md) and
# sets the request's scheme, which is what Django's `is_secure()` reads under ASGI.
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", default=True)
# Health checks and Prometheus reach the processes directly over plain HTTP on loopback.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^metrics$"]
# One year, subdomains included, preload-ready: set SECURE_HSTS_SECONDS=0 only while TLS is
# being set up (docs/deploy.md).
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 365 * 24 * 3600)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", default=True)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
