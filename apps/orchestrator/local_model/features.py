"""Features of the local model: text cut into the four TF-IDF blocks (see the package docstring)."""

from __future__ import annotations

import itertools
import re
import unicodedata
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import sparse

_MAX_CHARS = 1000
_PAIR_WORDS = 24
_SUFFIXES = ("ing", "edly", "ed", "ies", "es", "s", "ly")
_TOKEN = re.compile(r"\w+")
_LONG_NUMBER = re.compile(r"\d{4,}")
FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]


def _stem(word: str) -> str:
    if not word.endswith(_SUFFIXES):
        return word
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)]
    return word


def _word_grams(words: list[str]) -> list[str]:
    stems = [_stem(word) for word in words]
    return stems + [f"{a} {b}" for a, b in itertools.pairwise(stems)]


def _pair_grams(words: list[str]) -> list[str]:
    distinct = sorted(list(dict.fromkeys(words))[:_PAIR_WORDS])
    return [f"{a}|{b}" for i, a in enumerate(distinct) for b in distinct[i + 1 :]]


def _word_char_grams(words: list[str]) -> list[str]:
    padded = [f" {word} " for word in words]
    return [
        word[i : i + n]
        for word in padded
        for n in range(1, min(5, len(word)) + 1)
        for i in range(len(word) - n + 1)
    ]


def _char_grams(words: list[str]) -> list[str]:
    joined = f" {' '.join(words)} "
    return [joined[i : i + n] for n in range(2, 7) for i in range(len(joined) - n + 1)]


# (extractor, minimum document frequency) per feature block, in matrix column order.
BLOCKS: tuple[tuple[Callable[[list[str]], list[str]], int], ...] = (
    (_word_grams, 1),
    (_pair_grams, 2),
    (_word_char_grams, 2),
    (_char_grams, 2),
)


def text_words(text: str) -> list[str]:
    text = unicodedata.normalize("NFKC", text[:_MAX_CHARS]).lower()
    return _TOKEN.findall(_LONG_NUMBER.sub("0000", text))


def fit_features(texts: Sequence[str]) -> tuple[list[dict[str, int]], FloatArray, Any]:
    """Build the vocabularies and idf from the texts, and their TF-IDF matrix."""
    n = len(texts)
    provisional: list[dict[str, int]] = [{} for _ in BLOCKS]
    rows: list[list[tuple[IntArray, FloatArray]]] = [[] for _ in BLOCKS]
    for text in texts:
        words = text_words(text)
        for (extract, _), vocabulary, block_rows in zip(BLOCKS, provisional, rows, strict=True):
            counts = Counter(extract(words))
            ids = np.fromiter(
                (vocabulary.setdefault(gram, len(vocabulary)) for gram in counts),
                dtype=np.int64,
                count=len(counts),
            )
            block_rows.append((ids, np.fromiter(counts.values(), np.float64, len(counts))))
    vocabularies: list[dict[str, int]] = []
    idfs: list[FloatArray] = []
    blocks: list[Any] = []
    offset = 0
    for (_, min_df), vocabulary, block_rows in zip(BLOCKS, provisional, rows, strict=True):
        ids = np.concatenate([ids for ids, _ in block_rows])
        tf = 1.0 + np.log(np.concatenate([counts for _, counts in block_rows]))
        df = np.bincount(ids, minlength=len(vocabulary))
        keep = df >= min_df
        final = np.where(keep, np.cumsum(keep) - 1, -1)
        vocabularies.append(
            {gram: offset + int(final[i]) for gram, i in vocabulary.items() if keep[i]}
        )
        idf = np.log((1.0 + n) / (1.0 + df[keep])) + 1.0
        idfs.append(idf)
        columns = final[ids]
        kept = columns >= 0
        row_of = np.repeat(np.arange(n), [len(row_ids) for row_ids, _ in block_rows])
        indptr = np.zeros(n + 1, dtype=np.int64)
        indptr[1:] = np.cumsum(np.bincount(row_of[kept], minlength=n))
        block = sparse.csr_matrix(
            (tf[kept] * idf[columns[kept]], columns[kept], indptr), shape=(n, len(idf))
        )
        norms = np.sqrt(np.asarray(block.multiply(block).sum(axis=1)).ravel())
        norms[norms == 0] = 1.0
        blocks.append(sparse.diags(1.0 / norms) @ block)
        offset += len(idf)
    matrix = sparse.hstack(blocks, format="csr")
    return vocabularies, np.concatenate(idfs), matrix
