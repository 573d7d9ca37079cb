"""The desk's models keep their content types, and so their permissions (a group allowed to edit
canned replies still may) and their admin history: the rows named `pools` are renamed `desk`.

On a new database there is nothing to rename: content types are created after migrating."""

from django.db import migrations

MODELS = ("cannedreply", "draftreply", "internalnote", "ticketcontext")


def _rename(apps, schema_editor, *, old, new):
    ContentType = apps.get_model("contenttypes", "ContentType")
    db = schema_editor.connection.alias
    for model in MODELS:
        if ContentType.objects.using(db).filter(app_label=new, model=model).exists():
            continue
        ContentType.objects.using(db).filter(app_label=old, model=model).update(app_label=new)


def forwards(apps, schema_editor):
    _rename(apps, schema_editor, old="pools", new="desk")


def backwards(apps, schema_editor):
    _rename(apps, schema_editor, old="desk", new="pools")


class Migration(migrations.Migration):
    dependencies = [
        ("contenttypes", "0002_remove_content_type_name"),
        ("desk", "0001_initial"),
    ]

    operations = [migrations.RunPython(forwards, backwards)]
