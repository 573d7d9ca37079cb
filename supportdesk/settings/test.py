"""Test settings: fast hashing, a file-backed SQLite test database, quiet logs."""

from pathlib import Path

from supportdesk.settings.base import *  # noqa: F403
from supportdesk.settings.base import BASE_DIR, DATABASES, LOGGING, REST_FRAMEWORK, env_str

DEBUG = False
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = True
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # A file, not :memory:, so live servers in other threads and processes share it.
    DATABASES["default"]["TEST"] = {
        "NAME": env_str("TEST_SQLITE_PATH", str(BASE_DIR / ".test-db.sqlite3"))
    }
LOGGING["root"]["level"] = "WARNING"
# Attachments written by tests stay out of the development media directory.
MEDIA_ROOT = Path(env_str("TEST_MEDIA_ROOT", str(BASE_DIR / ".test-media")))
# Tests route synchronously (eager Celery) so they can assert on the outcome at once.
BACKGROUND_IN_THREAD = False
EMBEDDED_BEAT = False
# Audit samples are random; tests that need them turn them on.
REVIEW_AUDIT_SHARE = 0.0
ANTHROPIC_API_KEY = ""
# Training and routing tests run on TF-IDF alone (fast, their figures fixed); the embedding
# tier's tests turn it on.
ROUTER_EMBEDDINGS = False
REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"] = {"conversation_create": "1000/minute"}
# Tests dry-run as the same user ids again and again; the throttle test sets its own rate.
ROUTE_DRY_RUN_RATE = "1000/minute"
