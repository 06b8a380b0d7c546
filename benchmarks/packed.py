"""Packed binary layers (XNOR-popcount engine) against float32, bf16 and int8 torch.

Classifier shapes of the paper: EEG 2520 -> 80 -> 2, MobileNet 1024 -> 2816 -> 1000, ECG
at aug=7 36064 -> 75 -> 2; and the binary convolutions of the full ECG network (conv 2 to
5 with their max pool, batch norm and sign, aug=1 and aug=7). For each, at batch 1 and 256,
time per batch of:

- the float layers (linear or conv, [max pool], batch norm, hardtanh) in float32 and in
  bfloat16 (weights converted once, the float32 input converted in the call), both as
  functional calls (no module overhead) under ``torch.inference_mode``;
- int8: the binary layers as +-1 int8 products summed in int32 (``torch._int_mm``; convs
  over unfolded windows), the engine's integer thresholds between them: exact, checked
  against the engine;
- the old numpy path (``tests.helpers.packed_reference.packed_forward``, classifiers only)
  and the packed engine (``bnn_edge.hardware.packed.engine``), input packing included.

All on the same threads, timed in turns (bursts of calls, so each has its weights in
cache), round after round, medians compared. Printed: the engine against the best
alternative, and its binary MACs/s against the limit of the XOR-popcount-add loop
(docs/export.md). Weights: float32 bytes, the export's packed bytes and the engine's (rows
padded to 8, words to 64 bits). Random weights and batch-norm statistics (timing does not
depend on them). Run: ``make bench`` or ``python -m benchmarks.packed [--threads 2]``.
"""

from __future__ import annotations

import argparse
import statistics
import time
from functools import partial

import numpy as np
import torch
import torch.nn.functional as F
from rich.console import Console
from rich.table import Table
from torch import nn

from bnn_edge.hardware.packed import kernels
from bnn_edge.hardware.packed.engine import PackedNet
from bnn_edge.hardware.packed.fold import fold_classifier
from bnn_edge.hardware.packed.int8 import fire, firing_rule, pm1
from bnn_edge.hardware.packed.layouts import Bits
from bnn_edge.hardware.packed.stages import ConvStage
from bnn_edge.nn import BinaryConv1d, BinaryLinear, SignActivation, binary_sign
from tests.helpers.packed_reference import packed_forward

SHAPES = {"EEG": (2520, 80, 2), "MobileNet": (1024, 2816, 1000), "ECG aug7": (36064, 75, 2)}
ECG_CONVS = ((11, 2), (9, None), (7, None), (5, None))  # (taps, max pool) of convs 2-5
ECG_CONV_INPUT = 369  # samples at conv 2 (750 -> 738 -> max pool 2)
CONV_AUGS = (1, 7)  # 32 and 224 channels
# Zen 4: XOR, VPOPCNTQ and ADD of 512 bits are 3 x 2 halves on 4 256-bit vector pipes
MACS_PER_CYCLE = 512 * 4 / 6


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



def functional(net: nn.Sequential, dtype: torch.dtype):
    """The float layers of ``net`` as functional calls on ``dtype`` copies of their tensors."""
    def cast(t):
        return None if t is None else t.detach().to(dtype)

    steps = []
    for m in net:
        if isinstance(m, nn.Linear):
            steps.append(partial(F.linear, weight=cast(m.weight), bias=cast(m.bias)))
        elif isinstance(m, nn.Conv1d):
            steps.append(partial(F.conv1d, weight=cast(m.weight), bias=cast(m.bias)))
        elif isinstance(m, nn.MaxPool1d):
            steps.append(partial(F.max_pool1d, kernel_size=m.kernel_size, stride=m.stride))
        elif isinstance(m, nn.BatchNorm1d):
            steps.append(partial(F.batch_norm, running_mean=cast(m.running_mean),
                                 running_var=cast(m.running_var), weight=cast(m.weight),
                                 bias=cast(m.bias), training=False, eps=m.eps))
        else:
            assert isinstance(m, nn.Hardtanh), m
            steps.append(F.hardtanh)

    def run(x: torch.Tensor) -> torch.Tensor:
        x = x.to(dtype)
        for step in steps:
            x = step(x)
        return x
    return run


