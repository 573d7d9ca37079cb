"""Settings shared by every profile; configuration comes from environment variables.

Embedded profile (no DATABASE_URL, no REDIS_URL): SQLite in WAL mode, in-memory channel layer,
local-memory cache, Celery tasks run in-process. Scale-out profile: set DATABASE_URL (PostgreSQL)
and REDIS_URL (channel layer, cache, Celery broker, rate limits). See .env.example.
"""

import os
import warnings
from pathlib import Path
from typing import Any

import dj_database_url
import django_stubs_ext
from csp.constants import NONE, SELF, UNSAFE_INLINE
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

# Lets `ModelAdmin[Pool]` and friends be subscripted at run time as in the stubs
# (DRF's classes are patched in apps.core.apps, once Django's settings exist).
django_stubs_ext.monkeypatch()

# WhiteNoise streams static files with a synchronous iterator; under ASGI Django warns on
# every file. The files are small and served from memory-mapped reads, so the warning is noise.
warnings.filterwarnings(
    "ignore", message="StreamingHttpResponse must consume synchronous iterators"
)

BASE_DIR = Path(__file__).resolve().parent.parent.parent


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_bool(name: str, *, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_bool_renamed(name: str, *, old: str, default: bool = False) -> bool:
    """`env_bool(name)`, still reading the deprecated `old` name (with a warning) when `name` is
    unset, so a deployment configured under the old name keeps working."""
    if os.environ.get(old) is not None:
        ignored = " and ignored: {name} is set" if os.environ.get(name) is not None else ""
        warnings.warn(
            f"{old} is deprecated{ignored.format(name=name)}; set {name} instead.",
            FutureWarning,
            stacklevel=2,
        )
        if os.environ.get(name) is None:
            return env_bool(old, default=default)
    return env_bool(name, default=default)


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return default if value in (None, "") else int(value)


def env_float(name: str, default: float) -> float:
    value = os.environ.get(name)
    return default if value in (None, "") else float(value)


def env_list(name: str, default: list[str]) -> list[str]:
    value = os.environ.get(name)
    if value is None:
        return default
    return [item.strip() for item in value.split(",") if item.strip()]


SECRET_KEY = env_str("SECRET_KEY", "insecure-embedded-profile-key-change-me")
# `seed_demo` may create its demo accounts (refused by production settings).
DEMO_SEED_ALLOWED = True
DEBUG = env_bool("DEBUG", default=False)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost"])

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "corsheaders",
    "csp",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "channels",
    "apps.core",
    "apps.pools",
    "apps.chat",
    "apps.tickets",
    "apps.orchestrator",
    "apps.review",
    "apps.desk",
    "apps.reports",
    "apps.webhooks",
    "apps.flows",  # no models: its routing tasks and commands (seed_demo, route_stuck)
]

MIDDLEWARE = [
    # First, so every log line of the request (other middleware's too) carries its id.
    "apps.core.middleware.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "corsheaders.middleware.CorsMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, so it sees the exceptions views raise (process_exception runs bottom-up).
    "apps.core.middleware.DependencyOutageMiddleware",
]

ROOT_URLCONF = "supportdesk.urls"
ASGI_APPLICATION = "supportdesk.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# Content-Security-Policy on every page (django-csp): scripts only from our own origin, so text
# that slipped past escaping still cannot run. Pages keep no inline script (data goes through
# json_script); inline styles are allowed (the widget styles its shadow root, Chart.js and the
# admin set style attributes), which lets no script run. The widget on other sites is under
# those sites' policies.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF, UNSAFE_INLINE],
        "img-src": [SELF, "data:", "blob:"],
        "connect-src": [SELF],  # the REST API and, in CSP 3 browsers, same-origin WebSockets
        "font-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    }
}

# Database: SQLite (WAL, immediate transactions so writers queue instead of failing) unless
# DATABASE_URL points elsewhere.
SQLITE_PATH = Path(env_str("SQLITE_PATH", str(BASE_DIR / "db.sqlite3")))
# Connections are kept between requests and consumer calls (reopening SQLite with its PRAGMAs
# cost ~7% of a chat message under load); health checks drop a dead PostgreSQL connection.
DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL", f"sqlite:///{SQLITE_PATH}"),
        conn_max_age=env_int("CONN_MAX_AGE", 60),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        # How long a writer waits for another to finish before the chat answers `unavailable`
        # (docs/operations.md): long enough for any write of ours, short enough to tell.
        "timeout": env_float("SQLITE_BUSY_TIMEOUT_SECONDS", 20.0),
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
# Attachments go through Django's storage API: files on disk here, any storage backend at scale
# (set STORAGES["default"] in production). They are never served from MEDIA_URL directly.
MEDIA_ROOT = Path(env_str("MEDIA_ROOT", str(BASE_DIR / "media")))
MEDIA_URL = "/media/"
LOGIN_URL = "/admin/login/"

