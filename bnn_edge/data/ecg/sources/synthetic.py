"""The default ECG source: synthetic 12-lead ECGs from the deepfake-ecg GAN, offline.

The generator (Thambawita et al., 2021, a Pulse2Pulse GAN trained on real ECGs, shipped with
its weights in the PyPI package) draws 10 s, 8-lead ECGs (I, II, V1-V6) at 500 Hz; the four
other limb leads follow from Einthoven's and Goldberger's relations. Each ECG is resampled
to 250 Hz, cut to one random 3 s window, and a fraction of the trials gets an electrode
reversal (label 1).
"""

from __future__ import annotations

import importlib.resources

import numpy as np
import torch

from bnn_edge.data.base import Arrays
from bnn_edge.data.ecg.leads import FS, WINDOW, limb_leads_from_i_ii, reverse_fraction
from bnn_edge.data.ecg.nuisance import Nuisance, synthesize_trials
from bnn_edge.errors import DataError
from bnn_edge.progress import track

GENERATOR = "deepfake-ecg (Pulse2Pulse GAN), 8 leads at 500 Hz -> 12 leads at 250 Hz"


def _load_generator():
    """The deepfake-ecg Pulse2Pulse generator, its weights loaded with weights_only=True."""
    try:
        from deepfakeecg.models import Generator
    except ImportError as e:  # pragma: no cover - it is a declared dependency
        raise DataError("the synthetic ECG source needs the 'deepfake-ecg' package") from e
    path = importlib.resources.files("deepfakeecg") / "checkpoints" / "g_stat.pt"
    try:
        state = torch.load(str(path), map_location="cpu", weights_only=True)["stat_dict"]
    except (OSError, RuntimeError, KeyError) as e:
        raise DataError(f"{path}: cannot load the deepfake-ecg generator ({e})") from e
    import warnings

    # Generator() initialises its weights from torch's global RNG before they are replaced;
    # fork_rng keeps that stream untouched, so a cold cache trains exactly like a warm one.
    with warnings.catch_warnings(), torch.random.fork_rng(devices=[]):
        warnings.simplefilter("ignore", FutureWarning)  # the package calls nn.init.kaiming_normal
        net = Generator()
    net.load_state_dict(state)
    return net.eval()


def generate_deepfake_ecgs(n: int, seed: int, batch_size: int = 50,
                           progress: bool = True) -> np.ndarray:
    """``n`` 10 s, 12-lead ECGs at 500 Hz in mV, shape (n, 12, 5000), deterministic for ``seed``.

    The generator maps uniform noise to leads I, II, V1-V6 scaled to [-1, 1]; times 6000
    gives microvolts (the package's own scaling), so times 6 gives millivolts.
    """
    net = _load_generator()
    gen = torch.Generator().manual_seed(seed)
    out = np.empty((n, 12, 5000), dtype=np.float32)
    batches = range(0, n, batch_size)
    with torch.inference_mode():
        for start in track(batches, f"Generating {n} synthetic ECGs (deepfake-ecg GAN)",
                           progress, len(batches)):
            size = min(batch_size, n - start)
            noise = torch.rand(size, 8, 5000, generator=gen) * 2 - 1
            eight = (net(noise) * 6.0).numpy()  # leads I, II, V1-V6 in mV
            out[start:start + size, [0, 1]] = eight[:, :2]
            out[start:start + size, 2:6] = limb_leads_from_i_ii(eight[:, 0], eight[:, 1])
            out[start:start + size, 6:] = eight[:, 2:]
    return out


def make_inversion_task(ecgs: np.ndarray, fs_in: int, rng: np.random.Generator,
                        swaps: list[str], inverted_fraction: float,
                        nuisance: Nuisance | None = None, weights: list[float] | None = None,
                        window: int = WINDOW, fs: int = FS) -> Arrays:
    """ECGs -> trials of ``window`` samples at ``fs`` with the ``nuisance`` effects (none by
    default), electrodes reversed on a fraction.

    Exactly ``round(inverted_fraction * n)`` trials, chosen at random, are reversed
    (label 1), each with a swap drawn from ``swaps`` (with the relative ``weights``).
    """
    if ecgs.shape[-1] * fs / fs_in < window:
        raise DataError(f"records of {ecgs.shape[-1]} samples at {fs_in} Hz are shorter than "
                        f"the {window}-sample window at {fs} Hz")
    x = synthesize_trials(ecgs, fs_in, rng, nuisance or Nuisance.clean(), window, fs)
    y, swap_of = reverse_fraction(x, rng, swaps, inverted_fraction, weights)
    return Arrays(x=x, y=y, info={"swap_index": swap_of})


class SyntheticSource:
    """``data.n_trials`` generated ECGs with the nuisances of :mod:`..nuisance`; the trial
    index is the only group."""

    name, labelled, group_by, windowed = "synthetic", False, "trial", False

    def __init__(self, n_trials: int, nuisance: Nuisance):
        self.n_trials, self.nuisance = n_trials, nuisance

    @classmethod
    def from_options(cls, n_trials: int = 1000, nuisance: Nuisance | None = None,
                     **_) -> SyntheticSource:
        return cls(n_trials, nuisance or Nuisance())

    def settings(self) -> dict:
        return {"n_trials": self.n_trials, "nuisance": self.nuisance.as_dict(), "version": 2}

    def origin(self, seed: int) -> str:
        """What freshly generated trials are named by in an error: the options that made them."""
        levels = ", ".join(f"data.{k}={v:g}" for k, v in self.nuisance.as_dict().items())
        return f"the synthetic ECGs of seed={seed}, data.n_trials={self.n_trials}, {levels}"

    def describe(self) -> str:
        nz = self.nuisance
        noise = ("no nuisances" if nz.is_clean else
                 f"axis spread {nz.axis_spread_deg:g} deg, heart-rate spread "
                 f"{nz.heart_rate_spread:g}, gain spread {nz.gain_spread:g}, baseline wander "
                 f"{nz.baseline_wander_mv:g} mV, EMG {nz.emg_noise_mv:g} mV, "
                 f"{nz.powerline_hz:g} Hz mains {nz.powerline_mv:g} mV, high-pass "
                 f"{nz.highpass_hz:g} Hz")
        return (f"synthetic 12-lead ECGs from the deepfake-ecg GAN generator (offline), "
                f"{self.n_trials} trials of 3 s at 250 Hz ({noise})")

    def build(self, task) -> tuple[dict, dict]:
        ecgs = generate_deepfake_ecgs(self.n_trials, task.seed, progress=task.progress)
        rng = np.random.default_rng(task.seed)
        arrays = make_inversion_task(ecgs, 500, rng, task.swaps, task.inverted_fraction,
                                     self.nuisance, task.swap_weights)
        n = len(arrays.y)
        return {"x": arrays.x, "y": arrays.y, "swap_index": arrays.info["swap_index"],
                "groups": np.arange(n, dtype=np.int64),
                "strat_fold": np.full(n, -1, dtype=np.int64)}, {}

    def info(self, meta: dict, task) -> dict:
        return {"generator": GENERATOR, "nuisance": self.nuisance.as_dict()}
