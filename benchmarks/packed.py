"""Packed binary layers (XNOR-popcount engine) against float32 torch and the old numpy path.

Classifier shapes of the paper: EEG 2520 -> 80 -> 2, MobileNet 1024 -> 2816 -> 1000, ECG
at aug=7 36064 -> 75 -> 2; and the binary convolutions of the full ECG network (conv 2 to
5 with their max pool, batch norm and sign, aug=1 and aug=7). For each, at batch 1 and 256:
time per batch of the float32 torch layers (linear or conv, batch norm, hardtanh), of the
old numpy path (``tests.helpers.packed_reference.packed_forward``, classifiers only) and of the
packed engine (``bnn_edge.hardware.packed.engine``), input packing included in both packed paths;
the three are timed in turns (bursts of calls), round after round, and the medians
compared. Weights: float32 bytes, the export's packed bytes and the engine's (rows padded
to 8, words to 64 bits).
Random weights and random batch-norm statistics (timing does not depend on them); the
engine is checked against torch on the benchmark inputs first.
Run: ``make bench`` or ``python -m benchmarks.packed [--threads 2]``.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch
from rich.console import Console
from rich.table import Table
from torch import nn

from bnn_edge.hardware.packed import kernels
from bnn_edge.hardware.packed.engine import PackedNet
from bnn_edge.hardware.packed.fold import fold_classifier
from bnn_edge.hardware.packed.layouts import Bits
from bnn_edge.nn import BinaryConv1d, BinaryLinear, SignActivation
from tests.helpers.packed_reference import packed_forward

SHAPES = {"EEG": (2520, 80, 2), "MobileNet": (1024, 2816, 1000), "ECG aug7": (36064, 75, 2)}
ECG_CONVS = ((11, 2), (9, None), (7, None), (5, None))  # (taps, max pool) of convs 2-5
ECG_CONV_INPUT = 369  # samples at conv 2 (750 -> 738 -> max pool 2)


def randomize_norms(net: nn.Module) -> nn.Module:
    torch.manual_seed(0)
    for m in net.modules():
        if isinstance(m, nn.BatchNorm1d):
            m.running_mean.normal_(0, 5)
            m.running_var.uniform_(1, 20)
    return net.eval()


def binary_classifier(n_in: int, hidden: int, out: int) -> nn.Sequential:
    torch.manual_seed(0)
    return randomize_norms(nn.Sequential(
        SignActivation(), BinaryLinear(n_in, hidden), nn.BatchNorm1d(hidden), SignActivation(),
        BinaryLinear(hidden, out), nn.BatchNorm1d(out)))


def float_classifier(n_in: int, hidden: int, out: int) -> nn.Sequential:
    return randomize_norms(nn.Sequential(
        nn.Linear(n_in, hidden), nn.BatchNorm1d(hidden), nn.Hardtanh(),
        nn.Linear(hidden, out), nn.BatchNorm1d(out)))


def ecg_convs(channels: int, binary: bool) -> nn.Sequential:
    """Conv blocks 2-5 of the ECG network: [conv, (max pool), batch norm, sign/hardtanh]."""
    torch.manual_seed(0)
    layers: list[nn.Module] = [SignActivation()] if binary else []
    for taps, pool in ECG_CONVS:
        layers.append((BinaryConv1d if binary else nn.Conv1d)(channels, channels, taps))
        if pool:
            layers.append(nn.MaxPool1d(pool))
        layers += [nn.BatchNorm1d(channels), SignActivation() if binary else nn.Hardtanh()]
    return randomize_norms(nn.Sequential(*layers))


def timed_rounds(fns: dict, rounds: int, burst_seconds: float = 0.02) -> dict[str, float]:
    """Median seconds per call of each function, timed in turns, round after round.

    Each turn is a burst of calls (about ``burst_seconds``), so that every implementation
    is timed with its own weights in cache, as when a model serves one input after another.
    """
    bursts = {}
    for k, fn in fns.items():
        fn()
        t0 = time.perf_counter()
        fn()
        bursts[k] = max(1, min(500, round(burst_seconds / (time.perf_counter() - t0))))
    times = {k: [] for k in fns}
    for _ in range(rounds):
        for k, fn in fns.items():
            t0 = time.perf_counter()
            for _ in range(bursts[k]):
                fn()
            times[k].append((time.perf_counter() - t0) / bursts[k])
    return {k: statistics.median(v) for k, v in times.items()}


def classifier_rows(rounds: int) -> list[dict]:
    rows = []
    for task, (n_in, hidden, out) in SHAPES.items():
        binary, real = binary_classifier(n_in, hidden, out), float_classifier(n_in, hidden, out)
        engine = PackedNet(binary, (n_in,))
        layers = fold_classifier(binary)
        for batch in (1, 256):
            x = torch.randn(batch, n_in)
            xn = x.numpy()
            pm1 = np.where(xn >= 0, 1, -1).astype(np.int8)
            with torch.no_grad():
                assert np.array_equal(engine.predict(x), binary(x).argmax(1).numpy())
            fns = {"torch": lambda real=real, x=x: real(x),
                   "numpy": lambda pm1=pm1, layers=layers: packed_forward(layers, pm1),
                   "packed": lambda engine=engine, xn=xn: engine(xn)}
            with torch.inference_mode():
                t = timed_rounds(fns, rounds)
            rows.append({"what": f"{task} {n_in}->{hidden}->{out}", "batch": batch, **t,
                         "float_bytes": 4 * (n_in * hidden + hidden * out),
                         "export_bytes": sum(f.weight_bits.nbytes for f in layers),
                         "engine_bytes": engine.weight_bytes()})
    return rows


def conv_rows(rounds: int) -> list[dict]:
    rows = []
    for aug in (1, 7):
        c = 32 * aug
        binary, real = ecg_convs(c, True), ecg_convs(c, False)
        engine = PackedNet(binary, (c, ECG_CONV_INPUT))
        n_weights = sum(c * c * taps for taps, _ in ECG_CONVS)
        for batch in (1, 256):
            x = torch.randn(batch, c, ECG_CONV_INPUT)
            with torch.no_grad():
                assert np.array_equal(engine(x), binary(x).numpy())  # the last signs

            def packed(engine=engine, x=x):
                act = x
                for stage in engine.stages:
                    act = stage.run(act)
                assert isinstance(act, Bits)

            fns = {"torch": lambda real=real, x=x: real(x), "packed": packed}
            with torch.inference_mode():
                t = timed_rounds(fns, rounds)
            rows.append({"what": f"ECG aug{aug} convs 2-5 ({c} ch)", "batch": batch,
                         "numpy": None, **t, "float_bytes": 4 * n_weights,
                         "export_bytes": sum(c * -(-c * taps // 8) for taps, _ in ECG_CONVS),
                         "engine_bytes": engine.weight_bytes()})
    return rows


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    rows = classifier_rows(args.rounds) + conv_rows(args.rounds)
    table = Table(title=f"Binary layers: packed engine ({kernels.isa()}, "
                        f"{'OpenMP' if kernels.openmp() else 'one thread'}) vs float32 torch "
                        f"vs the old numpy path ({args.threads} CPU threads, torch "
                        f"{torch.__version__}, numpy {np.__version__})")
    for col in ("layers", "batch", "float32 torch ms", "old numpy ms", "packed ms",
                "torch / packed", "numpy / packed", "weights float32 B", "export B",
                "engine B", "float32 / engine"):
        table.add_column(col, justify="right")
    for r in rows:
        numpy_ms = "n/a" if r["numpy"] is None else f"{1e3 * r['numpy']:.3f}"
        numpy_ratio = "n/a" if r["numpy"] is None else f"{r['numpy'] / r['packed']:.1f}x"
        table.add_row(r["what"], str(r["batch"]), f"{1e3 * r['torch']:.3f}", numpy_ms,
                      f"{1e3 * r['packed']:.4f}", f"{r['torch'] / r['packed']:.1f}x",
                      numpy_ratio, f"{r['float_bytes']:,}", f"{r['export_bytes']:,}",
                      f"{r['engine_bytes']:,}", f"{r['float_bytes'] / r['engine_bytes']:.1f}x")
    Console(width=200).print(table)
    return rows


if __name__ == "__main__":
    main()
