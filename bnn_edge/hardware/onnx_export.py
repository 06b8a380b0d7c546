"""The trained network as a standard ONNX graph (onnxruntime) or a QONNX graph (FINN, qonnx).

The graph is built node by node from the network's module sequence (``features`` then
``classifier``, as in :class:`~bnn_edge.models.spec.SpecNet` and
:class:`~bnn_edge.models.mobilenet.MobileNetV1`), so that every convention of the project
holds exactly; docs/export.md is the contract:

- binary weights are stored as exact +-1 (``format=onnx``) or as +-1 behind a QONNX
  ``BipolarQuant`` node (``format=qonnx``);
- the sign is +1 at 0: ``Where(GreaterOrEqual(x, 0), 1, -1)`` in ONNX (whose own ``Sign``
  gives 0 at 0), ``BipolarQuant(x, 1)`` in QONNX (``x >= 0 -> +1``, the same convention);
- the binary FC layers of the classifier are folded as in the native export
  (:func:`~bnn_edge.hardware.packed.fold.fold_classifier`): a hidden layer is
  ``sign(s * d - s * threshold)`` with ``s = -1`` where ``flip``, the last one
  ``scale * d + offset``, with d the +-1 dot product;
- a batch norm whose output reaches a sign through hardtanh or flatten only (the conv
  blocks of ``binarize=full``, the last conv block of ``binarize=classifier``) folds with
  that sign into a per-channel float32 threshold found by evaluating PyTorch's own batch
  norm (:func:`sign_thresholds`): the bits then do not depend on how a runtime rounds
  batch norm, which flipped signs next to 0 when it was exported as such;
- every other batch norm is an ONNX ``BatchNormalization`` (inference form); dropout is
  the identity and is left out.

Building the graph ourselves, rather than tracing with ``torch.onnx.export``, is what
stores the binary weights as +-1 constants instead of latent weights with the sign
recomputed in the graph, folds batch norm and sign as the contract does, and emits the
same structure with QONNX quantisation nodes.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from torch import nn

from bnn_edge.errors import BnnEdgeError
from bnn_edge.hardware.packed.fold import FoldedLayer, fold_classifier, integer_thresholds
from bnn_edge.models import layers_of, probe
from bnn_edge.nn import BinaryLayer, SignActivation, binary_layers, binary_sign

FORMATS = {"onnx": "bnn_edge-onnx-1", "qonnx": "bnn_edge-qonnx-1"}
MODEL_FILES = {"onnx": "model.onnx", "qonnx": "model_qonnx.onnx"}
OPSET = 13
IR_VERSION = 8  # read by onnxruntime >= 1.10 and by qonnx's tools
QONNX_DOMAIN = "qonnx.custom_op.general"
INPUT, OUTPUT = "input", "logits"


class _Graph:
    """Nodes and initializers of the graph being built; one fresh tensor name per output."""

    def __init__(self, qonnx: bool):
        from onnx import numpy_helper

        self._to_tensor = numpy_helper.from_array
        self.qonnx = qonnx
        self.nodes, self.initializers, self._count = [], [], 0
        self.sign_thresholds: list[str] = []  # batch norms folded with their sign

    def name(self, stem: str) -> str:
        self._count += 1
        return f"{stem}_{self._count}"

    def const(self, stem: str, value) -> str:
        name = self.name(stem)
        self.initializers.append(self._to_tensor(np.asarray(value), name))
        return name

    def op(self, op_type: str, inputs: list[str], stem: str, domain: str = "", **attrs) -> str:
        from onnx import helper

        out = self.name(stem)
        self.nodes.append(helper.make_node(op_type, inputs, [out], name=f"{stem}/{op_type}"
                                           f"_{self._count}", domain=domain or None, **attrs))
        return out

    def sign(self, x: str, stem: str) -> str:
        """+-1 with sign(0) = +1."""
        if self.qonnx:
            return self.op("BipolarQuant", [x, self.const(f"{stem}.scale", np.float32(1))],
                           stem, domain=QONNX_DOMAIN)
        ge = self.op("GreaterOrEqual", [x, self.const(f"{stem}.zero", np.float32(0))], stem)
        return self.op("Where", [ge, self.const(f"{stem}.plus", np.float32(1)),
                                 self.const(f"{stem}.minus", np.float32(-1))], stem)

    def binary_weight(self, stem: str, w: np.ndarray) -> str:
        """Exact +-1 weights; in QONNX behind a BipolarQuant that marks them bipolar."""
        name = self.const(f"{stem}.weight", w.astype(np.float32))
        if not self.qonnx:
            return name
        return self.op("BipolarQuant", [name, self.const(f"{stem}.weight_scale", np.float32(1))],
                       f"{stem}.weight", domain=QONNX_DOMAIN)


def _pair(value, dim: int) -> list[int]:
    return list(value) if isinstance(value, tuple | list) else [int(value)] * dim


def _f32(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().numpy().astype(np.float32)


def _conv(g: _Graph, x: str, m: nn.Conv1d | nn.Conv2d, stem: str) -> str:
    dim = m.weight.dim() - 2
    if isinstance(m.padding, str):
        raise BnnEdgeError(f"{stem}: string padding {m.padding!r} is not exported")
    if m.padding_mode != "zeros":
        raise BnnEdgeError(f"{stem}: padding_mode={m.padding_mode!r} is not exported")
    if isinstance(m, BinaryLayer):
        w = g.binary_weight(stem, binary_sign(m.weight.detach()).cpu().numpy())
    else:
        w = g.const(f"{stem}.weight", _f32(m.weight))
    inputs = [x, w] + ([g.const(f"{stem}.bias", _f32(m.bias))] if m.bias is not None else [])
    pads = _pair(m.padding, dim)
    return g.op("Conv", inputs, stem, kernel_shape=_pair(m.kernel_size, dim),
                strides=_pair(m.stride, dim), pads=pads + pads,
                dilations=_pair(m.dilation, dim), group=m.groups)


def _pool(g: _Graph, x: str, m: nn.Module, stem: str) -> str:
    dim = 1 if isinstance(m, nn.MaxPool1d | nn.AvgPool1d) else 2
    stride = m.stride if m.stride is not None else m.kernel_size
    pads = _pair(m.padding, dim)
    if getattr(m, "ceil_mode", False) or (isinstance(m, nn.MaxPool1d | nn.MaxPool2d)
                                          and _pair(m.dilation, dim) != [1] * dim):
        raise BnnEdgeError(f"{stem}: ceil_mode and dilated pooling are not exported")
    attrs = {"kernel_shape": _pair(m.kernel_size, dim), "strides": _pair(stride, dim),
             "pads": pads + pads}
    if isinstance(m, nn.AvgPool1d | nn.AvgPool2d):
        return g.op("AveragePool", [x], stem, count_include_pad=int(m.count_include_pad),
                    **attrs)
    return g.op("MaxPool", [x], stem, **attrs)


def _batch_norm(g: _Graph, x: str, m: nn.BatchNorm1d | nn.BatchNorm2d, stem: str) -> str:
    n = m.num_features
    scale = _f32(m.weight) if m.affine else np.ones(n, np.float32)
    shift = _f32(m.bias) if m.affine else np.zeros(n, np.float32)
    return g.op("BatchNormalization",
                [x, g.const(f"{stem}.scale", scale), g.const(f"{stem}.shift", shift),
                 g.const(f"{stem}.mean", _f32(m.running_mean)),
                 g.const(f"{stem}.var", _f32(m.running_var))], stem, epsilon=float(m.eps))


def _linear(g: _Graph, x: str, m: nn.Linear, stem: str) -> str:
    y = g.op("MatMul", [x, g.const(f"{stem}.weight", _f32(m.weight).T.copy())], stem)
    if m.bias is None:
        return y
    return g.op("Add", [y, g.const(f"{stem}.bias", _f32(m.bias))], stem)


def _folded(g: _Graph, x: str, layer: FoldedLayer, weight: torch.Tensor) -> str:
    """A binary FC layer in the contract's folded form (module docstring)."""
    stem = layer.name
    w = binary_sign(weight.detach()).cpu().numpy().T.copy()  # (in, out), exact +-1
    d = g.op("MatMul", [x, g.binary_weight(stem, w)], stem)
    if layer.is_last:
        y = g.op("Mul", [d, g.const(f"{stem}.scale", layer.scale)], stem)
        return g.op("Add", [y, g.const(f"{stem}.offset", layer.offset)], stem)
    s = np.where(layer.flip, -1.0, 1.0).astype(np.float32)
    # d is an integer: the exact integer form of the thresholds, in [-(n+1), n+1]
    ti = integer_thresholds(layer.threshold, layer.flip, layer.in_features)
    t = ti.astype(np.float32)
    if not np.array_equal(t.astype(np.int64), ti):
        raise BnnEdgeError(f"{stem}: {layer.in_features} inputs; thresholds beyond 2**24 are "
                           f"not exact in float32")
    y = g.op("Mul", [d, g.const(f"{stem}.flip_sign", s)], stem)
    y = g.op("Add", [y, g.const(f"{stem}.threshold", -s * t)], stem)
    return g.sign(y, stem)


