"""Entry point: ``python -m bnn_edge.export ckpt_path=PATH out=DIR [format=native|onnx|qonnx]``.

See docs/export.md; ``native`` is the packed-bits export with its C reference, ``onnx`` and
``qonnx`` the whole network as a graph (bnn_edge.hardware.onnx_export).
"""

from __future__ import annotations

import shlex
from pathlib import Path

import hydra
from omegaconf import DictConfig

from bnn_edge.cli.app import fail, run_app
from bnn_edge.config import CONF_DIR, check_output_dir, require_choice, require_int
from bnn_edge.errors import BnnEdgeError, ConfigError

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


def export_checkpoint(ckpt_path: str, out: str, n_vectors: int = 256,
                      fmt: str = "native") -> dict:
    """Export a checkpoint (binary layers, or the whole network as ONNX / QONNX) with test
    vectors from its run's training data."""
    import torch

    from bnn_edge.experiment.rundir import RunDir, load_module
    from bnn_edge.hardware.export import export_model

    require_choice("format", fmt, FORMATS)
    if fmt != "native":
        from bnn_edge.hardware.onnx_export import require_packages

        require_packages(fmt)
    module = load_module(ckpt_path)
    hp = module.hparams
    datamodule = RunDir.of_checkpoint(ckpt_path).datamodule()
    datamodule.setup("fit")
    dataset = datamodule.train_dataloader().dataset
    n = min(n_vectors, len(dataset))
    samples = torch.stack([dataset[i][0] for i in range(n)])
    meta = {"model": hp.network, "binarize": hp.binarize, "aug": hp.aug,
            "checkpoint": str(Path(ckpt_path).resolve())}
    if fmt != "native":
        from bnn_edge.hardware.onnx_export import export_onnx

        return export_onnx(module.net, Path(out), samples, meta, fmt)
    return export_model(module.net, Path(out), samples, meta)


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="export")
def _main(cfg: DictConfig) -> None:
    try:
        require_choice("format", cfg.format, FORMATS)
        require_int("n_vectors", cfg.n_vectors, 64)
        check_export_dir(cfg.out, cfg.overwrite)
        manifest = export_checkpoint(cfg.ckpt_path, cfg.out, cfg.n_vectors, cfg.format)
    except BnnEdgeError as e:
        fail(e)
    if cfg.format != "native":
        from bnn_edge.hardware.onnx_export import summary

        print(summary(manifest, Path(cfg.out), cfg.format))
        return
    layers = ", ".join(f"{layer['name']} {layer['in_features']}->{layer['out_features']}"
                       for layer in manifest["binary_layers"])
    print(f"Exported {len(manifest['binary_layers'])} binary layers ({layers}) and "
          f"{manifest['vectors']['n']} test vectors to {cfg.out}")
    run = (f"cc -std=c99 -O2 bnn.c bnn_check.c -o bnn_check && ./bnn_check "
           f"classifier_input.i8 {manifest['vectors']['n']} scores.f32")
    print(f"C reference: cd {shlex.quote(str(cfg.out))} && {run}")


def main() -> None:
    run_app("export", _main, output_dir=False)


if __name__ == "__main__":
    main()
