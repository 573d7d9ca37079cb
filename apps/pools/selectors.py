"""Read-side queries for pools."""

from django.db.models import QuerySet

from apps.pools.models import Pool


def pool_list(*, active_only: bool = True) -> QuerySet[Pool]:
    """Pools in display order, by default only those that can receive tickets."""
    pools = Pool.objects.all()
    return pools.filter(active=True) if active_only else pools
