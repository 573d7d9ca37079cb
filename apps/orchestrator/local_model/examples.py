"""Labels and the shipped seed examples the local model starts from."""

from __future__ import annotations

import csv
from pathlib import Path

OTHER = "other"

SEED_EXAMPLES_PATH = Path(__file__).resolve().parent.parent / "data" / "seed_examples.csv"


def seed_examples() -> list[tuple[str, str]]:
    """The shipped seed examples (text, pool) for the default pools and `other`."""
    with SEED_EXAMPLES_PATH.open(newline="", encoding="utf-8") as handle:
        return [(row["text"], row["pool"]) for row in csv.DictReader(handle)]
