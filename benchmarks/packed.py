"""Packed binary classifier (XNOR-popcount) against float32 torch linear layers.

Shapes of the paper's binarized classifiers: EEG 2520 -> 80 -> 2 and MobileNet
1024 -> 2816 -> 1000. For each: time per batch at batch 1 and 256 of the float32 torch
layers (linear, batch norm, sign), of the packed numpy path
(``bnn_edge.hardware.packed.packed_forward``, input packing included) and of the exported
C reference per sample; and the weight memory of both forms.
Run: ``make bench`` or ``python -m benchmarks.packed``.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from rich.console import Console
from rich.table import Table
from torch import nn

from bnn_edge.hardware.export import C_FILES, weights_header
from bnn_edge.hardware.packed import fold_classifier, packed_forward
from bnn_edge.nn import BinaryLinear, SignActivation

SHAPES = {"EEG": (2520, 80, 2), "MobileNet": (1024, 2816, 1000)}

C_TIMER = r"""
#define _POSIX_C_SOURCE 199309L
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include "bnn.h"
int main(int argc, char **argv) {
    int reps = atoi(argv[1]), in = bnn_input_features(), classes = bnn_num_classes();
    signed char *x = malloc((size_t)in);
    float *s = malloc((size_t)classes * sizeof(float));
    unsigned seed = 1; int sink = 0;
    for (int i = 0; i < in; i++) {
        seed = seed * 1103515245u + 12345u;
        x[i] = (seed >> 16) & 1 ? 1 : -1;
    }
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int r = 0; r < reps; r++) {
        x[r % in] = (signed char)-x[r % in];
        sink += bnn_forward(x, s, NULL);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double seconds = (t1.tv_sec - t0.tv_sec) + 1e-9 * (t1.tv_nsec - t0.tv_nsec);
    printf("%.9f %d\n", seconds / reps, sink);
    return 0;
}
"""


def classifier(n_in: int, hidden: int, out: int) -> nn.Sequential:
    """A binary classifier (eval mode) with random batch-norm statistics."""
    torch.manual_seed(0)
    net = nn.Sequential(BinaryLinear(n_in, hidden), nn.BatchNorm1d(hidden), SignActivation(),
                        BinaryLinear(hidden, out), nn.BatchNorm1d(out)).eval()
    for m in net:
        if isinstance(m, nn.BatchNorm1d):
            m.running_mean.normal_(0, 5)
            m.running_var.uniform_(1, 20)
    return net


def float_model(n_in: int, hidden: int, out: int) -> nn.Sequential:
    """The same shapes with real weights: what a float32 classifier computes."""
    return nn.Sequential(nn.Linear(n_in, hidden), nn.BatchNorm1d(hidden), nn.Hardtanh(),
                         nn.Linear(hidden, out), nn.BatchNorm1d(out)).eval()


def median_time(fn, reps: int) -> float:
    fn()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def c_time_per_sample(layers, reps: int) -> float | None:
    """Seconds per sample of the exported C reference, or None without a C compiler."""
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        return None
    from importlib import resources

    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        for name in C_FILES:
            (d / name).write_bytes((resources.files("bnn_edge.hardware") / "c" / name).read_bytes())
        (d / "bnn_weights.h").write_text(weights_header(layers))
        (d / "timer.c").write_text(C_TIMER)
        subprocess.run([cc, "-std=c99", "-O2", "bnn.c", "timer.c", "-o", "timer"], cwd=d,
                       check=True)
        out = subprocess.run(["./timer", str(reps)], cwd=d, check=True, capture_output=True,
                             text=True).stdout
        return float(out.split()[0])


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=20)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    rows = []
    for task, (n_in, hidden, out) in SHAPES.items():
        binary = classifier(n_in, hidden, out)
        layers = fold_classifier(binary)
        real = float_model(n_in, hidden, out)
        float_bytes = 4 * (n_in * hidden + hidden * out)
        packed_bytes = sum(layer.weight_bits.nbytes for layer in layers)
        c_time = c_time_per_sample(layers, reps=2000 if task == "EEG" else 200)
        for batch in (1, 256):
            x = torch.randn(batch, n_in)
            xb = np.where(x.numpy() >= 0, 1, -1).astype(np.int8)
            with torch.inference_mode():
                t_float = median_time(lambda real=real, x=x: real(x), args.reps)
            t_packed = median_time(lambda layers=layers, xb=xb: packed_forward(layers, xb),
                                   args.reps)
            rows.append({"task": task, "shape": f"{n_in}->{hidden}->{out}", "batch": batch,
                         "float_ms": 1e3 * t_float, "packed_ms": 1e3 * t_packed,
                         "speedup": t_float / t_packed, "float_bytes": float_bytes,
                         "packed_bytes": packed_bytes, "c_us": None if c_time is None else
                         1e6 * c_time})
    table = Table(title=f"Binary classifier: packed bits vs float32 ({args.threads} CPU "
                        f"threads, torch {torch.__version__}, numpy {np.__version__})")
    for col in ("classifier", "batch", "float32 torch ms", "packed numpy ms",
                "float / packed", "weights float32 B", "weights packed B", "ratio",
                "C reference µs/sample"):
        table.add_column(col, justify="right")
    for r in rows:
        table.add_row(f"{r['task']} {r['shape']}", str(r["batch"]), f"{r['float_ms']:.3f}",
                      f"{r['packed_ms']:.3f}", f"{r['speedup']:.2f}x", f"{r['float_bytes']:,}",
                      f"{r['packed_bytes']:,}", f"{r['float_bytes'] / r['packed_bytes']:.1f}x",
                      "n/a" if r["c_us"] is None else f"{r['c_us']:.1f}")
    Console(width=160).print(table)
    return rows


if __name__ == "__main__":
    main()