# Redis: one URL switches the channel layer, cache, Celery broker and rate limits to Redis.
REDIS_URL = env_str("REDIS_URL")

if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {
                "hosts": [
                    {
                        "address": REDIS_URL,
                        # One immediate retry on a broken connection: pooled connections that a
                        # Redis restart left stale reconnect on first use instead of failing a
                        # send. A receive that Redis dropped during the restart still fails,
                        # and its sockets resync (apps/core/consumers.py).
                        "retry": Retry(NoBackoff(), 1),
                        # Above the layer's blocking receive (5 s): redis-py's default of 5 s
                        # made every idle receive time out, which read as an outage.
                        "socket_timeout": 15,
                        "socket_connect_timeout": 5,
                        # A connection per concurrent group operation: hundreds of sockets
                        # saying hello at once overran redis-py's default of 100.
                        "max_connections": env_int("CHANNEL_LAYER_MAX_CONNECTIONS", 1000),
                    }
                ],
                "capacity": 1000,
                "expiry": 30,
            },
        }
    }
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "apps.core.layers.LocalChannelLayer"}}
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# How often each ASGI process checks that Redis did not restart under its sockets (0: never).
CHANNEL_LAYER_WATCH_SECONDS = env_float("CHANNEL_LAYER_WATCH_SECONDS", 2.0)

# Celery: a Redis broker at scale; in the embedded profile tasks run in-process (eager).
CELERY_BROKER_URL = REDIS_URL or "memory://"
CELERY_RESULT_BACKEND = None
CELERY_TASK_ALWAYS_EAGER = not REDIS_URL
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# A worker killed mid-task: with acks_late its pool's parent sees the child die and requeues
# the message at once (reject_on_worker_lost); a whole worker that dies leaves it unacked in
# Redis until the visibility timeout. It must outlast the longest countdown (a webhook retry
# waits up to an hour) or Redis hands the message out twice. The stuck-ticket sweep bounds
# routing far sooner than that (docs/deploy.md).
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT_SECONDS", 2 * 3600)
}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# A ticket left in `routing` this long (its task was lost with Redis, or its worker died) is
# routed again by the sweep, which runs this often, at most once per this long per ticket;
# routing is idempotent (a row lock and a status check), so a sweep that races a slow worker
# routes the ticket once. Set it above the longest queue wait expected at peak: below that,
# queued tickets get duplicate tasks (cheap, see the lease below, but not free).
ROUTING_STUCK_AFTER_SECONDS = env_int("ROUTING_STUCK_AFTER_SECONDS", 120)
ROUTING_STUCK_SWEEP_SECONDS = env_int("ROUTING_STUCK_SWEEP_SECONDS", 60)
# A routing run holds its ticket this long: a duplicate task (the sweep's, while the ticket only
# waits in a long queue) returns at once instead of paying for the same model calls again. A run
# that outlives it still writes once (the row lock and status check); one whose worker died
# frees the ticket for the sweep when it runs out.
ROUTING_LEASE_SECONDS = env_int("ROUTING_LEASE_SECONDS", 60)
CELERY_BEAT_SCHEDULE = {
    "requeue-stuck-tickets": {
        "task": "apps.orchestrator.tasks.tickets_stuck_requeue_task",
        "schedule": float(ROUTING_STUCK_SWEEP_SECONDS),
    },
}
CELERY_BEAT_SCHEDULE |= {
    # Tickets of agents offline past the grace period go back to their pool's queue.
    "release-offline-agents": {
        "task": "apps.pools.tasks.agents_offline_release_task",
        "schedule": 15.0,
    },
    # First-response SLA breaches raise an event on the desk.
    "check-sla": {"task": "apps.pools.tasks.tickets_sla_check_task", "schedule": 15.0},
    # AI drafts whose worker died are failed, so the agent may ask again.
    "fail-stale-drafts": {"task": "apps.desk.tasks.drafts_stale_fail_task", "schedule": 60.0},
}
# Without a broker there is no `celery beat`: the ASGI process runs the schedule in a thread.
EMBEDDED_BEAT = env_bool("EMBEDDED_BEAT", default=not REDIS_URL)
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]

