"""Reading back what a training run wrote: its checkpoint, its config and its data."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from bnn_edge.config import instantiate_checked
from bnn_edge.errors import ConfigError, DataError

DATA_MODULE_PREFIX = "bnn_edge.data."


def load_checkpoint(path: str | Path):
    """A trained BNNClassifier from a checkpoint, loaded with ``weights_only=True``."""
    from bnn_edge.module import BNNClassifier

    path = Path(str(path))
    if not path.is_file():
        raise ConfigError("ckpt_path", str(path), "an existing checkpoint file")
    try:
        return BNNClassifier.load_from_checkpoint(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises several types for a corrupt or foreign file
        raise DataError(f"{path}: not a bnn_edge checkpoint ({type(e).__name__}: {e})") from e


def run_config(ckpt_path: str | Path) -> DictConfig:
    """The resolved ``config.yaml`` of the run a checkpoint belongs to (../config.yaml)."""
    run_dir = Path(str(ckpt_path)).resolve().parent.parent
    path = run_dir / "config.yaml"
    if not path.is_file():
        raise DataError(f"{path}: missing; the checkpoint must sit in <run>/checkpoints/ "
                        f"next to the run's config.yaml")
    return OmegaConf.load(path)


def run_datamodule(ckpt_path: str | Path, **overrides):
    """The data module of a checkpoint's run, set up, with ``data.*`` ``overrides``."""
    cfg = run_config(ckpt_path)
    data_cfg = OmegaConf.merge(cfg.data, overrides)
    target = str(data_cfg.get("_target_", ""))
    if not target.startswith(DATA_MODULE_PREFIX):
        # a config written elsewhere must not make us call an arbitrary function
        raise DataError(f"{Path(str(ckpt_path)).resolve().parent.parent / 'config.yaml'}: "
                        f"data._target_={target!r} is not a bnn_edge data module")
    datamodule = instantiate_checked(data_cfg, "data")
    datamodule.setup("fit")
    return datamodule
