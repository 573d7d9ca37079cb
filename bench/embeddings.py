"""The embedding tier: accuracy and latency of the local model with and without embeddings.

Accuracy at full coverage (every message gets the model's top label, no threshold):
- CLINC150, 150 intents: trained on `train` (15,000), scored on `test` (4,500 in-scope);
- Bitext, pools: 80/20 split stratified on `pool` (as bench/router_accuracy.py), trained on the 80%.
One model is trained with the embedder; "without" is the same artifact loaded without it, i.e.
the same SVM on TF-IDF alone (what ROUTER_EMBEDDINGS=off gives). The chosen weight w is printed.
Then what the nearest labelled texts (neighbours.py) cost on the same models: the artifact's
size with and without them, and predict() on 500 test texts with and without them.

Latency: the whole local path (pipeline.run without the LLM, as bench/router_latency.py) on
Bitext messages and on 2,000-character messages, with the tier on and off, on the demo model
(seed examples). Targets: p95 <= 20 ms with embeddings, <= 2 ms without.

    .venv/bin/python bench/embeddings.py [--n 500] [--skip-accuracy] [--skip-latency]
"""

import argparse
import csv
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench._common import django_in_process, timed  # noqa: E402
from tests.integration.load import percentile  # noqa: E402

django_in_process("sd-embeddings-", llm_standin=False)

from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402

from apps.flows.demo import demo_seed  # noqa: E402
from apps.orchestrator import selectors  # noqa: E402
from apps.orchestrator.local_model import LocalClassifier, embeddings  # noqa: E402
from apps.orchestrator.services import pipeline_build  # noqa: E402

DATA = ROOT.parent / "shared" / "data"


def accuracy_pair(
    name: str, train: list[tuple[str, str]], test: list[tuple[str, str]]
) -> tuple[str, float, float, float, float]:
    embedder = embeddings.embedder()
    assert embedder is not None, "the embedding model is not installed (make venv)"
    started = time.perf_counter()
    mixed = LocalClassifier.train(
        texts=[t for t, _ in train], labels=[label for _, label in train], embedder=embedder
    )
    seconds = time.perf_counter() - started
    alone = LocalClassifier.from_bytes(mixed.to_bytes())
    texts, labels = [t for t, _ in test], [label for _, label in test]
    neighbour_costs.append((name, *neighbour_cost(mixed, texts[:500])))

    def accuracy(model: LocalClassifier) -> float:
        predictions = model.predict_many(texts)
        return sum(p.label == y for p, y in zip(predictions, labels, strict=True)) / len(labels)

    return name, accuracy(alone), accuracy(mixed), mixed.embedding_weight, seconds


neighbour_costs: list[tuple[str, int, int, list[float], list[float]]] = []


def neighbour_cost(
    model: LocalClassifier, texts: list[str]
) -> tuple[int, int, list[float], list[float]]:
    """The neighbours' share of a model: artifact bytes with and without them, and predict()
    in ms with them and without (the same model told not to use them)."""
    embedder = embeddings.embedder()
    data = model.to_bytes()
    plain = LocalClassifier.from_bytes(data, embedder=embedder)
    plain._gaps = False  # the margin alone, the same SVM, head and embeddings
    plain._neighbours = None
    with_them = LocalClassifier.from_bytes(data, embedder=embedder)
    return (
        len(data),
        len(plain.to_bytes()),
        timed(texts, with_them.predict, warm=30),
        timed(texts, plain.predict, warm=30),
    )