# Dry runs of `POST /api/v1/route/` per staff user (each may cost up to four model calls).
ROUTE_DRY_RUN_RATE = env_str("ROUTE_DRY_RUN_RATE", "30/minute")

# Customer chat limits.
CHAT_MAX_MESSAGE_CHARS = env_int("CHAT_MAX_MESSAGE_CHARS", 4000)
CHAT_MAX_FRAME_BYTES = env_int("CHAT_MAX_FRAME_BYTES", 64 * 1024)
CHAT_HELLO_TIMEOUT_SECONDS = env_int("CHAT_HELLO_TIMEOUT_SECONDS", 30)
CHAT_RATE_LIMIT = env_str("CHAT_RATE_LIMIT", "20/minute")
CHAT_TYPING_RATE_LIMIT = env_str("CHAT_TYPING_RATE_LIMIT", "30/minute")
# What one client address may hold on the sockets (chat and desk): new sockets a minute, over
# every process, and open sockets at once per process (apps/core/consumers.py). A customer
# behind an office's shared address counts with their colleagues: keep room for them.
SOCKET_CONNECT_RATE = env_str("SOCKET_CONNECT_RATE", "120/minute")
SOCKETS_PER_ADDRESS_MAX = env_int("SOCKETS_PER_ADDRESS_MAX", 50)
# A chat socket that heard nothing for this long reads its conversation's log once: an event
# stored by a process that died before publishing it still arrives (0: never).
CHAT_RESYNC_SECONDS = env_float("CHAT_RESYNC_SECONDS", 20.0)
# Frames a chat socket may send before its hello; past them it is closed (4401).
CHAT_MAX_FRAMES_BEFORE_HELLO = env_int("CHAT_MAX_FRAMES_BEFORE_HELLO", 3)
# Storage for `limits` (a kept rate-limit library): shared through Redis when scaled out.
RATE_LIMIT_STORAGE_URI = REDIS_URL or "memory://"
CHAT_ALLOWED_ORIGINS = env_list(
    "CHAT_ALLOWED_ORIGINS", [f"http://{host}:8000" for host in ALLOWED_HOSTS]
)
CORS_ALLOWED_ORIGINS = [origin for origin in CHAT_ALLOWED_ORIGINS if origin != "*"]
CORS_ALLOW_ALL_ORIGINS = "*" in CHAT_ALLOWED_ORIGINS
CORS_URLS_REGEX = r"^/api/v1/(conversations|attachments)/.*$"
CORS_ALLOW_HEADERS = ["authorization", "content-type"]


