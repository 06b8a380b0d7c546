"""``python -m bnn_edge.export ckpt_path=PATH out=DIR [format=native|onnx|qonnx]``.

See docs/export.md; ``native`` is the packed-bits export with its C reference, ``onnx`` and
``qonnx`` the whole network as a graph (bnn_edge.hardware.onnx_export).
"""

from __future__ import annotations

import shlex
from pathlib import Path

import hydra
from omegaconf import DictConfig

from bnn_edge.cli.app import CONF_DIR, fail, run_app
from bnn_edge.errors import BnnEdgeError
from bnn_edge.experiment.export import FORMATS, check_export_dir, export_checkpoint
from bnn_edge.validation import require_choice, require_int


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="export")
def _main(cfg: DictConfig) -> None:
    try:
        require_choice("format", cfg.format, FORMATS)
        require_int("n_vectors", cfg.n_vectors, 64)
        check_export_dir(cfg.out, cfg.overwrite)
        manifest = export_checkpoint(cfg.ckpt_path, cfg.out, cfg.n_vectors, cfg.format)
        if cfg.format != "native":
            from bnn_edge.hardware.onnx_export import summary

            print(summary(manifest, Path(cfg.out), cfg.format))
            return
    except BnnEdgeError as e:
        fail(e)
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
