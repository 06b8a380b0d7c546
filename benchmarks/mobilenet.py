"""MobileNet V1 training throughput on CPU: forward + backward images/s for each variant.

Random 224 x 224 batches of 32 (throughput does not depend on the values), cross-entropy
over 1000 classes; the first iterations are a warm-up, the figure is the median over the
timed ones. Also counts the forward FLOPs per image (torch's flop counter: convolutions
and matrix products; a training step is about three times that) and what the measured rate
means for the paper's 255 ImageNet epochs (docs/mobilenet.md).
Run: ``make bench`` or ``python -m benchmarks.mobilenet --help``.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from rich.console import Console
from rich.table import Table
from torch.nn import functional as F
from torch.utils.flop_counter import FlopCounterMode

from bnn_edge.models import BINARIZE_CHOICES
from bnn_edge.nn import binary_layers
from bnn_edge.tasks import build_network

IMAGENET_TRAIN_IMAGES = 1_281_167
PAPER_EPOCHS = 255


def forward_flops_per_image(binarize: str, image_size: int, num_classes: int) -> float:
    """FLOPs of one forward pass of one image.

    Only the forward pass is counted: torch's counter overstates the backward pass of
    grouped (depthwise) convolutions; backward is about twice the forward, as for any conv.
    """
    net = build_network("mobilenet", binarize, 1, num_classes=num_classes).eval()
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        net(torch.randn(1, 3, image_size, image_size))
    return counter.get_total_flops()


def throughput(binarize: str, batch_size: int, image_size: int, num_classes: int,
               warmup: int, iters: int) -> float:
    """Median images/s of forward + backward over ``iters`` timed batches."""
    torch.manual_seed(0)
    net = build_network("mobilenet", binarize, 1, num_classes=num_classes).train()
    x = torch.randn(batch_size, 3, image_size, image_size)
    y = torch.randint(0, num_classes, (batch_size,))
    times = []
    for i in range(warmup + iters):
        t0 = time.perf_counter()
        net.zero_grad(set_to_none=True)
        F.cross_entropy(net(x), y).backward()
        if i >= warmup:
            times.append(time.perf_counter() - t0)
    return batch_size / statistics.median(times)


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--num-classes", type=int, default=1000)
    parser.add_argument("--warmup", type=int, default=1, help="untimed iterations")
    parser.add_argument("--iters", type=int, default=3, help="timed iterations")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args(argv)
    if args.iters < 1 or args.warmup < 0:
        parser.error("--iters must be >= 1 and --warmup >= 0")
    torch.set_num_threads(args.threads)
    rows = []
    for binarize in BINARIZE_CHOICES:
        net = build_network("mobilenet", binarize, 1, num_classes=args.num_classes)
        rows.append({
            "binarize": binarize,
            "params": sum(p.numel() for p in net.parameters()),
            "binary": sum(m.weight.numel() for _, m in binary_layers(net)),
            "gflop": forward_flops_per_image(binarize, args.image_size, args.num_classes) / 1e9,
            "images_s": throughput(binarize, args.batch_size, args.image_size,
                                   args.num_classes, args.warmup, args.iters),
        })
    table = Table(title=f"MobileNet V1 forward + backward, {args.image_size} x {args.image_size}, "
                        f"batch {args.batch_size}, {args.threads} CPU threads, "
                        f"torch {torch.__version__}")
    for col in ("binarize", "parameters", "binary weights", "forward GFLOP / image",
                "images/s", f"days for {PAPER_EPOCHS} ImageNet epochs"):
        table.add_column(col, justify="right")
    for r in rows:
        days = PAPER_EPOCHS * IMAGENET_TRAIN_IMAGES / r["images_s"] / 86400
        table.add_row(r["binarize"], f"{r['params']:,}", f"{r['binary']:,}",
                      f"{r['gflop']:.3f}", f"{r['images_s']:.2f}", f"{days:,.0f}")
    Console().print(table)
    return rows


if __name__ == "__main__":
    main()