_F32_MAX_KEY = 0xFF7FFFFF  # ordered key of +max float32 (see _key)


def _key(x: np.ndarray) -> np.ndarray:
    """float32 -> uint32 keys in the same order (negative floats reversed below positives)."""
    u = np.asarray(x, np.float32).view(np.uint32).astype(np.uint64)
    return np.where(u & 0x80000000, 0xFFFFFFFF - u, u | 0x80000000).astype(np.uint64)


def _unkey(k: np.ndarray) -> np.ndarray:
    k = np.asarray(k, np.uint64)
    u = np.where(k & 0x80000000, k & 0x7FFFFFFF, 0xFFFFFFFF - k).astype(np.uint32)
    return u.view(np.float32)


@torch.no_grad()
def sign_thresholds(norm: nn.Module,
                    shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray] | None:
    """Exact float32 thresholds of sign(norm(z)) per channel, or None where none exists.

    The output is +1 iff z >= threshold (``flip`` false) or z <= threshold (``flip`` true),
    found by bisection over the float32 values, evaluating the eval-mode batch norm itself
    on inputs of the network's ``shape`` (batch 1, every position of a channel holding the
    candidate): PyTorch rounds x * alpha + beta in its own way, so only its own kernel
    tells where the sign changes. None when positions of one channel disagree (the result
    would depend on where in the tensor a value sits); the caller keeps the batch norm.
    """
    c = norm.num_features
    spatial = tuple(shape[2:])

    def on(values: np.ndarray) -> np.ndarray | None:
        z = torch.from_numpy(values.astype(np.float32)).reshape(1, c, *[1] * len(spatial))
        y = norm(z.expand(1, c, *spatial).contiguous()) >= 0
        y = y.reshape(c, -1).numpy()
        if not (y.all(1) | ~y.any(1)).all():
            return None
        return y[:, 0]

    lo_key = np.full(c, 0xFFFFFFFF - _F32_MAX_KEY, np.uint64)  # -max float32
    hi_key = np.full(c, _F32_MAX_KEY, np.uint64)  # +max float32
    at_lo, at_hi = on(_unkey(lo_key)), on(_unkey(hi_key))
    if at_lo is None or at_hi is None:
        return None
    rising = ~at_lo & at_hi
    falling = at_lo & ~at_hi
    # invariant: rising: off at lo, on at hi; falling: on at lo, off at hi
    lo, hi = lo_key.copy(), hi_key.copy()
    for _ in range(34):
        mid = (lo + hi) // 2
        at_mid = on(_unkey(mid))
        if at_mid is None:
            return None
        go_up = np.where(rising, ~at_mid, at_mid)  # the change lies above mid
        lo, hi = np.where(go_up, mid, lo), np.where(go_up, hi, mid)
    threshold = np.where(rising, _unkey(hi), _unkey(lo)).astype(np.float32)
    always = at_lo & at_hi
    threshold = np.where(always, -np.inf, np.where(~at_lo & ~at_hi, np.inf, threshold))
    return threshold.astype(np.float32), falling


