"""`/healthz`: per-check status, 503 when a required dependency is down, no secrets."""

import pytest

from tests.servers import RedisServer, free_port

pytestmark = pytest.mark.django_db


def dead_redis_url() -> str:
    return f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there


def test_healthz_reports_each_check_ok_in_the_embedded_profile(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    # Tasks run in-process here: there is no broker to check.
    assert set(body["checks"]) == {"database", "cache", "channel_layer"}
    assert all(check["status"] == "ok" for check in body["checks"].values())
    assert all(check["ms"] >= 0 for check in body["checks"].values())


def test_healthz_is_503_when_the_cache_is_down_and_names_no_host(client, settings):
    url = dead_redis_url()
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": url}
    }
    response = client.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "error"
    assert body["checks"]["cache"]["status"] == "error"
    assert body["checks"]["database"]["status"] == "ok"
    assert url.split("//")[1].split("/")[0] not in response.content.decode()


def test_healthz_is_503_when_the_channel_layer_is_down(client, settings):
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [dead_redis_url()]},
        }
    }
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["checks"]["channel_layer"]["status"] == "error"
    assert response.json()["checks"]["cache"]["status"] == "ok"


def test_healthz_checks_the_broker_when_tasks_go_through_one(client, settings):
    settings.CELERY_TASK_ALWAYS_EAGER = False
    settings.CELERY_BROKER_URL = dead_redis_url()
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["checks"]["broker"]["status"] == "error"


def test_healthz_answers_only_get(client):
    assert client.post("/healthz").status_code == 405


@pytest.fixture
def redis_server():
    server = RedisServer()
    server.start()
    yield server
    server.stop()


@pytest.mark.scale
def test_healthz_is_200_with_cache_channel_layer_and_broker_on_a_real_redis(
    client, settings, redis_server
):
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": redis_server.url,
        }
    }
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [redis_server.url]},
        }
    }
    settings.CELERY_TASK_ALWAYS_EAGER = False
    settings.CELERY_BROKER_URL = redis_server.url
    response = client.get("/healthz")
    assert response.status_code == 200, response.content
    checks = response.json()["checks"]
    assert {name: check["status"] for name, check in checks.items()} == {
        "database": "ok",
        "cache": "ok",
        "channel_layer": "ok",
        "broker": "ok",
    }