def accuracy_runs() -> None:
    clinc = json.loads((DATA / "clinc150_data_full.json").read_text(encoding="utf-8"))
    with (DATA / "bitext_support.csv").open(newline="", encoding="utf-8") as handle:
        bitext = [(row["text"], row["pool"]) for row in csv.DictReader(handle)]
    bitext_train, bitext_test = train_test_split(
        bitext, test_size=0.2, stratify=[pool for _, pool in bitext], random_state=0
    )
    runs = [
        accuracy_pair(
            "CLINC150, 150 intents (train -> test)",
            [(t, y) for t, y in clinc["train"]],
            [(t, y) for t, y in clinc["test"]],
        ),
        accuracy_pair("Bitext, pools (80/20 stratified)", bitext_train, bitext_test),
    ]
    print("accuracy at full coverage, TF-IDF alone vs averaged with embeddings")
    print(f"{'data':40} {'TF-IDF':>8} {'+ emb':>8} {'w':>5} {'train s':>8}")
    for name, alone, mixed, weight, seconds in runs:
        print(f"{name:40} {alone:>8.2%} {mixed:>8.2%} {weight:>5.1f} {seconds:>8.1f}")
    print("\nnearest labelled texts (neighbours.py): artifact size, predict() on 500 test texts")
    print(f"{'data':40} {'MB with':>8} {'without':>8} {'p50 ms':>14} {'p95 ms':>14}")
    for name, size, size_without, timed_with, timed_without in neighbour_costs:
        p50 = f"{percentile(timed_with, 0.5):.3f}/{percentile(timed_without, 0.5):.3f}"
        p95 = f"{percentile(timed_with, 0.95):.3f}/{percentile(timed_without, 0.95):.3f}"
        print(f"{name:40} {size / 1e6:>8.2f} {size_without / 1e6:>8.2f} {p50:>14} {p95:>14}")
    print("(p50/p95: with the neighbours / without them)")


def latency_runs(n: int) -> None:
    call_command("migrate", verbosity=0)
    settings.ROUTER_EMBEDDINGS = True
    demo_seed()  # trains the demo model with the tier on
    with (DATA / "bitext_support.csv").open(newline="", encoding="utf-8") as handle:
        short = [row["text"] for row in csv.DictReader(handle)][:n]
    filler = "My invoice shows a charge I do not recognise and the app logs me out. "
    long = [f"{i} {filler * 30}"[:2000] for i in range(max(n // 5, 50))]
    rows = []
    for tier_on in (True, False):
        settings.ROUTER_EMBEDDINGS = tier_on
        local = selectors.local_tier_active()
        assert local is not None
        assert local.classifier.uses_embeddings == tier_on
        pipeline = pipeline_build(use_llm=False, write_cache=False)
        label = "on " if tier_on else "off"
        rows.append(
            (
                f"local model predict, embeddings {label}",
                timed(short, local.classifier.predict, warm=30),
            )
        )
        rows.append((f"whole local path, embeddings {label}", timed(short, pipeline.run, warm=30)))
        rows.append(
            (f"  2,000-char messages, embeddings {label}", timed(long, pipeline.run, warm=30))
        )
        rows.append(
            (
                f"  2,000-char, local model predict {label}",
                timed(long, local.classifier.predict, warm=30),
            )
        )
    weight = selectors.local_tier_active().classifier.embedding_weight  # type: ignore[union-attr]
    print(
        f"\nlatency, in-process, {len(short)} Bitext texts / {len(long)} long ones; "
        f"demo model w={weight}"
    )
    print(f"{'path':42} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8}")
    for name, values in rows:
        p50, p95, p99 = (percentile(values, q) for q in (0.5, 0.95, 0.99))
        print(f"{name:42} {p50:>8.3f} {p95:>8.3f} {p99:>8.3f}")
    on_p95, off_p95 = percentile(rows[1][1], 0.95), percentile(rows[5][1], 0.95)
    print(
        "target: whole local path p95 <= 20 ms with embeddings -> "
        + ("met" if on_p95 <= 20 else "NOT met")
    )
    print(f"target: whole local path p95 <= 2 ms without -> {'met' if off_p95 <= 2 else 'NOT met'}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=500)
    parser.add_argument("--skip-accuracy", action="store_true")
    parser.add_argument("--skip-latency", action="store_true")
    args = parser.parse_args()
    if not args.skip_latency:
        latency_runs(args.n)
    if not args.skip_accuracy:
        accuracy_runs()


if __name__ == "__main__":
    main()
