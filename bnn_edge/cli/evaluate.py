"""``python -m bnn_edge.evaluate ckpt_path=PATH``: bit-error robustness curves."""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

from bnn_edge.cli.app import CONF_DIR, fail, run_app
from bnn_edge.errors import BnnEdgeError
from bnn_edge.experiment.robustness import evaluate


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="evaluate")
def _main(cfg: DictConfig) -> None:
    try:
        evaluate(cfg)
    except BnnEdgeError as e:
        fail(e, cfg.paths.output_dir)


def main() -> None:
    run_app("evaluate", _main)


if __name__ == "__main__":
    main()