# Routing orchestrator. Without ANTHROPIC_API_KEY the LLM tiers are skipped: doubtful → review.
ANTHROPIC_API_KEY = env_str("ANTHROPIC_API_KEY")
ANTHROPIC_BASE_URL = env_str("ANTHROPIC_BASE_URL") or None
ROUTER_MODEL = env_str("ROUTER_MODEL", "claude-haiku-4-5")
ESCALATION_MODEL = env_str("ESCALATION_MODEL", "claude-sonnet-4-6")
ROUTER_ACCEPT_THRESHOLD = env_float("ROUTER_ACCEPT_THRESHOLD", 0.7)
ROUTER_REVIEW_THRESHOLD = env_float("ROUTER_REVIEW_THRESHOLD", 0.5)
# Used when no trained model version carries its own threshold.
ROUTER_LOCAL_THRESHOLD = env_float("ROUTER_LOCAL_THRESHOLD", 0.8)
ROUTER_CACHE_TTL_SECONDS = env_int("ROUTER_CACHE_TTL_SECONDS", 24 * 3600)
ROUTER_TIMEOUT_SECONDS = env_float("ROUTER_TIMEOUT_SECONDS", 10.0)
ROUTER_MAX_RETRIES = env_int("ROUTER_MAX_RETRIES", 2)
ROUTER_MAX_INPUT_CHARS = env_int("ROUTER_MAX_INPUT_CHARS", 8000)
# The local model's embedding tier (docs/orchestrator.md): off, training fits TF-IDF alone and
# prediction ignores a model version's embedding head.
ROUTER_EMBEDDINGS = env_bool("ROUTER_EMBEDDINGS", default=True)
# Mark the router's tools + system prompt as a prompt-cache prefix (cache reads bill at 10%).
ROUTER_PROMPT_CACHE = env_bool("ROUTER_PROMPT_CACHE", default=True)
# Tokens the cached prefix (tools + system prompt + the examples block) is filled to with the
# prompt version's labelled examples, as the API counts them (count_tokens, once per version,
# pool set and model: apps/orchestrator/prompts/prefix.py); by the estimate of 4 characters a
# token and 2.5% more when it cannot count. The API caches nothing shorter than the model's
# minimum (4,096 for Haiku 4.5); the 2.5% margin covers a count that is itself an estimate and
# costs $0.00001 a call at the cache-read price. 0: no filling.
ROUTER_PROMPT_PREFIX_TOKENS = env_int("ROUTER_PROMPT_PREFIX_TOKENS", 4200)
# Share of confident automatic routes also sampled (per tier) for a reviewer to audit.
REVIEW_AUDIT_SHARE = env_float("REVIEW_AUDIT_SHARE", 0.02)
# Seed for the audit draw, for reproducible benchmarks only: unset, the draw is unpredictable.
REVIEW_AUDIT_SEED: int | None = (
    int(os.environ["REVIEW_AUDIT_SEED"]) if os.environ.get("REVIEW_AUDIT_SEED") else None
)
# Background work (routing, the desk's context and drafts, webhook deliveries: every
# apps/core/background.py lane) runs in a thread of this process instead of going to Celery.
# On by default in the embedded profile, so a chat socket never waits for a model.
# ROUTER_IN_THREAD is its former, deprecated name: still read, with a warning.
BACKGROUND_IN_THREAD = env_bool_renamed(
    "BACKGROUND_IN_THREAD", old="ROUTER_IN_THREAD", default=not REDIS_URL
)
# Threads that route tickets in the embedded profile. A routing run mostly waits on the model
# (a quarter of a second to seconds), outside any transaction: with one thread, fifty new
# tickets would wait for each other's model calls. Their short writes take turns on SQLite.
ROUTING_THREADS = env_int("ROUTING_THREADS", 16)
# Embedded: work of a low-priority lane (the agent's context for a routed ticket) waits while
# other lanes have work (routing a burst of new tickets), at most this long after it was queued.
BACKGROUND_LOW_PRIORITY_DELAY_SECONDS = env_float("BACKGROUND_LOW_PRIORITY_DELAY_SECONDS", 2.0)
# Learning from corrections (docs/orchestrator.md): a retrained local model's threshold is the
# lowest confidence that keeps the share of wrong pools among its automatic routes at or below
# this on held-out labels; retraining waits for this many labels from people.
ROUTER_TARGET_MISROUTE_RATE = env_float("ROUTER_TARGET_MISROUTE_RATE", 0.02)
ROUTER_RETRAIN_MIN_LABELS = env_int("ROUTER_RETRAIN_MIN_LABELS", 10)
# Folds of people's labels predicted out of sample to choose the local threshold.
ROUTER_RETRAIN_FOLDS = env_int("ROUTER_RETRAIN_FOLDS", 3)
# Fewest labelled auto-routes a threshold may rest on (and never fewer than 1/target).
ROUTER_THRESHOLD_MIN_ROUTED = env_int("ROUTER_THRESHOLD_MIN_ROUTED", 30)
# LLM decisions at least this confident, on tickets nobody labelled, also teach the local
# model, each counting this much of a person's label (0 turns distillation off).
ROUTER_DISTILL_MIN_CONFIDENCE = env_float("ROUTER_DISTILL_MIN_CONFIDENCE", 0.85)
ROUTER_DISTILL_WEIGHT = env_float("ROUTER_DISTILL_WEIGHT", 0.3)
# The local tier's own routes that nobody moved count this much of a person's label in training
# (0: not at all). No threshold is chosen on them (see below).
ROUTER_UNMOVED_WEIGHT = env_float("ROUTER_UNMOVED_WEIGHT", 0.3)
# A fast start for new pools (docs/orchestrator.md): a retraining also gives a pool a threshold of
# its own when, on labels predicted out of sample (people's and the distilled LLM answers), its
# precision shrunk towards every pool's (as if ROUTER_POOL_PRIOR_STRENGTH more texts had theirs)
# reaches ROUTER_POOL_TARGET_PRECISION, at or above the lowest score (Prediction.score: the
# margin, with the neighbour gap where the model keeps its neighbours) where every pool's
# together reach ROUTER_FAST_START_PRECISION on at least ROUTER_FAST_START_MIN_ACCEPTED texts.
# The unmoved routes are left out of that sample: a model like the local tier agrees with its own
# answers, right or wrong (98.2-99.8% of them on the benchmark, where its routes were right
# 95.2-98.1%). Without them the sample errs low (it holds the mistakes agents moved, not the
# right routes, and a wrong LLM answer counts as the model's misroute), hence 0.93: the tier then
# routed at 96.1-97.5% on the benchmark's first 1,000 tickets (docs/benchmarks.md).
ROUTER_POOL_TARGET_PRECISION = env_float("ROUTER_POOL_TARGET_PRECISION", 0.93)
ROUTER_POOL_PRIOR_STRENGTH = env_float("ROUTER_POOL_PRIOR_STRENGTH", 5.0)
ROUTER_POOL_MIN_SUPPORT = env_int("ROUTER_POOL_MIN_SUPPORT", 0)
ROUTER_FAST_START_PRECISION = env_float("ROUTER_FAST_START_PRECISION", 0.93)
ROUTER_FAST_START_MIN_ACCEPTED = env_int("ROUTER_FAST_START_MIN_ACCEPTED", 20)
# Retraining as soon as the labels have grown by ROUTER_RETRAIN_GROWTH of what the last one
# learnt from (and by ROUTER_RETRAIN_NEW_LABELS at least): often while a deployment is new,
# seldom later. Beat checks every ROUTER_RETRAIN_CHECK_SECONDS.
ROUTER_RETRAIN_NEW_LABELS = env_int("ROUTER_RETRAIN_NEW_LABELS", 25)
ROUTER_RETRAIN_GROWTH = env_float("ROUTER_RETRAIN_GROWTH", 0.25)
ROUTER_RETRAIN_CHECK_SECONDS = env_float("ROUTER_RETRAIN_CHECK_SECONDS", 300.0)
CELERY_BEAT_SCHEDULE |= {
    # Daily: retrain the local model from new labels; activated only if no worse than the active.
    "retrain-router": {"task": "apps.review.tasks.router_retrain_task", "schedule": 24 * 3600.0},
    # Sooner when enough new labels arrived (a new deployment learns in its first hours).
    "retrain-router-when-due": {
        "task": "apps.review.tasks.router_retrain_when_due_task",
        "schedule": ROUTER_RETRAIN_CHECK_SECONDS,
    },
}