class Int8Convs:
    """Binary convs on +-1 int8, channels-last: unfolded windows times the +-1 weights in
    int32 (``torch._int_mm``), max pool of d, the engine's integer thresholds."""

    def __init__(self, binary: nn.Sequential, engine: PackedNet):
        convs = [m for m in binary if isinstance(m, BinaryConv1d)]
        stages = [s for s in engine.stages if isinstance(s, ConvStage)]
        self.layers = []
        for conv, stage in zip(convs, stages, strict=True):
            w = binary_sign(conv.weight.detach()).reshape(conv.out_channels, -1).T
            self.layers.append((w.to(torch.int8).contiguous(), conv.kernel_size[0], stage.pool,
                                firing_rule(stage.layer)))

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """The last signs (N, C, L) as +-1 int8."""
        act = pm1(x.transpose(1, 2) >= 0)  # (N, L, C)
        for w, taps, pool, rule in self.layers:
            n, length, c = act.shape
            windows = act.unfold(1, taps, 1).reshape(-1, c * taps)  # (N * P, C * taps)
            d = torch._int_mm(windows, w).reshape(n, length - taps + 1, -1)
            if pool is not None:
                d = d.unfold(1, *pool).amax(-1)
            act = fire(d, rule)
        return act.transpose(1, 2)


def classifier_rows(rounds: int, batches: tuple[int, ...], int8_min_rows: int | None) -> list[dict]:
    rows = []
    for task, (n_in, hidden, out) in SHAPES.items():
        binary, real = binary_classifier(n_in, hidden, out), float_classifier(n_in, hidden, out)
        engine = PackedNet(binary, (n_in,), int8_min_rows)
        int8 = PackedNet(binary, (n_in,), int8_min_rows=1).stages[-1].int8
        layers = fold_classifier(binary)
        f32, bf16 = functional(real, torch.float32), functional(real, torch.bfloat16)
        for batch in batches:
            x = torch.randn(batch, n_in)
            xn = x.numpy()
            pm1 = np.where(xn >= 0, 1, -1).astype(np.int8)
            with torch.no_grad():
                assert np.array_equal(engine.predict(x), binary(x).argmax(1).numpy())
                assert np.array_equal(int8.forward(xn), engine(xn))
                torch.testing.assert_close(f32(x), real(x))
            fns = {"torch": lambda x=x, f=f32: f(x), "bf16": lambda x=x, f=bf16: f(x),
                   "int8": lambda xn=xn, f=int8: f.forward(xn),
                   "numpy": lambda pm1=pm1, layers=layers: packed_forward(layers, pm1),
                   "packed": lambda engine=engine, xn=xn: engine(xn)}
            with torch.inference_mode():
                t = timed_rounds(fns, rounds)
            rows.append({"what": f"{task} {n_in}->{hidden}->{out}", "batch": batch, **t,
                         "macs": batch * (n_in * hidden + hidden * out),
                         "float_bytes": 4 * (n_in * hidden + hidden * out),
                         "export_bytes": sum(f.weight_bits.nbytes for f in layers),
                         "engine_bytes": engine.weight_bytes()})
    return rows