def _sequence(net: nn.Module) -> list[tuple[str, nn.Module]]:
    try:
        return layers_of(net)
    except ValueError as e:
        raise BnnEdgeError(f"{e}, to export") from None


def _input_shapes(net: nn.Module, sample_shape: tuple[int, ...]) -> dict[str, tuple[int, ...]]:
    """The input shape (batch 1) of every layer of the sequence, from the shape probe."""
    return {layer.name: (1, *layer.in_shape) for layer in probe(net, sample_shape)}


def _sign_after(seq: list[tuple[str, nn.Module]], i: int) -> int | None:
    """Index of the sign that the batch norm at ``i`` feeds through only hardtanh/flatten."""
    for j in range(i + 1, len(seq)):
        m = seq[j][1]
        if isinstance(m, SignActivation):
            return j
        hardtanh = isinstance(m, nn.Hardtanh) and m.min_val < 0 <= m.max_val
        flatten = isinstance(m, nn.Flatten) and m.start_dim == 1 and m.end_dim == -1
        if not (hardtanh or flatten or isinstance(m, nn.Dropout | nn.Identity)):
            return None
    return None


def _threshold_sign(g: _Graph, x: str, threshold: np.ndarray, flip: np.ndarray, stem: str,
                    ndim: int) -> str:
    """sign(s * x - s * threshold), s = -1 where flip: +1 iff x >= t (x <= t if flip)."""
    shape = (-1,) + (1,) * (ndim - 2)
    s = np.where(flip, -1.0, 1.0).astype(np.float32)
    y = g.op("Mul", [x, g.const(f"{stem}.flip_sign", s.reshape(shape))], stem)
    y = g.op("Add", [y, g.const(f"{stem}.threshold", (-s * threshold).reshape(shape))], stem)
    return g.sign(y, stem)


