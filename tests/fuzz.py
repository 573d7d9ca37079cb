"""What the socket fuzz tests (tests/widget/test_socket_fuzz.py, tests/desk/test_socket_fuzz.py)
share: hypothesis's settings and the rate limits lifted. The frames they draw are in
tests/fakes/frames.py."""

import os

from django.test import override_settings
from hypothesis import HealthCheck, settings

FUZZ = settings(
    # Sized for CI (each test well under 30 s); FUZZ_EXAMPLES=2000 for a longer hunt.
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", "40")),
    deadline=None,
    database=None,  # nothing written into the checkout; a failure prints its reproduction
    print_blob=True,
    suppress_health_check=[
        # A test's data (conversations; pools, agent and tickets) is made once per test and
        # shared by its examples on purpose.
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)
# The fuzz sends many messages, typing frames and sockets a minute: no rate limit may answer.
LIMITS = override_settings(
    CHAT_RATE_LIMIT="100000/minute",
    CHAT_TYPING_RATE_LIMIT="100000/minute",
    SOCKET_CONNECT_RATE="100000/minute",
)