# The desk: presence, assignment and attachments.
# An agent whose last desk socket closed keeps their tickets this long (a reload or a flaky
# network must not reshuffle the queue), then they return to the pool's queue.
AGENT_OFFLINE_GRACE_SECONDS = env_int("AGENT_OFFLINE_GRACE_SECONDS", 120)
# Desk sockets send a heartbeat; an agent not heard from for this long counts as offline
# (covers a server process that died without closing its sockets).
AGENT_PRESENCE_TIMEOUT_SECONDS = env_int("AGENT_PRESENCE_TIMEOUT_SECONDS", 90)
ATTACHMENT_MAX_BYTES = env_int("ATTACHMENT_MAX_BYTES", 10 * 1024 * 1024)
ATTACHMENT_CONTENT_TYPES = ["image/png", "image/jpeg", "image/gif", "image/webp", "application/pdf"]
# Context gathered for the agent when a ticket is routed: each source gets this long.
DESK_CONTEXT_TIMEOUT_SECONDS = env_float("DESK_CONTEXT_TIMEOUT_SECONDS", 2.0)
# AI draft replies use the escalation model (only with ANTHROPIC_API_KEY).
DRAFT_MAX_TOKENS = env_int("DRAFT_MAX_TOKENS", 600)
DRAFT_TIMEOUT_SECONDS = env_float("DRAFT_TIMEOUT_SECONDS", 30.0)