def _emit(g: _Graph, x: str, net: nn.Module, sample_shape: tuple[int, ...]) -> str:
    """Walk the module sequence, folding what the contract folds (module docstring)."""
    seq = _sequence(net)
    has_binary_fc = any(isinstance(m, BinaryLayer) and isinstance(m, nn.Linear)
                        for m in net.classifier)
    folded = {}
    if has_binary_fc:
        try:
            folded = {layer.name: layer for layer in fold_classifier(net.classifier)}
        except ValueError as e:
            raise BnnEdgeError(f"cannot fold the classifier for export: {e}") from e
    shapes = _input_shapes(net, sample_shape)
    in_folded = False
    skip: set[int] = set()
    for i, (stem, m) in enumerate(seq):
        if stem in folded:
            x = _folded(g, x, folded[stem], m.weight)
            in_folded = True
        elif in_folded or i in skip or isinstance(m, nn.Dropout | nn.Identity):
            continue  # covered by a folded layer (batch norm, dropout, sign)
        elif isinstance(m, nn.Conv1d | nn.Conv2d):
            x = _conv(g, x, m, stem)
        elif isinstance(m, nn.Linear):
            x = _linear(g, x, m, stem)
        elif isinstance(m, nn.BatchNorm1d | nn.BatchNorm2d):
            j = _sign_after(seq, i)
            rule = sign_thresholds(m, shapes[stem]) if j is not None else None
            if rule is None:
                x = _batch_norm(g, x, m, stem)
                continue
            x = _threshold_sign(g, x, *rule, stem, len(shapes[stem]))
            g.sign_thresholds.append(stem)
            # the sign is applied; a flatten on the way stays, hardtanh and sign go
            skip |= {k for k in range(i + 1, j + 1) if not isinstance(seq[k][1], nn.Flatten)}
        elif isinstance(m, SignActivation):
            x = g.sign(x, stem)
        elif isinstance(m, nn.Hardtanh):
            x = g.op("Clip", [x, g.const(f"{stem}.min", np.float32(m.min_val)),
                              g.const(f"{stem}.max", np.float32(m.max_val))], stem)
        elif isinstance(m, nn.ReLU):
            x = g.op("Relu", [x], stem)
        elif isinstance(m, nn.MaxPool1d | nn.MaxPool2d | nn.AvgPool1d | nn.AvgPool2d):
            x = _pool(g, x, m, stem)
        elif isinstance(m, nn.AdaptiveAvgPool2d) and _pair(m.output_size, 2) == [1, 1]:
            x = g.op("GlobalAveragePool", [x], stem)
        elif isinstance(m, nn.Flatten) and m.start_dim == 1 and m.end_dim == -1:
            x = g.op("Flatten", [x], stem, axis=1)
        else:
            raise BnnEdgeError(f"{stem}: {type(m).__name__} is not supported by the ONNX export")
    return x


def network_input_shape(net: nn.Module, sample_shape: tuple[int, ...]) -> tuple[int, ...]:
    """The per-sample shape the network's first layer sees (EEG adds a plane axis)."""
    return probe(net, sample_shape)[0].in_shape


