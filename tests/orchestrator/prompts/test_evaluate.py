"""evaluate_router compares prompt versions offline: the same labelled texts through the
whole pipeline once per version (the real SDK against the Messages API stand-in), figures
side by side."""

import csv
import json
from io import StringIO

import pytest
from django.core.cache import cache
from django.core.management import call_command
from django.core.management.base import CommandError

from apps.orchestrator import cache as decision_cache
from apps.orchestrator.models import PromptVersion
from apps.orchestrator.prompts.services import prompt_version_append
from tests.orchestrator.conftest import route_reply

pytestmark = pytest.mark.django_db

MARKER = "Money questions belong to billing."
ROWS = [
    ("Why was I charged twice this month?", "billing"),
    ("Please send me the invoice for March", "billing"),
    ("My card payment failed but the money left my account", "billing"),
    ("The app crashes when I upload a photo", "technical"),
]


@pytest.fixture(autouse=True)
def _clear_cache():
    cache.clear()


@pytest.fixture
def versions(pools) -> tuple[PromptVersion, PromptVersion]:
    a = PromptVersion.objects.get(purpose="router", active=True)
    b = prompt_version_append(
        text=a.text + "\n" + MARKER, few_shot=a.few_shot, parent=a, author=None
    )
    return a, b


def answer_by_prompt(body: dict):
    """Version B's marker makes the stand-in answer billing; without it, technical."""
    system = "".join(block["text"] for block in body["system"])
    return route_reply("billing" if MARKER in system else "technical", 0.95)


def data_file(tmp_path):
    path = tmp_path / "eval.csv"
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(("text", "pool"))
        writer.writerows(ROWS)
    return path


def evaluate(*args: str) -> str:
    out = StringIO()
    call_command("evaluate_router", *args, stdout=out, stderr=StringIO())
    return out.getvalue()


def test_two_prompt_versions_are_printed_side_by_side(pools, llm, versions, tmp_path):
    a, b = versions
    llm.default = answer_by_prompt

    output = evaluate(
        "--data",
        str(data_file(tmp_path)),
        "--prompt-version",
        str(a.pk),
        "--prompt-version",
        str(b.pk),
    )

    lines = output.splitlines()
    assert lines[0].split() == ["prompt", f"v{a.pk}", "prompt", f"v{b.pk}"]
    rows = {line[:26].strip(): line[26:].split() for line in lines[1:]}
    assert rows["texts"] == ["4", "4"]
    assert rows["accuracy"] == ["0.2500", "0.7500"]  # A right on 1 of 4, B on 3 of 4
    assert rows["LLM-call share"] == ["1.0000", "1.0000"]
    assert float(rows["cost per 1,000 tickets $"][0]) > 0
    assert "macro-F1" in rows
    assert {"latency p50 ms", "latency p95 ms", "F1 billing", "F1 technical"} <= set(rows)
    assert len(llm.message_requests) == 8  # every text asked once per version


def test_the_comparison_as_json_has_one_entry_per_version(pools, llm, versions, tmp_path):
    a, b = versions
    llm.default = answer_by_prompt
    # A cached answer for A's live traffic must not flatter A offline: the cache is not read.
    key = decision_cache.decision_key(text=ROWS[0][0], prompt_version=a.pk, pools=sorted(pools))
    decision_cache.decision_set(key, {"pool": "billing", "confidence": 0.99, "reason": "cached"})

    payload = json.loads(
        evaluate(
            "--data",
            str(data_file(tmp_path)),
            "--prompt-version",
            str(a.pk),
            "--prompt-version",
            str(b.pk),
            "--json",
        )
    )

    entries = payload["prompt_versions"]
    assert [entry["prompt_version"] for entry in entries] == [a.pk, b.pk]
    assert [entry["accuracy"] for entry in entries] == [0.25, 0.75]
    assert all(entry["tier_share"] == {"llm": 1.0} for entry in entries)
    assert all(entry["cost_per_1000_usd"] > 0 for entry in entries)
    assert all({"macro_f1", "latency_p50_ms", "latency_p95_ms"} <= set(entry) for entry in entries)


def test_one_prompt_version_keeps_the_usual_report(pools, llm, versions, tmp_path):
    _, b = versions
    llm.default = answer_by_prompt
    result = json.loads(
        evaluate("--data", str(data_file(tmp_path)), "--prompt-version", str(b.pk), "--json")
    )
    assert result["accuracy"] == 0.75
    assert result["n"] == 4


def test_an_unknown_prompt_version_is_refused(pools, versions, tmp_path):
    with pytest.raises(CommandError, match="no prompt version 999"):
        evaluate(
            "--data", str(data_file(tmp_path)), "--prompt-version", "999", "--prompt-version", "1"
        )
