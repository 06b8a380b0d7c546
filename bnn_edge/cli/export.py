"""``python -m bnn_edge.export ckpt_path=PATH out=DIR [format=native|onnx|qonnx]``: :data:`ABOUT`.

See docs/export.md; ``native`` is the packed-bits export with its C reference, ``onnx`` and
``qonnx`` the whole network as a graph (bnn_edge.hardware.onnx_export).
"""

from __future__ import annotations

import shlex
from pathlib import Path

from omegaconf import DictConfig

from bnn_edge.cli.app import fail, run_app
from bnn_edge.cli.help import app_help
from bnn_edge.errors import BnnEdgeError
from bnn_edge.validation import require_choice, require_int

ABOUT = """\
Export a trained checkpoint (or a run folder: its best checkpoint) for hardware and other
runtimes, with test vectors drawn from its run's data (the first n_vectors trials of the
training split, then of the validation and test splits). format=native writes the binary
layers as packed bits with folded thresholds (model.npz, manifest.json), the test vectors
and a C99 XNOR-popcount reference with its driver; format=onnx and format=qonnx write the
whole network as an ONNX graph (QONNX: with BipolarQuant nodes, for FINN). Each format
then runs its own reader on the test vectors and prints how it agrees with PyTorch
(native: the packed engine reading the folder)."""
#: what the command line holds, for the usage line
ARGS = "ckpt_path=PATH out=DIR [option=value ...]"


def _main(cfg: DictConfig) -> None:
    from bnn_edge.experiment.export import FORMATS, check_export_dir, export_checkpoint

    try:
        require_choice("format", cfg.format, FORMATS)
        require_int("n_vectors", cfg.n_vectors, 64)
        check_export_dir(cfg.out, cfg.overwrite)
        manifest = export_checkpoint(cfg.ckpt_path, cfg.out, cfg.n_vectors, cfg.format)
        n = manifest["vectors"]["n"]
        if n < cfg.n_vectors:
            print(f"n_vectors={cfg.n_vectors}: the run's data holds {n} trials "
                  f"(training, validation and test splits together); exported {n}")
        if cfg.format != "native":
            from bnn_edge.hardware.onnx_export import summary

            print(summary(manifest, Path(cfg.out), cfg.format))
            return
        from bnn_edge.hardware.packed.engine import native_agreement

        agreement = native_agreement(Path(cfg.out))
    except BnnEdgeError as e:
        fail(e)
    layers = ", ".join(f"{layer['name']} {layer['in_features']}->{layer['out_features']}"
                       for layer in manifest["binary_layers"])
    print(f"Exported {len(manifest['binary_layers'])} binary layers ({layers}) and "
          f"{n} test vectors to {cfg.out}")
    print(agreement)
    run = (f"cc -std=c99 -O2 bnn.c bnn_check.c -o bnn_check && ./bnn_check "
           f"classifier_input.i8 {n} scores.f32")
    print(f"C reference: cd {shlex.quote(str(cfg.out))} && {run}")


def main() -> None:
    run_app("export", _main, ABOUT, ARGS, render_help=app_help, output_dir=False)


if __name__ == "__main__":
    main()