@torch.no_grad()
def build_model(net: nn.Module, sample_shape: tuple[int, ...], fmt: str = "onnx",
                doc: str = ""):
    """The onnx.ModelProto of ``net`` (eval mode) for inputs of ``sample_shape`` (no batch).

    ``fmt="onnx"``: batch dimension ``N``; ``fmt="qonnx"``: batch 1 (FINN's convention;
    ``qonnx.util.cleanup.cleanup_model(model, override_inpsize=N)`` changes it). The names
    of the batch norms folded with their sign are in ``metadata_props`` (``sign_thresholds``).
    """
    from onnx import TensorProto, helper

    check_format(fmt)
    was_training = net.training
    net.eval()
    try:
        g = _Graph(qonnx=fmt == "qonnx")
        x = INPUT
        shape = network_input_shape(net, sample_shape)
        if shape != tuple(sample_shape):
            x = g.op("Unsqueeze", [x, g.const("input.axes", np.array([1], np.int64))], "input")
        y = _emit(g, x, net, shape)
        g.nodes.append(helper.make_node("Identity", [y], [OUTPUT], name="logits/Identity"))
        num_classes = probe(net, sample_shape)[-1].out_shape[0]
    finally:
        net.train(was_training)
    batch = 1 if g.qonnx else "N"
    graph = helper.make_graph(
        g.nodes, type(net).__name__,
        [helper.make_tensor_value_info(INPUT, TensorProto.FLOAT, [batch, *sample_shape])],
        [helper.make_tensor_value_info(OUTPUT, TensorProto.FLOAT, [batch, num_classes])],
        initializer=g.initializers)
    opsets = [helper.make_opsetid("", OPSET)]
    if g.qonnx:
        opsets.append(helper.make_opsetid(QONNX_DOMAIN, 1))
    model = helper.make_model(graph, opset_imports=opsets, producer_name="bnn_edge",
                              doc_string=doc)
    model.ir_version = IR_VERSION
    helper.set_model_props(model, {"sign_thresholds": ",".join(g.sign_thresholds)})
    return model


def check_format(fmt: str) -> None:
    if fmt not in FORMATS:
        raise BnnEdgeError(f"unknown ONNX format {fmt!r}: expected one of {', '.join(FORMATS)}")


@torch.no_grad()
def reference_logits(net: nn.Module, x: torch.Tensor) -> np.ndarray:
    """The PyTorch logits of ``net`` in eval mode, float32, one sample at a time.

    PyTorch picks its convolution kernels by batch size, so a sign whose input lies within
    rounding of 0 can come out differently in a batch than alone (seen on a random ECG
    ``binarize=full`` net: 1 of 64 vectors); one at a time is what a device does, and
    onnxruntime gives the same result at every batch size.
    """
    was_training = net.training
    net.eval()
    try:
        return torch.cat([net(x[i:i + 1]) for i in range(len(x))]).to(torch.float32).numpy()
    finally:
        net.train(was_training)