def conv_rows(rounds: int, batches: tuple[int, ...]) -> list[dict]:
    rows = []
    for aug in CONV_AUGS:
        c = 32 * aug
        binary, real = ecg_convs(c, True), ecg_convs(c, False)
        engine = PackedNet(binary, (c, ECG_CONV_INPUT))
        int8 = Int8Convs(binary, engine)
        f32, bf16 = functional(real, torch.float32), functional(real, torch.bfloat16)
        n_weights = sum(c * c * taps for taps, _ in ECG_CONVS)
        macs, length = 0, ECG_CONV_INPUT
        for taps, pool in ECG_CONVS:
            length -= taps - 1
            macs += length * c * c * taps
            length = length // pool if pool else length
        for batch in batches:
            x = torch.randn(batch, c, ECG_CONV_INPUT)
            with torch.no_grad():
                signs = binary(x).numpy()
                assert np.array_equal(engine(x), signs)  # the last signs
                assert np.array_equal(int8(x).numpy(), signs)
                torch.testing.assert_close(f32(x), real(x))

            def packed(engine=engine, x=x):
                act = x
                for stage in engine.stages:
                    act = stage.run(act)
                assert isinstance(act, Bits)

            fns = {"torch": lambda x=x, f=f32: f(x), "bf16": lambda x=x, f=bf16: f(x),
                   "int8": lambda x=x, f=int8: f(x), "packed": packed}
            with torch.inference_mode():
                t = timed_rounds(fns, rounds)
            rows.append({"what": f"ECG aug{aug} convs 2-5 ({c} ch)", "batch": batch,
                         "numpy": None, **t, "macs": batch * macs, "float_bytes": 4 * n_weights,
                         "export_bytes": sum(c * -(-c * taps // 8) for taps, _ in ECG_CONVS),
                         "engine_bytes": engine.weight_bytes()})
    return rows


COLUMNS = ("layers", "batch", "float32 torch ms", "bf16 torch ms", "int8 _int_mm ms",
           "old numpy ms", "packed ms", "torch / packed", "numpy / packed",
           "best other / packed", "packed binary GMAC/s", "of limit", "weights float32 B",
           "export B", "engine B", "float32 / engine")


def table_row(r: dict, limit: float) -> list[str]:
    """One printed row: times, ratios, the engine's binary MACs/s and its share of ``limit``."""
    best = min(("float32", "bf16", "int8"), key=lambda k: r["torch" if k == "float32" else k])
    best_t = r["torch" if best == "float32" else best]
    numpy_ms = "n/a" if r["numpy"] is None else f"{1e3 * r['numpy']:.3f}"
    numpy_ratio = "n/a" if r["numpy"] is None else f"{r['numpy'] / r['packed']:.1f}x"
    reached = r["macs"] / r["packed"]
    return [r["what"], str(r["batch"]), f"{1e3 * r['torch']:.3f}", f"{1e3 * r['bf16']:.3f}",
            f"{1e3 * r['int8']:.3f}", numpy_ms, f"{1e3 * r['packed']:.4f}",
            f"{r['torch'] / r['packed']:.1f}x", numpy_ratio,
            f"{best_t / r['packed']:.1f}x ({best})", f"{reached / 1e9:,.0f}",
            f"{reached / limit:.0%}", f"{r['float_bytes']:,}", f"{r['export_bytes']:,}",
            f"{r['engine_bytes']:,}", f"{r['float_bytes'] / r['engine_bytes']:.1f}x"]


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 256])
    parser.add_argument("--ghz", type=float, default=3.5,
                        help="the cores' clock for the limit (3.5: measured on the Zen 4 VM)")
    parser.add_argument("--int8-min-rows", type=int, default=None,
                        help="the engine's int8 crossover (default: popcount at every batch)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    batches = tuple(args.batches)
    rows = classifier_rows(args.rounds, batches, args.int8_min_rows) + \
        conv_rows(args.rounds, batches)
    limit = args.threads * args.ghz * 1e9 * MACS_PER_CYCLE
    table = Table(title=f"Binary layers: packed engine ({kernels.isa()}, "
                        f"{'OpenMP' if kernels.openmp() else 'one thread'}) vs float32, bf16 "
                        f"and int8 torch and the old numpy path ({args.threads} CPU threads, "
                        f"torch {torch.__version__}, numpy {np.__version__})")
    for col in COLUMNS:
        table.add_column(col, justify="right")
    for r in rows:
        table.add_row(*table_row(r, limit))
    console = Console(width=260)
    console.print(table)
    console.print(f"Limit of the binary kernel: {limit / 1e12:.2f} TMAC/s = {args.threads} cores"
                  f" x {args.ghz} GHz x {MACS_PER_CYCLE:.0f} binary MACs a cycle (XOR, "
                  f"VPOPCNTQ, ADD of 512 bits on four 256-bit pipes); 'of limit' is the "
                  f"engine's share of it.")
    return rows


if __name__ == "__main__":
    main()
