"""The packed engine: a binarized network's binary part run as packed bits (XNOR-popcount).

:meth:`PackedNet.from_module` splits a network (``features`` + ``classifier`` sequentials,
as every network of the registry) into stages (:mod:`~bnn_edge.hardware.packed.planner`):
packed convolutions, the packed classifier (the binary fully connected layers, folded
exactly as the export does, docs/export.md) and PyTorch stages for the rest (the first
layer on the real input, real convolutions, pooling to real values), which run on copies
of the modules; the network passed in is never modified.

Which path runs the classifier: the popcount kernel, except for score calls on batches of
at least ``int8_min_rows`` rows (None, the default: never), which run as exact int8
products (:mod:`~bnn_edge.hardware.packed.int8`, identical outputs; worth it where int8
matrix units outrun VPOPCNTDQ, e.g. AMX: docs/export.md). Convolutions always run popcount.

Hidden bits are those of PyTorch; logits agree to float32 rounding (the folded last
layer). :class:`PackedClassifier` runs an exported folder (``model.npz`` +
``manifest.json``). Bit errors: :meth:`PackedNet.flip` XORs positions of a binary layer's
flattened PyTorch weight into the packed words (calling it again undoes them).
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from bnn_edge.hardware.export import read_classifier_layers
from bnn_edge.hardware.packed import kernels
from bnn_edge.hardware.packed.fold import FoldedLayer, fold_classifier
from bnn_edge.hardware.packed.int8 import check_min_rows
from bnn_edge.hardware.packed.layouts import BitLayout, Bits, as_tensor
from bnn_edge.hardware.packed.planner import plan
from bnn_edge.hardware.packed.product import BITS
from bnn_edge.hardware.packed.stages import ClassifierStage, ConvStage, TorchStage
from bnn_edge.hardware.packed.weights import PackedWeights, TorchWeights
from bnn_edge.models import BinarizableNet, probe
from bnn_edge.nn import BinaryLayer


def _input_tensor(x) -> torch.Tensor:
    """A batch as a float32 CPU tensor: numpy arrays of any strides, tensors needing grad."""
    if isinstance(x, torch.Tensor):
        return x.detach().to("cpu", torch.float32)
    return torch.from_numpy(np.ascontiguousarray(x, np.float32))


class PackedNet:
    """A network with its binary part packed (see the module docstring); predictions as numpy.

    >>> engine = PackedNet.from_module(load_module("logs/train/runs/<run>/checkpoints/last.ckpt"))
    >>> scores = engine(x)           # (N, classes) float32, x: (N, *input shape)
    >>> engine.predict(x)            # classes
    """

    def __init__(self, net: nn.Module, input_shape: Sequence[int] | None = None,
                 int8_min_rows: int | None = None):
        self.int8_min_rows = check_min_rows(int8_min_rows)
        self.net = copy.deepcopy(net).cpu().float().eval()
        for m in self.net.modules():  # the copy must not call the caller's hooks
            m._forward_hooks.clear()
            m._forward_pre_hooks.clear()
        self.input_shape = None
        self._direct = None
        self.stages: list = []
        self.binary: list[PackedWeights | TorchWeights] = []
        self._fixed = input_shape is not None  # else another shape the network takes rebuilds
        if input_shape is None and isinstance(self.net, BinarizableNet):
            input_shape = self.net.input_shape
        if input_shape is not None:
            self._build(tuple(int(v) for v in input_shape))

    @classmethod
    def from_module(cls, net: nn.Module, input_shape: Sequence[int] | None = None,
                    int8_min_rows: int | None = None) -> PackedNet:
        """The engine of ``net`` (a network, or a BNNClassifier whose ``net`` it takes)."""
        net = getattr(net, "net", net)
        return cls(net, input_shape, int8_min_rows)

    # -- planning

    def _prepare(self, x: torch.Tensor) -> torch.Tensor:
        return self.net.prepare(x) if isinstance(self.net, BinarizableNet) else x

    @torch.no_grad()
    def _build(self, input_shape: tuple[int, ...]) -> None:
        try:
            layers = probe(self.net, input_shape)
        except ValueError as e:
            raise ValueError(f"{e}: the packed engine runs networks of known layer order") \
                from None
        mods = [(layer.name, layer.module) for layer in layers]
        shapes = [layer.in_shape for layer in layers]
        self.input_shape = shapes[0]  # as the first layer sees it (after net.prepare)
        self._direct = None
        stages = plan(mods, shapes, self.int8_min_rows)
        self.stages = stages
        if (len(stages) == 1 and isinstance(stages[0], ClassifierStage)
                and stages[0].in_layout.kind == "flat" and len(input_shape) == 1):
            self._direct = stages[0]  # rows in, scores out: no PyTorch on the way
        order = {name: k for k, (name, _) in enumerate(mods)}
        found = {w.name: w for s in stages for w in
                 (s.weights if isinstance(s, TorchStage | ClassifierStage) else [s.weights])}
        names = [n for n, m in mods if isinstance(m, BinaryLayer)]
        self.binary = [found[n] for n in sorted(names, key=order.__getitem__)]

    # -- running

    def prepare(self, x) -> torch.Tensor:
        """``x`` as the tensor the first stage takes; builds the engine for its shape on
        first use. Another shape rebuilds it where the network takes that shape too
        (MobileNet: any image size) and no ``input_shape`` was given; else ValueError."""
        x = self._prepare(_input_tensor(x))
        shape, built = tuple(x.shape[1:]), self.input_shape
        if built is None:
            self._build(shape)
        elif shape != built:
            if not self._fixed:
                with contextlib.suppress(RuntimeError):  # the layers refuse it: state kept
                    self._build(shape)
            if self.input_shape != shape:
                raise ValueError(f"input of shape {tuple(x.shape)}: this engine was built "
                                 f"for (N, {', '.join(map(str, built))})")
        return x

    def run(self, x, hidden: bool = False, start: int = 0, act=None):
        """Scores (N, classes) float32; with ``hidden``, also {sign module name: +-1 int8}.

        ``start``/``act``: resume at stage ``start`` from its input ``act`` (used by sweeps).
        """
        found = {} if hidden else None
        if act is None and not hidden and start == 0 and self._direct is not None:
            rows = np.asarray(x.detach() if isinstance(x, torch.Tensor) else x)
            if rows.ndim == 2 and rows.shape[1] == self._direct.in_layout.features:
                return self._direct.scores(np.ascontiguousarray(rows, np.float32))
        if act is None:
            act = self.prepare(x)
        for stage in self.stages[start:]:
            act = stage.run(act, found)
        scores = as_tensor(act).numpy() if isinstance(act, torch.Tensor | Bits) else act
        return (scores, found) if hidden else scores

    def __call__(self, x) -> np.ndarray:
        """Scores (N, classes) float32 of a batch ``x`` (N, *input shape)."""
        direct = self._direct  # a float32 matrix into a classifier-only engine: straight in
        if (direct is not None and type(x) is np.ndarray and x.dtype == np.float32
                and x.ndim == 2 and x.flags.c_contiguous
                and x.shape[1] == direct.in_layout.features):
            return direct.scores(x)
        return self.run(x)

    def predict(self, x) -> np.ndarray:
        """Predicted classes (the first maximum of the scores)."""
        return np.argmax(self.run(x), axis=1)

    def describe(self) -> list[str]:
        """One line per stage: what runs packed and what runs in PyTorch."""
        lines = []
        for s in self.stages:
            if isinstance(s, TorchStage):
                lines.append("torch: " + ", ".join(f"{n} {type(m).__name__}"
                                                   for n, m in zip(s.names, s.modules,
                                                                   strict=True)))
            elif isinstance(s, ConvStage):
                mode = "bits" if s.layer.mode == BITS else "int32 sums"
                lines.append(f"packed conv: {s.weights.name} {s.in_layout.kind} "
                             f"{s.in_layout.shape} -> {s.out_layout.shape} ({mode}"
                             f"{', max pool' if s.pool else ''})")
            else:
                lines.append("packed classifier: " + " -> ".join(
                    f"{w.name} {w.layer.n}->{w.layer.m}" for w in s.weights))
        return lines

    def stage_of(self, index: int) -> int:
        """The stage holding binary layer ``index`` (of :attr:`binary`)."""
        target = self.binary[index]
        for k, s in enumerate(self.stages):
            held = s.weights if isinstance(s, TorchStage | ClassifierStage) else [s.weights]
            if any(w is target for w in held):
                return k
        raise KeyError(index)

    def flip(self, index: int, flat: np.ndarray) -> None:
        """Negate binary layer ``index``'s weights at flat PyTorch positions (again: undo)."""
        self.binary[index].flip(flat)

    def weight_bytes(self) -> int:
        """Bytes of the packed binary weights (padding included) the engine holds."""
        return sum(w.layer.weights.nbytes for w in self.binary if isinstance(w, PackedWeights))


