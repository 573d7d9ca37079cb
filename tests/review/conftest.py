"""The orchestrator's fixtures (pools, the Messages API stand-in, the local model) for review
tests: reviews start where routing gives up."""

from tests.fakes.fixtures import messages_api  # noqa: F401  (a fixture)
from tests.orchestrator.conftest import llm, local_model, pools  # noqa: F401  (fixtures)
