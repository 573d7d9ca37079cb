# RoutingDecision.final → ends_run and input_minimised → redacted: names that say what the
# columns hold. The index on (final, created_at) follows its column on both backends; only its
# name changes (RenameIndex: ALTER INDEX ... RENAME on PostgreSQL, no rebuild of the index
# of a large append-only table). The state drops the old index while the field is renamed and
# puts it back on the new field under its old name, so every step's state matches the database.

from django.db import migrations, models

OLD_INDEX = "orchestrato_final_711e04_idx"
NEW_INDEX = "orchestrato_ends_ru_834224_idx"


class Migration(migrations.Migration):
    dependencies = [
        ("orchestrator", "0007_alter_routingdecision_ticket"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.RemoveIndex(model_name="routingdecision", name=OLD_INDEX)],
        ),
        migrations.RenameField(model_name="routingdecision", old_name="final", new_name="ends_run"),
        migrations.RenameField(
            model_name="routingdecision", old_name="input_minimised", new_name="redacted"
        ),
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AddIndex(
                    model_name="routingdecision",
                    index=models.Index(fields=["ends_run", "created_at"], name=OLD_INDEX),
                )
            ],
        ),
        migrations.RenameIndex(model_name="routingdecision", new_name=NEW_INDEX, old_name=OLD_INDEX),
    ]
