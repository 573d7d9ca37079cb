from django.db import migrations

from apps.orchestrator.prompts.text import DEFAULT_FEW_SHOT, DEFAULT_PROMPT


def create_default_prompt(apps, schema_editor):
    PromptVersion = apps.get_model("orchestrator", "PromptVersion")
    if not PromptVersion.objects.filter(purpose="router").exists():
        PromptVersion.objects.create(
            purpose="router",
            text=DEFAULT_PROMPT,
            few_shot=DEFAULT_FEW_SHOT,
            note="default router prompt",
            active=True,
        )


class Migration(migrations.Migration):
    dependencies = [("orchestrator", "0001_initial")]
    operations = [migrations.RunPython(create_default_prompt, migrations.RunPython.noop)]
