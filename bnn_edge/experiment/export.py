"""Export of a run's checkpoint: the native packed-bits contract, ONNX or QONNX.

The checkpoint and its run's data (for the test vectors) are read through
:class:`~bnn_edge.experiment.rundir.RunDir`, never instantiated from the folder.
"""

from __future__ import annotations

from pathlib import Path

from bnn_edge.errors import ConfigError
from bnn_edge.validation import check_output_dir, require_choice

FORMATS = ("native", "onnx", "qonnx")


def check_export_dir(out, overwrite) -> Path:
    """The export folder: writable, and empty unless ``overwrite=true``."""
    if not isinstance(overwrite, bool):
        raise ConfigError("overwrite", overwrite, "true or false")
    path = check_output_dir("out", out)
    if path.is_dir() and any(path.iterdir()) and not overwrite:
        raise ConfigError("out", str(out), "an empty or new folder (it holds files; "
                          "overwrite=true replaces the export's files in it)")
    return path


def vector_samples(datamodule, n: int) -> tuple:
    """The first ``n`` trials of the training split, then of the validation and test splits
    when it holds fewer: (inputs stacked, {split: trials taken})."""
    import torch

    samples, taken = [], {}
    for split in ("train", "val", "test"):
        dataset = getattr(datamodule, f"{split}_dataloader")().dataset
        k = min(n - len(samples), len(dataset))
        samples += [dataset[i][0] for i in range(k)]
        if k:
            taken[split] = k
    return torch.stack(samples), taken


def export_checkpoint(ckpt_path: str | Path, out: str, n_vectors: int = 256,
                      fmt: str = "native") -> dict:
    """Export a checkpoint (binary layers, or the whole network as ONNX / QONNX) with
    ``n_vectors`` test vectors from its run's data (:func:`vector_samples`). ``ckpt_path``
    may name a run folder, as for ``evaluate``: its best checkpoint, else its last.ckpt."""
    from bnn_edge.experiment.rundir import RunDir, load_module
    from bnn_edge.hardware.export import export_model

    require_choice("format", fmt, FORMATS)
    if fmt != "native":
        from bnn_edge.hardware.onnx_export import require_packages

        require_packages(fmt)
    ckpt_path = RunDir.find_checkpoint(ckpt_path)
    module = load_module(ckpt_path)
    hp = module.hparams
    datamodule = RunDir.of_checkpoint(ckpt_path).datamodule()
    datamodule.setup("fit")
    samples, taken = vector_samples(datamodule, n_vectors)
    meta = {"model": hp.network, "binarize": hp.binarize, "aug": hp.aug,
            "checkpoint": str(Path(ckpt_path).resolve()), "vectors_from": taken}
    if fmt != "native":
        from bnn_edge.hardware.onnx_export import export_onnx

        return export_onnx(module.net, Path(out), samples, meta, fmt)
    return export_model(module.net, Path(out), samples, meta)
