"""Labelled data for training and evaluating the router: CSV files with `text` and a label."""

import csv
from pathlib import Path

from apps.core.errors import ValidationFailed


def labelled_csv_read(
    path: str | Path, *, label_column: str = "pool", text_column: str = "text"
) -> list[tuple[str, str]]:
    """(text, label) rows of a CSV; rows with an empty text or label are skipped."""
    with Path(path).open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        columns = reader.fieldnames or []
        for column in (text_column, label_column):
            if column not in columns:
                raise ValidationFailed(
                    f"{path}: no column {column!r} (columns: {', '.join(columns)})"
                )
        rows = []
        for row in reader:
            text, label = (row[text_column] or "").strip(), (row[label_column] or "").strip()
            if text and label:
                rows.append((text, label))
    if not rows:
        raise ValidationFailed(f"{path}: no labelled rows")
    return rows
