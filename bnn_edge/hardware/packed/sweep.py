"""Bit-error sweeps on the packed engine: the draws of :func:`~bnn_edge.hardware.faults.ber_sweep`.

A draw flips, for every binary layer in :func:`~bnn_edge.nn.binary_layers` order, the
positions the fault model (:mod:`~bnn_edge.hardware.faults.models`, any of them) gives
over its flattened PyTorch weight with the generator
:func:`~bnn_edge.hardware.faults.fault_rng` (seed, value, draw), drawn by the same
:meth:`WeightFaults.draw <bnn_edge.hardware.faults.WeightFaults.draw>` as the torch engine's;
so both engines see the same faults and print the same table. A fault is an XOR of the
flipped positions into the packed words, undone by a second XOR after the draw: nothing is
re-packed.

Work per draw is only what the faults can change: stages before the first faulted layer
are computed once per sweep (for ``binarize=classifier`` the whole real feature
extractor). With ``binarize=full`` the first conv (real input, run by PyTorch so that its
float results are PyTorch's) has binary weights too; a draw that faults it reruns it.

The engine (and with it the compiled kernel, or the warning that it is missing) is
imported where a packed sweep runs, not when the evaluate command only checks options.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import numpy as np
import torch
from torch import nn

from bnn_edge.errors import ConfigError
from bnn_edge.hardware.faults import SweepPoint, WeightFaults, fault_rng
from bnn_edge.hardware.faults.models import FaultModel
from bnn_edge.hardware.faults.sweep import _batches
from bnn_edge.nn import binary_layers


def _concat(acts: list):
    from bnn_edge.hardware.packed.layouts import Bits

    if isinstance(acts[0], Bits):
        return Bits(np.concatenate([a.words for a in acts]), acts[0].layout)
    return torch.cat(acts)


def _split(act, sizes: list[int]) -> list:
    from bnn_edge.hardware.packed.layouts import Bits

    if isinstance(act, Bits):
        parts = np.split(act.words, np.cumsum(sizes)[:-1])
        return [Bits(p, act.layout) for p in parts]
    return list(torch.split(act, sizes))


class _Runner:
    """Runs the engine's stages on a whole data set, PyTorch stages batch by batch.

    PyTorch stages see the same batches as the torch engine (its data loader's), so their
    float results are the same; packed stages run on all samples at once. The clean input
    of every stage holding binary weights is kept, so a draw starts at its first faulted
    stage.
    """

    def __init__(self, engine, xs: list[torch.Tensor]):
        self.engine, self.sizes = engine, [len(x) for x in xs]
        self.inputs: dict[int, object] = {}
        faulted = {engine.stage_of(i) for i in range(len(engine.binary))}
        act: object = xs
        for k in range(len(engine.stages)):
            if k in faulted:
                self.inputs[k] = act
            act = self.run_stage(k, act)
        self.clean = act

    def run_stage(self, k: int, act):
        from bnn_edge.hardware.packed.stages import TorchStage

        stage = self.engine.stages[k]
        if isinstance(stage, TorchStage):
            batches = act if isinstance(act, list) else _split(act, self.sizes)
            return _concat([stage.run(b) for b in batches])
        if isinstance(act, list):
            act = _concat(act)
        return stage.run(act)

    def run_from(self, k: int):
        """Scores with the current (faulty) weights, recomputing from stage ``k``."""
        act = self.inputs[k]
        for j in range(k, len(self.engine.stages)):
            act = self.run_stage(j, act)
        return act


def packed_ber_sweep(model: nn.Module, loaders, rates: Iterable[float], draws: int,
                     seed: int = 0, engine=None, fault_model: FaultModel | str = "bitflip",
                     parameter: str | None = None,
                     progress: Callable[[], None] | None = None) -> list[SweepPoint]:
    """Accuracy at each bit error rate over ``draws`` draws per rate, on the packed engine.

    The same contract as :func:`bnn_edge.hardware.faults.ber_sweep` with ``real_format="none"``:
    ``rates`` are values of ``fault_model``'s ``parameter``, a fault-free value is evaluated
    once, draw ``d`` at value ``r`` uses ``fault_rng(seed, r, d)``, a sample with non-finite
    scores counts as wrong; ``model`` (a network or a BNNClassifier) is not modified;
    ``engine``: a :class:`~bnn_edge.hardware.packed.engine.PackedNet` of it already built;
    ``progress`` is called after each evaluated draw.
    """
    from bnn_edge.hardware.packed.engine import PackedNet

    engine = engine or PackedNet.from_module(model)
    xs, ys = [], []
    for batch in _batches(loaders):
        xs.append(engine.prepare(batch[0]))  # builds the engine for this input shape
        ys.append(torch.as_tensor(batch[1]).cpu())
    if not xs:
        raise ValueError("no samples to evaluate")
    if not engine.binary:
        raise ValueError("the model has no binary layers: nothing for the packed engine to fault")
    y = torch.cat(ys).numpy()
    runner = _Runner(engine, xs)
    total_bits = sum(w.numel for w in engine.binary)
    stage_of = [engine.stage_of(i) for i in range(len(engine.binary))]
    # the network the engine packed (a BNNClassifier's net): the same layers, names, order
    faults = WeightFaults(getattr(model, "net", model), "none", fault_model, parameter)
    if [t.name for t in faults.targets] != [w.name for w in engine.binary]:
        raise ValueError("the engine was not built from this model: its binary layers differ")

    def accuracy(scores: np.ndarray) -> float:
        ok = (np.argmax(scores, axis=1) == y) & np.isfinite(scores).all(axis=1)
        return int(ok.sum()) / len(y)

    clean = accuracy(runner.clean)
    points = []
    with faults:  # the stored values the fault models read; the weights are not changed
        for rate in rates:
            point = SweepPoint(float(rate))
            for draw in range(1 if faults.model_at(rate).fault_free else draws):
                flips = faults.draw(rate, fault_rng(seed, rate, draw))
                point.flipped += sum(len(p) for p in flips)
                point.bits += total_bits
                touched = [i for i, p in enumerate(flips) if len(p)]
                if not touched:
                    point.accuracies.append(clean)
                else:
                    first = min(stage_of[i] for i in touched)
                    for i in touched:
                        engine.flip(i, flips[i])
                    try:
                        point.accuracies.append(accuracy(runner.run_from(first)))
                    finally:
                        for i in touched:
                            engine.flip(i, flips[i])
                if progress is not None:
                    progress()
            points.append(point)
    return points


ENGINES = ("torch", "packed")


def check_engine(engine, device_option: str, device):
    """The ``engine`` option checked, and the device to run on (packed: always the CPU)."""
    if engine not in ENGINES:
        raise ConfigError("engine", engine, f"one of {', '.join(ENGINES)}")
    if engine == "packed" and device_option == "cuda":
        raise ConfigError("device", device_option, "cpu or auto with engine=packed (the "
                                                   "packed engine runs on the CPU)")
    if engine == "packed":  # checks BNN_EDGE_PACKED_ISA now, before any data
        from bnn_edge.hardware.packed import kernels  # noqa: F401
    return engine, (torch.device("cpu") if engine == "packed" else device)


def _packed_note() -> str:
    from bnn_edge.hardware.packed import kernels

    return f" with the packed engine ({kernels.isa()})"


# what the evaluate command appends to its "Evaluating ..." line for each engine
ENGINE_NOTE = {"torch": lambda: "", "packed": _packed_note}


def check_packed_target(module: nn.Module, real_formats: Sequence[str], name) -> None:
    """ConfigError unless ``module`` has binary layers and only they are faulted."""
    if not binary_layers(module):
        raise ConfigError("engine", "packed", f"torch for {name}: it has no binary layers "
                                              f"(binarize=none), the packed engine runs those")
    other = [f for f in real_formats if f != "none"]
    if other:
        raise ConfigError("engine", "packed", f"torch with bit_errors.real_format={other[0]}: "
                                              f"the packed engine keeps real weights exact "
                                              f"(bit_errors.real_format=none)")
