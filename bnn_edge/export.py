"""Entry point: ``python -m bnn_edge.export ckpt_path=PATH out=DIR [format=native|onnx|qonnx]``.

See docs/export.md; ``native`` is the packed-bits export with its C reference, ``onnx`` and
``qonnx`` the whole network as a graph (bnn_edge.hardware.onnx_export).
"""

from __future__ import annotations

import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

from bnn_edge.config import CONF_DIR, require_choice, require_int
from bnn_edge.errors import BnnEdgeError, ConfigError

FORMATS = ("native", "onnx", "qonnx")


def export_checkpoint(ckpt_path: str, out: str, n_vectors: int = 256,
                      fmt: str = "native") -> dict:
    """Export a checkpoint (binary layers, or the whole network as ONNX / QONNX) with test
    vectors from its run's training data."""
    import torch

    from bnn_edge.hardware.export import export_model
    from bnn_edge.runs import load_checkpoint, run_datamodule

    require_choice("format", fmt, FORMATS)
    if fmt != "native":
        from bnn_edge.hardware.onnx_export import require_packages

        require_packages(fmt)

    module = load_checkpoint(ckpt_path)
    hp = module.hparams
    datamodule = run_datamodule(ckpt_path)
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
        if not str(cfg.out).strip():
            raise ConfigError("out", cfg.out, "a folder path")
        manifest = export_checkpoint(cfg.ckpt_path, cfg.out, cfg.n_vectors, cfg.format)
        if cfg.format != "native":
            from bnn_edge.hardware.onnx_export import summary

            print(summary(manifest, Path(cfg.out), cfg.format))
            return
    except BnnEdgeError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    layers = ", ".join(f"{layer['name']} {layer['in_features']}->{layer['out_features']}"
                       for layer in manifest["binary_layers"])
    print(f"Exported {len(manifest['binary_layers'])} binary layers ({layers}) and "
          f"{manifest['vectors']['n']} test vectors to {cfg.out}")
    print(f"C reference: cd {cfg.out} && cc -std=c99 -O2 bnn.c bnn_check.c -o bnn_check && "
          f"./bnn_check classifier_input.i8 {manifest['vectors']['n']} scores.f32")


if __name__ == "__main__":
    _main()
