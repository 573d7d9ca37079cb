"""Write-side operations for pools."""

from django.db import transaction

from apps.pools.models import Pool


@transaction.atomic
def pool_upsert(
    *, slug: str, name: str, description: str, required_fields: list[str] | None = None
) -> Pool:
    """Create the pool `slug` or update its name, description and required fields."""
    pool, _created = Pool.objects.update_or_create(
        slug=slug,
        defaults={
            "name": name,
            "description": description,
            "required_fields": list(required_fields or []),
        },
    )
    pool.full_clean()
    return pool
