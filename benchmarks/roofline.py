"""Training against this machine's roofline: samples/s, GFLOP/s and peak memory per network.

In one run: the float32 and bf16 GEMM throughput of the cores in use (2048^3 matrix
products), then, for ECG (aug 1, 7) and EEG (aug 1, 11) in each variant, a training step
of the plain loop (Adam, binary-weight clipping, random batches: speed does not depend on
the values) in float32 and in bf16 autocast (what ``trainer.precision=bf16-mixed`` runs on
a CPU). Each row runs in a fresh process, so its peak resident memory is that process's own.

FLOPs are analytic (:func:`training_flops`): 2 per multiply-accumulate of every conv and
linear layer, counted from the network's shape probe, once for the forward pass, once for
the weight gradients and once for the input gradients, which the first layer does not
compute. Batch norm, activations, pooling and the optimizer are not counted: they move
memory, they do not multiply matrices.
Run: ``make bench`` or ``python -m benchmarks.roofline --help``.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time

import torch
from rich.console import Console
from rich.table import Table
from torch.nn import functional as F

from bnn_edge.allocator import reuse_freed_memory
from bnn_edge.hardware.cost.model import layer_shapes
from bnn_edge.models import BINARIZE_CHOICES
from bnn_edge.nn import clip_binary_weights_
from bnn_edge.tasks import build_network

#: (task, aug, chunk) of the table; chunk is EEG's model.chunk (None: its default, which
#: keeps aug 1 plain and recomputes aug 11 in chunks at batch 32)
ROWS = (("ecg", 1, None), ("ecg", 7, None), ("eeg", 1, None), ("eeg", 11, None))
PRECISIONS = ("32-true", "bf16-mixed")


def gemm_gflops(dtype: torch.dtype, n: int = 2048, reps: int = 5) -> float:
    """Median GFLOP/s of an n^3 matrix product in ``dtype`` on the current threads."""
    a, b = torch.randn(n, n).to(dtype), torch.randn(n, n).to(dtype)
    a @ b
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - t0)
    return 2 * n**3 / statistics.median(times) / 1e9


def training_flops(task: str, binarize: str, aug: int) -> int:
    """Analytic FLOPs of one training step per trial (see the module docstring)."""
    with torch.device("meta"):
        net = build_network(task, binarize=binarize, aug=aug)
    shapes = layer_shapes(net, net.input_shape)
    macs = [s.rows * s.cols * s.positions for s in shapes]
    return 2 * (3 * sum(macs) - macs[0])


def measure(task: str, aug: int, binarize: str, precision: str, chunk: int | None,
            batch: int, steps: int, warmup: int, threads: int) -> dict:
    """Median seconds per training step and peak resident memory of this process."""
    torch.set_num_threads(threads)
    reuse_freed_memory()  # as bnn_edge.train does
    torch.manual_seed(0)
    options = {} if chunk is None else {"chunk": chunk}
    net = build_network(task, binarize=binarize, aug=aug, **options).train()
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    x = torch.randn(batch, *net.input_shape)
    y = torch.randint(0, net.num_classes, (batch,))
    bf16 = precision == "bf16-mixed"
    times = []
    for i in range(warmup + steps):
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = F.cross_entropy(net(x), y)
        loss.backward()
        opt.step()
        clip_binary_weights_(net)
        if i >= warmup:
            times.append(time.perf_counter() - t0)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {"step_s": statistics.median(times), "peak_bytes": peak}


def run_row(spec: dict) -> dict:
    """:func:`measure` in a fresh Python process (its own peak memory)."""
    out = subprocess.run([sys.executable, "-m", "benchmarks.roofline", "--row", json.dumps(spec)],
                         capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"row {spec} failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def path_of(task: str, aug: int, chunk: int | None, batch: int) -> str:
    """How the row trains: plain layers, or the EEG chain recomputed in chunks of N."""
    if task != "eeg":
        return "plain"
    with torch.device("meta"):
        net = build_network(task, aug=aug, **({} if chunk is None else {"chunk": chunk}))
        n = net.features.chunk_for(net.prepare(torch.empty(batch, *net.input_shape)))
    return f"recompute {n}" if n else "plain"


def steps_for(task: str, aug: int, quick: bool) -> tuple[int, int]:
    """(warm-up, timed) steps: a few batches at EEG aug > 1, where one takes half a minute."""
    if task == "eeg" and aug > 1:
        return 1, 1
    if quick:
        return 1, 2
    return (2, 10) if task == "eeg" else (3, 30)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--rows", nargs="+", default=None, metavar="TASK:AUG[:CHUNK]",
                        help="rows to run, e.g. ecg:1 eeg:11:1; CHUNK is EEG's model.chunk "
                             "(default: the table's rows)")
    parser.add_argument("--variants", nargs="+", default=list(BINARIZE_CHOICES),
                        choices=BINARIZE_CHOICES)
    parser.add_argument("--precisions", nargs="+", default=list(PRECISIONS), choices=PRECISIONS)
    parser.add_argument("--quick", action="store_true", help="fewer timed steps")
    parser.add_argument("--gemm-size", type=int, default=2048)
    parser.add_argument("--row", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.row:  # a child process: one measurement, printed as JSON
        print(json.dumps(measure(**json.loads(args.row))))
        return {}
    rows = ROWS if args.rows is None else [_parse_row(parser, r) for r in args.rows]
    torch.set_num_threads(args.threads)
    peak = {"fp32": gemm_gflops(torch.float32, args.gemm_size),
            "bf16": gemm_gflops(torch.bfloat16, args.gemm_size)}
    results = []
    for task, aug, chunk in rows:
        warmup, steps = steps_for(task, aug, args.quick)
        flops = {v: training_flops(task, v, aug) for v in args.variants}
        for binarize in args.variants:
            row = {"task": task, "aug": aug, "binarize": binarize, "chunk": chunk,
                   "path": path_of(task, aug, chunk, args.batch_size), "flops": flops[binarize]}
            for precision in args.precisions:
                m = run_row({"task": task, "aug": aug, "binarize": binarize,
                             "precision": precision, "chunk": chunk,
                             "batch": args.batch_size, "steps": steps, "warmup": warmup,
                             "threads": args.threads})
                row[precision] = {**m, "samples_s": args.batch_size / m["step_s"],
                                  "gflops": flops[binarize] * args.batch_size / m["step_s"] / 1e9}
            results.append(row)
    _print(results, peak, args)
    return {"peak": peak, "rows": results}


def _parse_row(parser, text: str) -> tuple[str, int, int | None]:
    parts = text.split(":")
    try:
        task, aug = parts[0], int(parts[1])
        chunk = int(parts[2]) if len(parts) > 2 else None
    except (IndexError, ValueError):
        parser.error(f"--rows {text!r}: expected TASK:AUG or TASK:AUG:CHUNK")
    if (task not in ("ecg", "eeg") or aug < 1 or len(parts) > 3
            or (chunk is not None and (chunk < 0 or task != "eeg"))):
        parser.error(f"--rows {text!r}: TASK is ecg or eeg, AUG >= 1, CHUNK >= 0 (eeg only)")
    return task, aug, chunk


def _print(results: list[dict], peak: dict, args) -> None:
    fp32 = "32-true"
    title = (f"Training roofline, batch {args.batch_size}, {args.threads} CPU threads, torch "
             f"{torch.__version__}: float32 GEMM {peak['fp32']:.0f} GFLOP/s, bf16 GEMM "
             f"{peak['bf16']:.0f} GFLOP/s ({args.gemm_size}^3)")
    table = Table(title=title)
    cols = ["task", "aug", "binarize", "path", "GFLOP/trial"]
    if fp32 in args.precisions:
        cols += ["fp32 samples/s", "GFLOP/s", "of fp32 GEMM", "peak RSS GB", "step vs none"]
    if "bf16-mixed" in args.precisions:
        cols += ["bf16 samples/s", "of bf16 GEMM", "bf16 peak GB"]
        if fp32 in args.precisions:
            cols.append("bf16 / fp32 speed")
    for col in cols:
        table.add_column(col, justify="right")
    real = {(r["task"], r["aug"], r["chunk"]): r for r in results if r["binarize"] == "none"}
    for r in results:
        cells = [r["task"], str(r["aug"]), r["binarize"], r["path"], f"{r['flops'] / 1e9:.3f}"]
        if fp32 in r:
            m = r[fp32]
            base = real.get((r["task"], r["aug"], r["chunk"]))
            ratio = m["step_s"] / base[fp32]["step_s"] if base else None
            cells += [f"{m['samples_s']:.1f}", f"{m['gflops']:.1f}",
                      f"{m['gflops'] / peak['fp32']:.0%}", f"{m['peak_bytes'] / 1e9:.2f}",
                      "-" if ratio is None else f"{ratio:.2f}x"]
        if "bf16-mixed" in r:
            b = r["bf16-mixed"]
            cells += [f"{b['samples_s']:.1f}", f"{b['gflops'] / peak['bf16']:.0%}",
                      f"{b['peak_bytes'] / 1e9:.2f}"]
            if fp32 in r:
                cells.append(f"{b['samples_s'] / r[fp32]['samples_s']:.2f}x")
        table.add_row(*cells)
    Console(width=200).print(table)


if __name__ == "__main__":
    main()
