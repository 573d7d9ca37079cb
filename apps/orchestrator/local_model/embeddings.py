"""Sentence embeddings for the local model: all-MiniLM-L6-v2, int8 ONNX, through onnxruntime.

The model is built from the packaged weights by `embedder_build` (at install time by
`make venv`, or here on first use when it is missing); nothing is downloaded. A text is cut to
its first `MAX_CHARS` characters, tokenised (lower-cased WordPiece, tokenizer.json from the
package) and truncated to `WINDOW` tokens, so a 20,000-character message costs what a
128-token one does; each text is run alone (see _BATCH). The output is the mean of the last
hidden states over the real tokens, L2-normalised: 384 float32 numbers per text.

Whether the local model uses the tier is the setting `ROUTER_EMBEDDINGS` (default on; off, the
local model uses TF-IDF alone), read in one place: `apps.orchestrator.selectors.local_embedder`.
This module only says whether the embedder can be had (the model is there or can be built).
One session per process (one thread), created once under a lock; onnxruntime's `run` and the
tokenizer's `encode_batch` are safe to call from several threads.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

from apps.orchestrator.local_model import embedder_build

# all-MiniLM-L6-v2 was trained on inputs of at most 128 word pieces (its model card); its
# sentence-transformers config allows 256, which doubles the cost of a long message for text the
# model saw little of in training. Routing reads the opening of a message anyway.
WINDOW = 128
# 128 word pieces of any text that is not one long unbroken string fit well inside 2,048
# characters; cutting first keeps tokenising a huge message from costing milliseconds.
MAX_CHARS = 2048
DIMENSION = 384
# Identifies the vectors: a model trained on one graph's embeddings does not mix another's.
MODEL_ID = f"all-MiniLM-L6-v2/int8-onnx-g{embedder_build.GRAPH_VERSION}/window-{WINDOW}/no-markup"
# One intra-op thread: on this shared 2-core machine a 128-token text took p50 14.4 / p95 16.6 ms
# with 1 thread and p50 24.1 / p95 33.2 ms with 2 (another process busy on one core); several
# routing workers would oversubscribe the cores too.
_THREADS = 1
# One text per run: dynamic int8 quantisation scales activations over the whole batch (padding
# included), so in a batch of 32 CLINC150 texts a row's cosine to the same text run alone fell
# to 0.953 (0.989 on average). Training embeds one by one too, so it fits the head on the very
# vectors prediction sees; batches of 32 would save ~half the time (1.7 s vs 3.3 s for 1,000).
_BATCH = 1
# Markup says nothing about what a customer wants, and in a short message its word pieces
# outweigh the words ("<img src=x onerror=alert(1)> Please send me my invoice" read as no pool
# at all): tags are dropped before tokenising. TF-IDF still sees the whole text.
_MARKUP = re.compile(r"</?[A-Za-z][^<>]{0,500}>")

FloatArray = NDArray[np.float32]


class TextEmbedder(Protocol):
    """What the local model needs of an embedder."""

    model_id: str

    def embed(self, texts: Sequence[str]) -> FloatArray: ...


class Remembering:
    """An embedder that keeps every text's row while it lives: one retraining fits a candidate
    and a model per fold on mostly the same labels, and embeds each text once. Rows are the
    ones the wrapped embedder gives (each text is run alone, so a row does not depend on the
    texts embedded with it)."""

    def __init__(self, embedder: TextEmbedder) -> None:
        self._embedder = embedder
        self.model_id = embedder.model_id
        self._rows: dict[str, FloatArray] = {}

    def embed(self, texts: Sequence[str]) -> FloatArray:
        missing = [text for text in dict.fromkeys(texts) if text not in self._rows]
        if missing:
            for text, row in zip(missing, self._embedder.embed(missing), strict=True):
                self._rows[text] = row
        if not texts:
            return np.zeros((0, DIMENSION), dtype=np.float32)
        return np.stack([self._rows[text] for text in texts])


class Embedder:
    """Texts to normalised sentence embeddings (one ONNX session, thread-safe)."""

    def __init__(self, *, model_path: str, tokenizer_path: str, threads: int = _THREADS) -> None:
        import onnxruntime  # heavy: loaded only when the tier is used
        from tokenizers import Tokenizer

        tokenizer = Tokenizer.from_file(tokenizer_path)
        tokenizer.enable_truncation(max_length=WINDOW)
        tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")  # noqa: S106  # a token, no secret
        self._tokenizer = tokenizer
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        self._session = onnxruntime.InferenceSession(
            model_path, options, providers=["CPUExecutionProvider"]
        )
        self.model_id = MODEL_ID

    def encode(self, texts: Sequence[str]) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
        """Token ids and attention mask (batch x tokens, at most WINDOW tokens) for `texts`."""
        encodings = self._tokenizer.encode_batch(
            [_MARKUP.sub(" ", text[:MAX_CHARS]) for text in texts]
        )
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        return ids, mask

    def embed(self, texts: Sequence[str]) -> FloatArray:
        """One L2-normalised 384-number row per text."""
        out = np.zeros((len(texts), DIMENSION), dtype=np.float32)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        for start in range(0, len(order), _BATCH):
            rows = order[start : start + _BATCH]
            ids, mask = self.encode([texts[i] for i in rows])
            (output,) = self._session.run(["embedding"], {"input_ids": ids, "attention_mask": mask})
            out[rows] = output
        return out


_lock = threading.Lock()
_embedder: Embedder | None = None
_unavailable = False


def embedder() -> Embedder | None:
    """The process's embedder, or None when the model cannot be had. Callers that route ask
    `selectors.local_embedder()`, which also heeds ROUTER_EMBEDDINGS."""
    global _embedder, _unavailable  # one session per process
    if _unavailable:
        return None
    if _embedder is not None:
        return _embedder
    with _lock:
        if _embedder is None and not _unavailable:
            if embedder_build.ensure_built():
                _embedder = Embedder(
                    model_path=str(embedder_build.model_path()),
                    tokenizer_path=str(embedder_build.tokenizer_path()),
                )
            else:
                _unavailable = True
    return _embedder
