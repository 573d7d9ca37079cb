"""The pools and the channel layer of tests/pools/test_services.py, for the tickets' tests; a
module's own fixture of the same name wins."""

from tests.pools.test_services import layer, pools  # noqa: F401  (fixtures)
