"""Synthetic sleep epochs: a stage's rhythm plus noise, generated from a seed."""

import numpy as np

from bnn_edge.data.base import ArrayDataModule, Arrays
from bnn_edge.validation import require_int

STAGES = ("wake", "N2", "REM")
RHYTHM_HZ = (10.0, 13.0, 6.0)  # alpha, spindles, theta
FS, SAMPLES = 64, 256


class SleepDataModule(ArrayDataModule):
    """``n_trials`` epochs of (2 channels, 256 samples), a third of each stage."""

    num_classes = 3
    trial_shape = (2, SAMPLES)

    def __init__(self, n_trials: int = 300, **split_options):
        super().__init__(**split_options)
        self.n_trials = require_int("data.n_trials", n_trials, 30)

    def load(self) -> Arrays:
        rng = np.random.default_rng(self.seed)
        y = np.arange(self.n_trials) % 3
        t = np.arange(SAMPLES) / FS
        phase = rng.uniform(0, 2 * np.pi, (self.n_trials, 2, 1))
        hz = np.array(RHYTHM_HZ)[y][:, None, None]
        x = np.sin(2 * np.pi * hz * t + phase) + rng.normal(0, 0.5, (self.n_trials, 2, SAMPLES))
        meaning = {str(k): stage for k, stage in enumerate(STAGES)}
        return Arrays(x.astype(np.float32), y, {"source": "synthetic", "label_meaning": meaning})

    def describe_source(self) -> str:
        return f"synthetic sleep epochs ({self.n_trials}, seed {self.seed})"

    def categories(self, split: str) -> list[str] | None:
        return [STAGES[k] for k in self.arrays.y[getattr(self.split, split)]]
