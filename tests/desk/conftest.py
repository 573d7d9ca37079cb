"""The pools, the staff (`desk`) and the channel layer of tests/pools/test_services.py, for the
desk's service tests; a module's own fixture of the same name wins."""

from tests.pools.test_services import desk, layer, pools  # noqa: F401  (fixtures)
