"""Labelled data for training and evaluating the router: CSV files with `text` and a label."""

import csv
from pathlib import Path

from apps.core.errors import ValidationFailed


def labelled_csv_read(
    path: str | Path, *, label_column: str = "pool", text_column: str = "text"
) -> list[tuple[str, str]]:
    """(text, label) rows of a CSV; rows with an empty text or label are skipped."""
    return [(text, label) for text, label in _csv_columns(path, [text_column, label_column])]


def intent_csv_read(
    path: str | Path, *, intent_column: str, pool_column: str, text_column: str = "text"
) -> list[tuple[str, str, str]]:
    """(text, intent, pool) rows of a CSV; rows with an empty cell among them are skipped."""
    return [
        (text, intent, pool)
        for text, intent, pool in _csv_columns(path, [text_column, intent_column, pool_column])
    ]


def _csv_columns(path: str | Path, wanted: list[str]) -> list[list[str]]:
    """The `wanted` cells (stripped) of each row of a CSV that has them all non-empty."""
    with Path(path).open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        columns = reader.fieldnames or []
        for column in wanted:
            if column not in columns:
                raise ValidationFailed(
                    f"{path}: no column {column!r} (columns: {', '.join(columns)})"
                )
        rows = []
        for row in reader:
            cells = [(row[column] or "").strip() for column in wanted]
            if all(cells):
                rows.append(cells)
    if not rows:
        raise ValidationFailed(f"{path}: no labelled rows")
    return rows