class PackedClassifier:
    """The binary classifier of an export folder (``model.npz`` + ``manifest.json``), packed.

    >>> clf = PackedClassifier.from_export("export/")
    >>> scores = clf(vectors["classifier_input"])   # +-1 inputs of the first binary FC layer
    """

    def __init__(self, names: list[str], folded: list[FoldedLayer],
                 int8_min_rows: int | None = None):
        self.names = names
        self.folded = folded
        self.stage = ClassifierStage.from_folded(
            names, folded, BitLayout("flat", (folded[0].in_features,)),
            [f"{n}.sign" for n in names[:-1]], int8_min_rows)

    @classmethod
    def from_module(cls, classifier: nn.Sequential,
                    int8_min_rows: int | None = None) -> PackedClassifier:
        """From a classifier sequential whose binary FC layers fold (see fold_classifier)."""
        folded = fold_classifier(classifier)
        return cls([f.name for f in folded], folded, int8_min_rows)

    @classmethod
    def from_export(cls, folder: str | Path, int8_min_rows: int | None = None) -> PackedClassifier:
        """Read an export folder written by ``python -m bnn_edge.cli.export`` (docs/export.md).

        Whatever breaks the contract is a DataError naming the file and the key
        (:func:`~bnn_edge.hardware.export.read_classifier_layers`).
        """
        return cls(*read_classifier_layers(folder), int8_min_rows)

    @property
    def in_features(self) -> int:
        return self.folded[0].in_features

    def __call__(self, x) -> np.ndarray:
        """Scores (N, classes) float32 of +-1 (or real, taken as x >= 0) inputs (N, in)."""
        return self.stage.run(self._input(x))

    def run(self, x, hidden: bool = False):
        """Scores, and with ``hidden`` the +-1 outputs of every hidden layer (by layer name)."""
        if not hidden:
            return self(x)
        found: dict = {}
        scores = self.stage.run(self._input(x), found)
        return scores, {name[:-len(".sign")]: v for name, v in found.items()}

    def predict(self, x) -> np.ndarray:
        return np.argmax(self(x), axis=1)

    def _input(self, x) -> torch.Tensor:
        x = _input_tensor(x)
        if x.dim() != 2 or x.shape[1] != self.in_features:
            raise ValueError(f"input of shape {tuple(x.shape)}: expected (N, {self.in_features})")
        return x


def native_agreement(out: Path) -> str:
    """How the packed engine, reading the export folder as any reader would, agrees with
    PyTorch on its test vectors: classes identical and the largest logit difference."""
    with np.load(out / "vectors.npz") as vectors:
        inputs, ref = vectors["classifier_input"], vectors["logits"]
    scores = PackedClassifier.from_export(out)(inputs)
    same = int((scores.argmax(1) == ref.argmax(1)).sum())
    return (f"packed engine ({kernels.isa()}) reading {out} on {len(ref)} vectors: "
            f"{same}/{len(ref)} classes identical to PyTorch, max |logit difference| "
            f"{float(np.abs(scores - ref).max()):.3g}")
