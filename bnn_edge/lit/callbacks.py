"""Lightning callbacks: run-folder checkpoints, RRAM bit-error sweeps, error-aware training.

- :class:`RunCheckpoint`: Lightning's ModelCheckpoint whose restored paths stay inside
  the run folder when the folder was copied or moved.

- :class:`RRAMBitErrors` (``callbacks=bit_errors``): after each validation epoch and
  after testing, evaluates the model at every error rate over Monte-Carlo fault draws and
  logs ``ber/acc@<rate>`` and ``ber/acc_std@<rate>`` (validation) or
  ``ber/test_acc@<rate>`` and ``ber/test_acc_std@<rate>`` (test).
- :class:`ErrorAwareTraining` (``bit_errors.train_ber``, wired into every training run
  by ``conf/bit_errors/default.yaml``): flips binary weights in the forward pass of every
  training step with fresh draws; the gradient computed through the faulty weights
  updates the fault-free latent weights.

Both borrow the weights through :class:`~bnn_edge.hardware.faults.WeightFaults` and give
them back bit for bit. The ``bit_errors.*`` options are validated by
:func:`~bnn_edge.hardware.faults.bit_error_settings`.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import lightning as L
import numpy as np
from lightning.pytorch.callbacks import ModelCheckpoint

from bnn_edge.errors import ConfigError
from bnn_edge.hardware.faults import (
    SweepPoint,
    WeightFaults,
    ber_sweep,
    bit_error_settings,
    check_fault_target,
    rate_label,
)
from bnn_edge.hardware.faults.settings import device_model, training_model
from bnn_edge.lit.tracking import wandb_runs
from bnn_edge.lit.wandb_panels import ber_rows, log_ber_curve
from bnn_edge.nn import binary_layers
from bnn_edge.validation import require_int


class RunCheckpoint(ModelCheckpoint):
    """ModelCheckpoint whose state, restored from a checkpoint, points into *this* folder.

    Lightning stores absolute paths (``best_model_path``, ``best_k_models``, ...) in every
    checkpoint; a run folder that was copied or moved would resume with the paths of the
    old folder (testing another run's checkpoint, or failing if it is gone). Paths under
    the stored ``dirpath`` are mapped to the same file names under the current one; those
    files that do not exist here are dropped.
    """

    def load_state_dict(self, state_dict: dict) -> None:
        old = state_dict.get("dirpath")
        if old and self.dirpath and Path(old) != Path(self.dirpath):
            state_dict = relocate_state(state_dict, Path(old), Path(self.dirpath))
        super().load_state_dict(state_dict)


def relocate_state(state: dict, old: Path, new: Path) -> dict:
    """A ModelCheckpoint state with the paths under ``old`` moved under ``new``."""
    def move(path) -> str:
        if not path:
            return ""
        p = Path(path)
        moved = new / p.name if p.parent == old else p
        return str(moved) if moved.parent == new and moved.is_file() else ""

    state = dict(state, dirpath=str(new))
    for key in ("best_model_path", "kth_best_model_path", "last_model_path"):
        if key in state:
            state[key] = move(state[key])
    if "best_k_models" in state:
        state["best_k_models"] = {move(p): v for p, v in state["best_k_models"].items()
                                  if move(p)}
    if not state.get("best_model_path"):
        state["best_model_score"] = None
    return state


def _has_fault_target(module, real_format: str) -> bool:
    return bool(WeightFaults(module, real_format).targets)


class RRAMBitErrors(L.Callback):
    """Bit-error robustness sweeps at validation and test time (``callbacks=bit_errors``).

    For every error rate (``ber``, or the device model's rate for ``cell`` after each of
    ``cycles``) the model is evaluated ``draws`` times with fresh faults (once at rate 0)
    on the validation or test loaders; the mean and standard deviation of the accuracy are
    logged. Validation sweeps run every ``every_n_epochs`` epochs (0: never) and never
    during the sanity check. The same seed gives the same faults at every epoch. Each
    sweep costs ``draws`` x (number of nonzero rates) evaluation passes.

    ``settings`` is the ``bit_errors`` group as a mapping (the config passes it whole, so a
    new option needs no change here); keyword ``options`` override it.
    """

    def __init__(self, settings: Mapping | None = None, binarize: str | None = None,
                 **options):
        super().__init__()
        merged = {**(settings or {}), **options}
        merged.pop("train_ber", None)
        self.settings = bit_error_settings(**merged)
        check_fault_target(binarize, self.settings.real_format, "bit_errors.real_format")
        self.results: dict[str, list[SweepPoint]] = {}

    def sweep(self, trainer: L.Trainer, pl_module: L.LightningModule,
              loaders) -> list[SweepPoint]:
        """The sweep of the settings over ``loaders`` (weights and modes restored after).

        With several processes (DDP) each evaluates its shard and the counts are summed,
        so every rank logs the accuracy over all samples.
        """
        s = self.settings
        if not _has_fault_target(pl_module, s.real_format):
            check_fault_target("none", s.real_format, "bit_errors.real_format")
        reduce = None
        if trainer.world_size > 1:
            def reduce(counts):
                return trainer.strategy.reduce(counts, reduce_op="sum")
        return ber_sweep(pl_module, loaders, s.rates, s.draws, s.real_format, s.seed,
                         pl_module.device, reduce, s.fault_model, s.parameter)

    def _log(self, pl_module: L.LightningModule, stage: str, points: list[SweepPoint]) -> None:
        self.results[stage] = points
        prefix = "ber/" if stage == "val" else "ber/test_"
        # another fault model's parameter is named: ber/acc@fraction=0.01
        swept = "" if self.settings.parameter == "ber" else f"{self.settings.parameter}="
        for p in points:
            # pooled over ranks by the sweep already; averaging equal values keeps them
            label = swept + rate_label(p.ber)
            pl_module.log(f"{prefix}acc@{label}", p.mean, sync_dist=True)
            pl_module.log(f"{prefix}acc_std@{label}", p.std, sync_dist=True)
        s = self.settings  # and to W&B: the curve as a table with its line plot
        log_ber_curve(wandb_runs(pl_module.loggers), f"ber/{stage}_curve",
                      ber_rows(f"{stage} epoch {pl_module.current_epoch}", points, s.cell,
                               s.rate_cycles),
                      f"{stage} accuracy", s.parameter)

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        n = self.settings.every_n_epochs
        if trainer.sanity_checking or n == 0:
            return
        if trainer.state.fn == "fit" and (trainer.current_epoch + 1) % n:
            return
        self._log(pl_module, "val", self.sweep(trainer, pl_module, trainer.val_dataloaders))

    def on_test_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._log(pl_module, "test", self.sweep(trainer, pl_module, trainer.test_dataloaders))


class ErrorAwareTraining(L.Callback):
    """Error-aware training: binary weights flip with probability ``ber`` in each training step.

    Before every training batch the binary-layer weights are replaced by their +-1 values
    with fresh random flips; after the backward pass (before the optimizer step) the
    latent weights are restored exactly, so the gradient computed through the faulty
    network updates the fault-free weights (Hirtzlin et al., AICAS 2019). Validation and
    checkpoints always see the fault-free weights. ``ber=0`` does nothing.
    ``fault_model`` (a name or the ``bit_errors.fault_model`` mapping; ``device``: the
    ``bit_errors.device`` mapping) draws the faults, with its level at ``ber``: each
    step is a fresh draw, stuck devices and failed columns included.
    """

    def __init__(self, ber: float = 0.0, seed: int = 0, binarize: str | None = None,
                 fault_model: Mapping | str = "bitflip", device: Mapping | None = None):
        super().__init__()
        device = None if device is None else dict(device)
        self.fault_model = training_model(fault_model, ber, device_model(device))
        require_int("bit_errors.seed", seed, 0)
        if ber > 0 and binarize == "none":
            raise ConfigError("bit_errors.train_ber", ber,
                              "0 for a model without binary layers (binarize=none)")
        self.ber, self.seed = float(ber), seed
        self.faults: WeightFaults | None = None
        self.rng: np.random.Generator | None = None
        self.flipped = self.bits = 0

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.ber == 0:
            return
        if not binary_layers(pl_module):
            raise ConfigError("bit_errors.train_ber", self.ber,
                              "0 for a model without binary layers (binarize=none)")
        self.faults = WeightFaults(pl_module, fault_model=self.fault_model)
        # resumed runs continue with other draws than the first run's
        self.rng = np.random.default_rng([self.seed, trainer.global_step])

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx: int) -> None:
        if self.faults is None:
            return
        self.faults.restore()
        self.faults.borrow()
        count = self.faults.inject(self.ber, self.rng)
        self.flipped += count.flipped
        self.bits += count.bits

    def _restore(self, *_args, **_kwargs) -> None:
        if self.faults is not None:
            self.faults.restore()

    on_before_optimizer_step = _restore
    on_train_batch_end = _restore
    on_exception = _restore
    on_fit_end = _restore
