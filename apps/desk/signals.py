"""The one change to a user that the desk must hear at once, wherever it is made (the admin's
user form saves the model directly, past our services): losing access."""

from typing import Any

from django.contrib.auth import get_user_model
from django.db.models.signals import post_save

from apps.desk.realtime import desk_access_revoked_publish


def _user_saved(sender: Any, instance: Any, created: bool, **_: Any) -> None:
    if not created and not (instance.is_active and instance.is_staff):
        desk_access_revoked_publish(user_id=instance.pk)


def connect() -> None:
    post_save.connect(_user_saved, sender=get_user_model(), dispatch_uid="desk-access-revoked")