def export_onnx(net: nn.Module, out: Path, samples: torch.Tensor, meta: dict,
                fmt: str = "onnx") -> dict:
    """Write ``model.onnx`` (or ``model_qonnx.onnx``), ``vectors.npz`` and ``manifest.json``.

    ``vectors.npz`` holds the network inputs (``input``, float32) and the PyTorch logits
    (``logits``) to check the file against; the model passes ``onnx.checker`` first.
    """
    import onnx

    check_format(fmt)
    if len(samples) < 1:
        raise BnnEdgeError("need at least one sample for the test vectors")
    samples = samples.to(torch.float32)
    model = build_model(net, tuple(samples.shape[1:]), fmt,
                        doc=f"bnn_edge {meta.get('model')} binarize={meta.get('binarize')} "
                            f"aug={meta.get('aug')}")
    onnx.checker.check_model(model)
    logits = reference_logits(net, samples)
    _require_finite(logits, "PyTorch's logits")
    out.mkdir(parents=True, exist_ok=True)
    onnx.save(model, out / MODEL_FILES[fmt])
    np.savez(out / "vectors.npz", input=samples.numpy(), logits=logits)
    batch = "N" if fmt == "onnx" else 1
    props = {p.key: p.value for p in model.metadata_props}
    manifest = {
        "format": FORMATS[fmt],
        **meta,
        "model_file": MODEL_FILES[fmt],
        "opset": OPSET,
        "input": {"name": INPUT, "shape": [batch, *map(int, samples.shape[1:])]},
        "output": {"name": OUTPUT, "shape": [batch, int(logits.shape[1])]},
        "binary_layers": [name for name, _ in binary_layers(net)],
        "sign_thresholds": [n for n in props["sign_thresholds"].split(",") if n],
        "conventions": {
            "sign": ("BipolarQuant(x, scale=1): +1 iff x >= 0" if fmt == "qonnx"
                     else "Where(GreaterOrEqual(x, 0), 1, -1): sign(0) = +1"),
            "binary_weights": "exact +-1 float32" + (" behind BipolarQuant" if fmt == "qonnx"
                                                     else ""),
            "threshold": "sign(s * x - s * threshold), s = -1 where flip: batch norm + sign "
                         "of the binary FC layers and of the layers in sign_thresholds",
            "last_fc": "scale * d + offset (d: the +-1 dot product)",
        },
        "vectors": {"n": int(len(logits)), "input": list(samples.shape),
                    "logits": list(logits.shape)},
        "files": sorted({MODEL_FILES[fmt], "vectors.npz", "manifest.json"}),
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def run_exported(out: Path, fmt: str, limit: int | None = None,
                 batch_size: int = 16) -> np.ndarray:
    """Logits of the exported file on its own ``vectors.npz`` inputs (the first ``limit``).

    ``onnx``: one onnxruntime session; ``qonnx``: qonnx's ModelWrapper, its cleanup (which
    sets the batch size) and its node-by-node executor. Used to check an export at once.
    """
    check_format(fmt)
    x = np.load(out / "vectors.npz")["input"][:limit]
    path = str(out / MODEL_FILES[fmt])
    chunks = [x[i:i + batch_size] for i in range(0, len(x), batch_size)]
    if fmt == "onnx":
        import onnxruntime as ort

        session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
        return np.concatenate([session.run([OUTPUT], {INPUT: c})[0] for c in chunks])
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.core.onnx_exec import execute_onnx
    from qonnx.util.cleanup import cleanup_model

    results = []
    for c in chunks:
        model = cleanup_model(ModelWrapper(path), override_inpsize=len(c))
        name_in, name_out = model.graph.input[0].name, model.graph.output[0].name
        results.append(execute_onnx(model, {name_in: c})[name_out])
    return np.concatenate(results)


def require_packages(fmt: str) -> None:
    """BnnEdgeError naming the missing packages ``fmt`` needs (the ``export`` extra)."""
    import importlib.util

    check_format(fmt)
    needed = ("onnx", "onnxruntime") + (("qonnx",) if fmt == "qonnx" else ())
    missing = [name for name in needed if importlib.util.find_spec(name) is None]
    if missing:
        raise BnnEdgeError(f"format={fmt} needs {', '.join(missing)}: "
                           f"pip install 'bnn_edge[export]'")


def _require_finite(logits: np.ndarray, what: str) -> None:
    """BnnEdgeError naming the first test vector whose logits are not finite."""
    bad = np.flatnonzero(~np.isfinite(logits).all(axis=1))
    if len(bad):
        raise BnnEdgeError(f"{what} are not finite on {len(bad)} of {len(logits)} test vectors "
                           f"(vector {bad[0]}: {logits[bad[0]].tolist()})")


def summary(manifest: dict, out: Path, fmt: str) -> str:
    """What was written, and how the format's own runtime agrees with PyTorch on the vectors
    (qonnx executes node by node, so only the first 16 vectors are run); non-finite logits
    fail the check (BnnEdgeError)."""
    logits = run_exported(out, fmt, None if fmt == "onnx" else 16)
    ref = np.load(out / "vectors.npz")["logits"][:len(logits)]
    runtime = "onnxruntime" if fmt == "onnx" else "qonnx execute_onnx"
    _require_finite(ref, f"the PyTorch logits in {out / 'vectors.npz'}")
    _require_finite(logits, f"{runtime}'s logits of {out / manifest['model_file']}")
    same = int((logits.argmax(1) == ref.argmax(1)).sum())
    return (f"Exported {manifest['model']} binarize={manifest['binarize']} aug={manifest['aug']} "
            f"to {out / manifest['model_file']} ({fmt}, opset {manifest['opset']}, "
            f"{len(manifest['binary_layers'])} binary layers) with {manifest['vectors']['n']} "
            f"test vectors in {out / 'vectors.npz'}\n"
            f"{runtime} on {len(logits)} vectors: {same}/{len(logits)} classes identical to "
            f"PyTorch, max |logit difference| {float(np.abs(logits - ref).max()):.3g}")
