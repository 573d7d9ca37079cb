"""In-process latency of each cheap routing tier and of the whole local path (no LLM).

Texts come from ../shared/data/bitext_support.csv when it is there (else the seed examples).
Target: the whole local path p95 <= 5 ms.

    .venv/bin/python bench/router_latency.py [--n 2000]
"""

import argparse
import csv
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench._common import django_in_process, timed  # noqa: E402
from tests.integration.load import percentile  # noqa: E402

django_in_process("sd-latency-", llm_standin=False)  # no key: the cheap tiers, never the LLM

from django.core.management import call_command  # noqa: E402

from apps.flows.demo import demo_seed  # noqa: E402
from apps.orchestrator import cache  # noqa: E402
from apps.orchestrator.local_model import seed_examples  # noqa: E402
from apps.orchestrator.models import RoutingRule  # noqa: E402
from apps.orchestrator.rules import rule_match  # noqa: E402
from apps.orchestrator.selectors import local_tier_active, rule_list_active  # noqa: E402
from apps.orchestrator.services import pipeline_build  # noqa: E402
from apps.orchestrator.validation import input_validate  # noqa: E402
from apps.pools.models import Pool  # noqa: E402


def load_texts(n: int) -> tuple[list[str], str]:
    path = ROOT.parent / "shared" / "data" / "bitext_support.csv"
    if path.exists():
        with path.open(newline="", encoding="utf-8") as handle:
            texts = [row["text"] for row in csv.DictReader(handle)]
        return texts[:n], str(path.name)
    return [text for text, _ in seed_examples()][:n], "seed examples"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=2000)
    args = parser.parse_args()
    call_command("migrate", verbosity=0)
    demo_seed()
    for n in range(20):
        RoutingRule.objects.create(
            name=f"rule {n}",
            kind="keyword",
            pattern=f"zz-keyword-{n}",
            pool=Pool.objects.get(slug="billing"),
        )
    texts, source = load_texts(args.n)
    local = local_tier_active()
    assert local is not None
    rules = rule_list_active()
    key = cache.decision_key(text="warm", prompt_version=1, pools=["billing"])
    cache.decision_set(key, {"pool": "billing", "confidence": 0.9})
    pipeline = pipeline_build(use_llm=False, write_cache=False)
    rows = [
        (
            "validation (redact + injection)",
            timed(texts, lambda t: input_validate(t, max_chars=8000), warm=50),
        ),
        ("rules (20 active)", timed(texts, lambda t: rule_match(t, rules), warm=50)),
        (
            "decision cache (key + get)",
            timed(
                texts,
                lambda t: cache.decision_get(
                    cache.decision_key(
                        text=t, prompt_version=1, pools=["billing", "refund", "technical"]
                    )
                ),
                warm=50,
            ),
        ),
        ("local model predict", timed(texts, local.classifier.predict, warm=50)),
        ("whole local path (pipeline.run)", timed(texts, pipeline.run, warm=50)),
    ]
    print(
        f"router latency, in-process, {len(texts)} texts from {source}, local v{local.version.pk}"
    )
    print(f"{'tier':34} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8}")
    for name, values in rows:
        p50, p95, p99 = (percentile(values, q) for q in (0.5, 0.95, 0.99))
        print(f"{name:34} {p50:>8.3f} {p95:>8.3f} {p99:>8.3f}")
    whole_p95 = percentile(rows[-1][1], 0.95)
    print(f"target: whole local path p95 <= 5 ms -> {'met' if whole_p95 <= 5 else 'NOT met'}")


if __name__ == "__main__":
    main()
