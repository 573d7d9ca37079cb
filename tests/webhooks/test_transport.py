"""Where webhooks may go (apps/webhooks/transport.py): public addresses only unless the host is
allowed by name, checked at every attempt on the address actually connected to, no redirects,
and only a coarse reason stored. Deliveries go through the real sender to a real receiver on
127.0.0.1; endpoints are created directly, as a URL saved before the check existed or a name
whose DNS answer changed since would be."""

import ipaddress
import shutil
import socket
import ssl
import subprocess

import pytest

from apps.webhooks.models import WebhookDelivery, WebhookEndpoint
from apps.webhooks.services import webhook_event_emit
from apps.webhooks.transport import address_public
from tests.servers import free_port
from tests.webhooks.receiver import WebhookReceiver

pytestmark = pytest.mark.django_db
REFUSED = "refused: private address"


@pytest.fixture
def deliver(django_capture_on_commit_callbacks):
    def send(url: str) -> WebhookDelivery:
        WebhookEndpoint.objects.update(active=False)  # only this endpoint receives the event
        endpoint = WebhookEndpoint.objects.create(name="x", url=url, events=["ticket.resolved"])
        with django_capture_on_commit_callbacks(execute=True):
            webhook_event_emit(event="ticket.resolved", payload={"ticket": 7})
        return WebhookDelivery.objects.get(endpoint=endpoint)

    return send


@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1",
        "10.1.2.3",
        "169.254.169.254",  # cloud metadata
        "[::1]",
        "localhost",  # a name that resolves to loopback
        "0.0.0.0",  # noqa: S104  (reaches the local host on Linux)
        "[::ffff:127.0.0.1]",  # IPv4 loopback inside IPv6
        "100.64.0.1",  # carrier-grade NAT
        "224.0.0.1",
    ],
)
def test_internal_targets_are_refused_and_recorded_coarsely(settings, receiver, deliver, host):
    settings.WEBHOOK_ALLOWED_HOSTS = []
    settings.WEBHOOK_TIMEOUT_SECONDS = 0.5  # an unroutable address must not hold the test up
    delivery = deliver(f"http://{host}:{receiver.port}/hooks")
    assert (delivery.status, delivery.status_code, delivery.error) == ("pending", None, REFUSED)
    assert receiver.received == []


def test_the_allow_setting_lets_a_named_internal_host_receive(settings, receiver, deliver):
    settings.WEBHOOK_ALLOWED_HOSTS = ["LOCALHOST"]  # names compare in any case
    delivery = deliver(f"http://localhost:{receiver.port}/hooks")
    assert (delivery.status, delivery.status_code, delivery.error) == ("delivered", 200, "")
    [request] = receiver.received
    # Connected to the checked address, introduced by the URL's name.
    assert request.headers["host"] == f"localhost:{receiver.port}"
    assert request.json["type"] == "ticket.resolved"


def test_allowing_one_name_does_not_allow_another_for_the_same_address(settings, receiver, deliver):
    settings.WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1"]
    assert deliver(f"http://localhost:{receiver.port}/hooks").error == REFUSED
    assert receiver.received == []


def test_the_address_checked_is_the_address_connected_to(settings, receiver, deliver, monkeypatch):
    # DNS rebinding: the first answer is public, every later one is loopback. One lookup per
    # attempt, and the connection goes where that lookup pointed, never to the receiver.
    settings.WEBHOOK_ALLOWED_HOSTS = []
    settings.WEBHOOK_TIMEOUT_SECONDS = 0.5
    real_getaddrinfo = socket.getaddrinfo
    lookups: list[str] = []

    def rebinding(host, port, *args, **kwargs):
        if host != "rebind.example":
            return real_getaddrinfo(host, port, *args, **kwargs)
        lookups.append(host)
        address = "8.8.8.8" if len(lookups) == 1 else "127.0.0.1"
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))]

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    delivery = deliver(f"http://rebind.example:{receiver.port}/hooks")
    assert lookups == ["rebind.example"]
    assert receiver.received == []
    assert delivery.error in {"timeout", "connection refused", "connection failed"}


@pytest.fixture
def tls_receiver(tmp_path, monkeypatch):
    """An HTTPS receiver with a certificate for `localhost`, trusted through SSL_CERT_FILE."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("needs the openssl command to make a certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            *(openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
            *("-keyout", str(key), "-out", str(cert), "-subj", "/CN=localhost"),
            *("-addext", "subjectAltName=DNS:localhost"),
        ],
        check=True,
        capture_output=True,
    )
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    names: list[str | None] = []
    context.sni_callback = lambda sock, name, ctx: names.append(name)
    with WebhookReceiver(tls=context) as started:
        yield started, names


def test_https_goes_to_the_checked_address_with_the_names_sni_and_certificate(
    settings, tls_receiver, deliver
):
    receiver, server_names = tls_receiver
    settings.WEBHOOK_ALLOWED_HOSTS = ["localhost", "127.0.0.1"]
    delivery = deliver(f"https://localhost:{receiver.port}/hooks")
    assert (delivery.status, delivery.status_code) == ("delivered", 200)
    assert server_names == ["localhost"]
    assert receiver.received[0].headers["host"] == f"localhost:{receiver.port}"
    # The same server by its address: the certificate does not name it, so TLS fails.
    by_address = deliver(f"https://127.0.0.1:{receiver.port}/hooks")
    assert by_address.error == "TLS error"
    assert len(receiver.received) == 1


def test_redirects_are_not_followed(receiver, deliver):
    receiver.statuses.append(302)  # Location: /elsewhere, on the same receiver
    delivery = deliver(receiver.url)
    assert (delivery.status, delivery.status_code) == ("pending", 302)
    assert delivery.error == "HTTP 302 (redirects are not followed)"
    assert [r.path for r in receiver.received] == ["/hooks"]


def test_a_closed_port_is_recorded_without_the_sockets_message(receiver, deliver):
    port = free_port()
    delivery = deliver(f"http://127.0.0.1:{port}/nobody")
    assert delivery.error == "connection refused"
    for detail in ("Errno", "111", str(port), "ConnectionRefusedError"):
        assert detail not in delivery.error


def test_an_unknown_host_is_recorded_as_a_failed_lookup(settings, deliver):
    delivery = deliver("http://no-such-host.invalid/hooks")
    assert delivery.error == "DNS lookup failed"


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("8.8.8.8", True),
        ("2606:4700:4700::1111", True),
        ("127.0.0.1", False),
        ("10.0.0.1", False),
        ("172.16.0.1", False),
        ("192.168.1.1", False),
        ("169.254.169.254", False),
        ("100.64.0.1", False),
        ("0.0.0.0", False),  # noqa: S104
        ("224.0.0.1", False),
        ("240.0.0.1", False),
        ("255.255.255.255", False),
        ("::1", False),
        ("::", False),
        ("fe80::1", False),
        ("fc00::1", False),
        ("ff02::1", False),
        ("::ffff:10.0.0.1", False),
        ("2002:7f00:1::1", False),  # 6to4 of 127.0.0.1
    ],
)
def test_which_addresses_count_as_public(address, public):
    assert address_public(ipaddress.ip_address(address)) is public
