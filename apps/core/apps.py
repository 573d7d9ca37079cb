import django_stubs_ext
from django.apps import AppConfig
from rest_framework import fields, serializers

# Let `Serializer[dict]` be subscripted at run time as in the stubs. Done at import of this
# module (during app loading, before any app's serializers are imported).
django_stubs_ext.monkeypatch(
    extra_classes=[
        serializers.Serializer,
        serializers.ModelSerializer,
        serializers.ListSerializer,
        fields.Field,
    ]
)


class CoreConfig(AppConfig):
    name = "apps.core"
    label = "core"