# Outgoing webhooks (docs/webhooks.md): a failed delivery is retried after 30 s, 1 min, 2 min,
# ... (capped) until it has been tried WEBHOOK_MAX_ATTEMPTS times.
WEBHOOK_TIMEOUT_SECONDS = env_float("WEBHOOK_TIMEOUT_SECONDS", 5.0)
WEBHOOK_MAX_ATTEMPTS = env_int("WEBHOOK_MAX_ATTEMPTS", 8)
WEBHOOK_RETRY_BACKOFF_SECONDS = env_int("WEBHOOK_RETRY_BACKOFF_SECONDS", 30)
WEBHOOK_RETRY_BACKOFF_MAX_SECONDS = env_int("WEBHOOK_RETRY_BACKOFF_MAX_SECONDS", 3600)
# Webhooks go only to public addresses, except to these hosts (exact names or IP literals,
# comma-separated), for receivers inside the network on purpose (apps/webhooks/transport.py).
WEBHOOK_ALLOWED_HOSTS = env_list("WEBHOOK_ALLOWED_HOSTS", [])
CELERY_BEAT_SCHEDULE |= {
    # Alert rules judged over their rolling windows (docs/alerts.md).
    "evaluate-alerts": {"task": "apps.reports.tasks.alerts_evaluate_task", "schedule": 60.0},
    # Webhook deliveries whose retry is due (eager Celery cannot wait for a countdown).
    "retry-webhooks": {
        "task": "apps.webhooks.tasks.webhook_deliveries_retry_task",
        "schedule": 15.0,
    },
}

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAdminUser"],
    "DEFAULT_SCHEMA_CLASS": "apps.core.api.SchemaWithNestedNames",
    # Throttles count the address the server sees (apps/core/clients.py), never a client's
    # X-Forwarded-For: which proxy to believe is uvicorn's decision (--forwarded-allow-ips).
    "NUM_PROXIES": 0,
    # `limit`/`offset`, 50 rows by default and at most 200 a page (apps/core/pagination.py).
    "DEFAULT_PAGINATION_CLASS": "apps.core.pagination.Pagination",
    "PAGE_SIZE": 50,
    "EXCEPTION_HANDLER": "apps.core.api.exception_handler",
    "DEFAULT_THROTTLE_RATES": {
        "conversation_create": env_str("CONVERSATION_CREATE_RATE", "30/hour"),
    },
}

SPECTACULAR_SETTINGS = {
    "TITLE": "SupportDesk API",
    "DESCRIPTION": "Customer chat fallback and staff API. See docs/protocol.md for the WebSocket.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    # Swagger UI served from our own static files (no CDN: the docs work offline).
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # A decision's `action` appears in several components; name its enum once.
    "ENUM_NAME_OVERRIDES": {
        "DecisionActionEnum": "apps.orchestrator.models.RoutingDecision.Action"
    },
    # An id in a path is a row id: never negative (a path that no view matches is a 404).
    "PATH_CONVERTER_OVERRIDES": {"int": {"type": "integer", "minimum": 0}},
}

# Logs (docs/operations.md): LOG_FORMAT=json writes one JSON object per line (the default in
# production settings), `plain` is for people. Both carry the request id (X-Request-ID, or the
# Celery task id) and the ticket id being routed, added by the context filter.
LOG_FORMAT = env_str("LOG_FORMAT", "plain")
LOGGING: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"context": {"()": "apps.core.logging.ContextFilter"}},
    "formatters": {
        "plain": {
            "format": "%(asctime)s %(levelname)s %(name)s "
            "[request=%(request_id)s ticket=%(ticket_id)s client=%(client)s] %(message)s"
        },
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s %(ticket_id)s "
            "%(client)s",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
        },
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": LOG_FORMAT,
            # On the handler: a logger's own filters never see records from its child loggers.
            "filters": ["context"],
        }
    },
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {"django.channels.server": {"level": "WARNING"}},
}

# Prometheus `/metrics` (docs/operations.md): answered to clients in these networks (loopback by
# default) or to any client sending `Authorization: Bearer METRICS_TOKEN`. Counters of several
# processes are merged through PROMETHEUS_MULTIPROC_DIR (read from the environment by the client).
METRICS_TOKEN = env_str("METRICS_TOKEN")
METRICS_ALLOWED_NETWORKS = env_list("METRICS_ALLOWED_NETWORKS", ["127.0.0.0/8", "::1/128"])
