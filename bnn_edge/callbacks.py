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

Both borrow the weights through :class:`~bnn_edge.faults.WeightFaults` and give them back
bit for bit. The ``bit_errors.*`` options are validated by :func:`bit_error_settings`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import lightning as L
import numpy as np
from lightning.pytorch.callbacks import ModelCheckpoint

from bnn_edge.binarize import binary_layers
from bnn_edge.errors import ConfigError
from bnn_edge.faults import REAL_FORMATS, SweepPoint, WeightFaults, ber_sweep, rate_label
from bnn_edge.hardware.device import CELLS, DeviceModel


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


def _number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _as_list(value) -> list:
    if isinstance(value, Sequence) and not isinstance(value, str):
        return list(value)
    return [value]


@dataclass(frozen=True)
class BitErrorSettings:
    """Checked ``bit_errors.*`` options.

    ``rates`` are the error rates to sweep: ``ber`` as given, or, with ``cell`` set, the
    device model's rate for that cell after each of ``cycles`` (then ``rate_cycles`` holds
    the cycle count of each rate).
    """

    rates: tuple[float, ...]
    draws: int
    real_formats: tuple[str, ...]
    seed: int
    device_model: DeviceModel
    cycles: tuple[float, ...]
    cell: str | None = None
    rate_cycles: tuple[float, ...] | None = None
    every_n_epochs: int = 1
    train_ber: float = 0.0

    @property
    def real_format(self) -> str:
        """The one real-weight format (callbacks take one; the evaluate command a list)."""
        return self.real_formats[0]

    def operating_points(self) -> list[tuple[str, float, float]]:
        """(cell, cycles, rate) of both cells at each of ``cycles``: the points plots mark."""
        return [(cell, c, self.device_model.ber(cell, c)) for c in self.cycles for cell in CELLS]


def bit_error_settings(ber=(0, 1e-4, 1e-3, 1e-2, 1e-1), cell=None, cycles=(1e6,), device=None,
                       draws: int = 20, real_format="none", seed: int = 0,
                       every_n_epochs: int = 1, train_ber: float = 0.0,
                       multiple_formats: bool = False) -> BitErrorSettings:
    """Check the ``bit_errors.*`` options; ConfigError names the first bad one.

    ``device`` is a mapping of :class:`~bnn_edge.hardware.device.DeviceModel` fields
    (``window``, ``sigma``, ``sigma_growth``, ``lrs_log10``); missing ones keep the HfO2
    preset. ``real_format`` may be a list only with ``multiple_formats``.
    """
    rates = _as_list(ber)
    if not rates or not all(_number(r) and 0 <= r <= 1 for r in rates):
        raise ConfigError("bit_errors.ber", ber,
                          "a number or a non-empty list of numbers in [0, 1]")
    cycle_list = _as_list(cycles)
    if not cycle_list or not all(_number(c) and c >= 1 for c in cycle_list):
        raise ConfigError("bit_errors.cycles", cycles,
                          "a number or a non-empty list of numbers >= 1 (programming cycles)")
    if cell is not None:
        if str(cell).upper() not in CELLS:
            raise ConfigError("bit_errors.cell", cell, f"null or one of {', '.join(CELLS)}")
        cell = str(cell).upper()
    fields = dict(device or {})
    expected = {"window": "a number > 0", "sigma": "a number > 0",
                "sigma_growth": "a number >= 0", "lrs_log10": "a number"}
    for key, value in fields.items():
        if key not in expected:
            raise ConfigError(f"bit_errors.device.{key}", value,
                              f"one of the fields {', '.join(expected)}")
        if (not _number(value) or (key in ("window", "sigma") and value <= 0)
                or (key == "sigma_growth" and value < 0)):
            raise ConfigError(f"bit_errors.device.{key}", value, expected[key])
    model = DeviceModel(**fields)
    if not _int(draws) or draws < 1:
        raise ConfigError("bit_errors.draws", draws, "an integer >= 1")
    formats = _as_list("none" if real_format is None else real_format)
    formats = ["none" if f is None else f for f in formats]
    if (not formats or any(f not in REAL_FORMATS for f in formats)
            or (len(formats) > 1 and not multiple_formats) or len(set(formats)) < len(formats)):
        allowed = f"one of {', '.join(REAL_FORMATS)}"
        if multiple_formats:
            allowed += " or a list of distinct ones"
        raise ConfigError("bit_errors.real_format", real_format, allowed)
    if not _int(seed) or seed < 0:
        raise ConfigError("bit_errors.seed", seed, "an integer >= 0")
    if not _int(every_n_epochs) or every_n_epochs < 0:
        raise ConfigError("bit_errors.every_n_epochs", every_n_epochs,
                          "an integer >= 0 (0: sweep at test time only)")
    if not _number(train_ber) or not 0 <= train_ber <= 0.5:
        raise ConfigError("bit_errors.train_ber", train_ber, "a number in [0, 0.5]")
    rate_cycles = None
    if cell is not None:
        rate_cycles = tuple(float(c) for c in cycle_list)
        rates = [model.ber(cell, c) for c in rate_cycles]
    labels = [rate_label(r) for r in rates]
    if len(set(labels)) < len(labels):
        raise ConfigError("bit_errors.ber" if cell is None else "bit_errors.cycles",
                          ber if cell is None else cycles,
                          "distinct values (error rates equal to 3 significant digits repeat)")
    return BitErrorSettings(rates=tuple(float(r) for r in rates), draws=draws,
                            real_formats=tuple(formats), seed=seed, device_model=model,
                            cycles=tuple(float(c) for c in cycle_list), cell=cell,
                            rate_cycles=rate_cycles, every_n_epochs=every_n_epochs,
                            train_ber=float(train_ber))


def check_fault_target(binarize: str | None, real_format: str, option: str) -> None:
    """ConfigError when a ``binarize=none`` model would have nothing to fault."""
    if binarize == "none" and real_format == "none":
        raise ConfigError(option, real_format,
                          "fp32 or int8 for a model without binary layers (binarize=none)")


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
    """

    def __init__(self, ber=(0, 1e-4, 1e-3, 1e-2, 1e-1), cell=None, cycles=(1e6,),
                 device: Mapping | None = None, draws: int = 20, real_format: str = "none",
                 seed: int = 0, every_n_epochs: int = 1, binarize: str | None = None):
        super().__init__()
        self.settings = bit_error_settings(ber=ber, cell=cell, cycles=cycles, device=device,
                                           draws=draws, real_format=real_format, seed=seed,
                                           every_n_epochs=every_n_epochs)
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
                         pl_module.device, reduce)

    def _log(self, pl_module: L.LightningModule, stage: str, points: list[SweepPoint]) -> None:
        self.results[stage] = points
        prefix = "ber/" if stage == "val" else "ber/test_"
        for p in points:
            # pooled over ranks by the sweep already; averaging equal values keeps them
            pl_module.log(f"{prefix}acc@{rate_label(p.ber)}", p.mean, sync_dist=True)
            pl_module.log(f"{prefix}acc_std@{rate_label(p.ber)}", p.std, sync_dist=True)

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
    """

    def __init__(self, ber: float = 0.0, seed: int = 0, binarize: str | None = None):
        super().__init__()
        if not _number(ber) or not 0 <= ber <= 0.5:
            raise ConfigError("bit_errors.train_ber", ber, "a number in [0, 0.5]")
        if not _int(seed) or seed < 0:
            raise ConfigError("bit_errors.seed", seed, "an integer >= 0")
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
        self.faults = WeightFaults(pl_module)
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
