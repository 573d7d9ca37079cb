"""The page every list answers (REST_FRAMEWORK["DEFAULT_PAGINATION_CLASS"]).

Its own module: DRF imports the default pagination class while `rest_framework.generics` is
being imported, so this module may import nothing that imports generics (drf-spectacular's
AutoSchema, hence apps/core/api.py, does).
"""

from typing import Any

from rest_framework.pagination import LimitOffsetPagination

# The most rows one page holds, whatever `limit` asks: a list never answers more in one go.
MAX_PAGE_SIZE = 200


class Pagination(LimitOffsetPagination):
    """`limit`/`offset` pages (REST_FRAMEWORK["DEFAULT_PAGINATION_CLASS"]): PAGE_SIZE rows by
    default, at most MAX_PAGE_SIZE (a larger `limit` gives that many)."""

    max_limit = MAX_PAGE_SIZE

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        parameters: list[dict[str, Any]] = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.limit_query_param:
                parameter["description"] = (
                    f"Rows per page: {self.default_limit} by default, at most {self.max_limit} "
                    f"(a larger limit gives {self.max_limit})."
                )
        return parameters
