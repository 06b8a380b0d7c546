"""What training shows on the console besides its log lines: the network and the epochs.

:class:`NetworkSummary` replaces Lightning's model summary, which counts every parameter
at 32 bit and finds 0 FLOPs in these networks (they have no example input): per layer
with weights its parameters, the bits each weight is stored with and its
multiply-accumulates per inference, then the memory as Table IV of the paper counts it.
:class:`EpochProgressBar` is Lightning's rich progress bar counting epochs from 1
("Epoch 1/1" for one epoch, where Lightning says "Epoch 0/0").
"""

from __future__ import annotations

import lightning as L
from lightning.pytorch.callbacks import ModelSummary, RichProgressBar


def summary_rows(hp, image_size: int = 224) -> tuple[list[tuple[str, ...]], dict]:
    """(a row per conv/linear layer: name, type, weight shape, parameters, bits per weight,
    MACs per inference; the Table IV report of :func:`~bnn_edge.hardware.memory.memory_report`
    with the real and binary MAC totals) of the network of hyper-parameters ``hp``."""
    from bnn_edge.hardware.cost import build_from, meta_shapes
    from bnn_edge.hardware.memory import memory_report

    options = {"num_classes": hp["num_classes"], **(hp.get("net_options") or {})}
    report = memory_report(hp["network"], hp["binarize"], hp["aug"], **options)
    memory = {r["name"]: r for r in report["layers"]}
    _, shapes = meta_shapes(build_from(hp["network"], {"aug": hp["aug"], **options}),
                            hp["binarize"], image_size)
    rows, macs = [], {"real": 0, "binary": 0}
    for s in shapes:
        m = memory[s.name]
        count = s.rows * s.cols * s.positions
        macs["binary" if s.binary else "real"] += count
        rows.append((s.name, m["kind"], "x".join(map(str, m["shape"])), f"{m['params']:,}",
                     str(m["bits_mixed_fp32"]), f"{count:,}"))
    return rows, report | {"macs": macs}


def summary_text(hp, image_size: int = 224) -> list:
    """The summary as rich renderables: the per-layer table, then the totals."""
    from rich import box
    from rich.table import Table

    from bnn_edge.hardware.memory import human_bytes

    rows, report = summary_rows(hp, image_size)
    table = Table(title=f"Network: {hp['network']} binarize={hp['binarize']} aug={hp['aug']}",
                  box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)
    for i, col in enumerate(("layer", "type", "weights", "parameters", "bits",
                             "MACs / inference")):
        table.add_column(col, justify="left" if i < 3 else "right", overflow="fold")
    for row in rows:
        table.add_row(*row)
    macs = report["macs"]
    binary = (f" + {macs['binary']:,} binary (XNOR-popcount)" if macs["binary"] else "")
    return [table,
            f"{report['configured_params']:,} parameters, {report['binary_params']:,} of them "
            f"binary; {macs['real']:,} real MACs{binary} per inference",
            f"memory as Table IV counts it: {human_bytes(report['bytes_mixed_fp32'])} (binary "
            f"weights 1 bit, batch norms before a sign folded into thresholds, the rest 32 "
            f"bit; {human_bytes(report['bytes_mixed_int8'])} with the rest 8 bit), "
            f"{report['saving_vs_fp32_pct']:.1f}% less than the real network at 32 bit"]


class NetworkSummary(ModelSummary):
    """The model summary of a run (``callbacks.rich_model_summary``; off with
    ``trainer.enable_model_summary=false``): :func:`summary_text` at the start of fitting."""

    def __init__(self) -> None:
        super().__init__(max_depth=1)

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.is_global_zero:
            return
        from rich.console import Console

        image_size = getattr(trainer.datamodule, "image_size", 224)
        console = Console()
        for item in summary_text(pl_module.hparams, image_size):
            console.print(item)


class EpochProgressBar(RichProgressBar):
    """Lightning's rich progress bar, epochs counted from 1: "Epoch 3/10"."""

    def _get_train_description(self, current_epoch: int) -> str:
        total = self.trainer.max_epochs
        text = f"Epoch {current_epoch + 1}" + (f"/{total}" if total and total > 0 else "")
        return f"{text:{len(self.validation_description)}}"
