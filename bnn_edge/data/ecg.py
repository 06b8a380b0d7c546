"""ECG electrode inversion: lead algebra, the synthetic 12-lead source and the data module.

Leads are always in the order ``I, II, III, aVR, aVL, aVF, V1..V6`` (:data:`LEADS`).
The default source, ``synthetic``, draws 10 s, 8-lead ECGs at 500 Hz from the
``deepfake-ecg`` GAN generator (Thambawita et al., 2021, trained on real ECGs), derives
the four remaining limb leads, resamples to 250 Hz, cuts one random 3 s window (750
samples) per ECG and applies an electrode reversal to half of the trials (label 1).
"""

from __future__ import annotations

import importlib.resources
import time
from collections import Counter
from pathlib import Path

import numpy as np
import torch
from scipy.signal import resample_poly

from bnn_edge.data.base import ArrayDataModule, Arrays
from bnn_edge.data.cache import cache_key, default_cache_dir, load_arrays, save_arrays_atomic
from bnn_edge.errors import ConfigError, DataError

LEADS = ("I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6")
FS = 250
WINDOW = 750
SOURCES = ("synthetic",)

_I, _II, _III, _AVR, _AVL, _AVF = range(6)
# Limb-electrode reversals as (permutation, sign): new[k] = sign[k] * x[perm[k]].
_LIMB_SWAPS = {
    "LA-RA": ({_I: _I, _II: _III, _III: _II, _AVR: _AVL, _AVL: _AVR}, {_I: -1}),
    "LA-LL": ({_I: _II, _II: _I, _AVL: _AVF, _AVF: _AVL}, {_III: -1}),
    "RA-LL": ({_I: _III, _III: _I, _AVR: _AVF, _AVF: _AVR}, {_I: -1, _II: -1, _III: -1}),
}


def _canonical_swap(swap: str) -> tuple[str, str]:
    """Normalise a swap name ("la-ra", "RA-LA", "V2-V1") to its two electrode names."""
    parts = [p.strip().upper() for p in str(swap).split("-")]
    if len(parts) != 2 or parts[0] == parts[1]:
        raise ValueError(f"electrode swap {swap!r}: expected two electrodes like 'LA-RA'")
    return parts[0], parts[1]


def swap_transform(swap: str) -> tuple[np.ndarray, np.ndarray]:
    """The (permutation, sign) pair that applies electrode reversal ``swap`` to 12 leads."""
    a, b = _canonical_swap(swap)
    perm, sign = np.arange(12), np.ones(12)
    for name, (moves, signs) in _LIMB_SWAPS.items():
        if set(name.split("-")) == {a, b}:
            for dst, src in moves.items():
                perm[dst] = src
            for dst, s in signs.items():
                sign[dst] = s
            return perm, sign
    precordial = {f"V{i}": 6 + i - 1 for i in range(1, 7)}
    if a in precordial and b in precordial:
        perm[precordial[a]], perm[precordial[b]] = precordial[b], precordial[a]
        return perm, sign
    allowed = "LA-RA, LA-LL, RA-LL or Vi-Vj with i, j in 1..6"
    raise ValueError(f"electrode swap {swap!r}: expected {allowed}")


def reverse_electrodes(x, swap: str):
    """Apply electrode reversal ``swap`` to ECGs ``x`` of shape (..., 12, T).

    ``x`` is a numpy array or a torch tensor in lead order I, II, III, aVR, aVL, aVF,
    V1-V6; the result has the same type, shape and dtype. ``swap`` names the two
    electrodes exchanged: "LA-RA", "LA-LL", "RA-LL" (either order, any case) or two
    precordial electrodes such as "V1-V2". The limb reversals follow from the lead
    definitions (I = LA - RA, II = LL - RA, III = LL - LA, aVR = RA - (LA + LL)/2, ...);
    Wilson's central terminal is symmetric in the limb electrodes, so V1-V6 are unchanged.
    """
    if x.ndim < 2 or x.shape[-2] != 12:
        raise ValueError(f"expected 12 leads on axis -2, got shape {tuple(x.shape)}")
    perm, sign = swap_transform(swap)
    if isinstance(x, torch.Tensor):
        perm_t = torch.as_tensor(perm, device=x.device)
        return x[..., perm_t, :] * torch.as_tensor(sign, dtype=x.dtype, device=x.device)[:, None]
    return x[..., perm, :] * sign.astype(x.dtype)[:, None]


def limb_leads_from_i_ii(lead_i: np.ndarray, lead_ii: np.ndarray) -> np.ndarray:
    """III, aVR, aVL, aVF from leads I and II (Einthoven and Goldberger), stacked on axis -2."""
    return np.stack([lead_ii - lead_i, -(lead_i + lead_ii) / 2, lead_i - lead_ii / 2,
                     lead_ii - lead_i / 2], axis=-2)


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

    with warnings.catch_warnings():
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
    if progress:
        from rich.progress import track

        batches = track(batches, description=f"Generating {n} synthetic ECGs",
                        total=len(batches), transient=True)
    with torch.inference_mode():
        for start in batches:
            size = min(batch_size, n - start)
            noise = torch.rand(size, 8, 5000, generator=gen) * 2 - 1
            eight = (net(noise) * 6.0).numpy()  # leads I, II, V1-V6 in mV
            out[start:start + size, [0, 1]] = eight[:, :2]
            out[start:start + size, 2:6] = limb_leads_from_i_ii(eight[:, 0], eight[:, 1])
            out[start:start + size, 6:] = eight[:, 2:]
    return out


def make_inversion_task(ecgs: np.ndarray, fs_in: int, rng: np.random.Generator,
                        swaps: list[str], inverted_fraction: float,
                        window: int = WINDOW, fs: int = FS) -> Arrays:
    """Resample ECGs to ``fs``, cut one random window each, reverse electrodes on a fraction.

    Exactly ``round(inverted_fraction * n)`` trials, chosen at random, are reversed
    (label 1), each with a swap drawn uniformly from ``swaps``.
    """
    from math import gcd

    g = gcd(fs, fs_in)
    sig = resample_poly(ecgs, fs // g, fs_in // g, axis=-1).astype(np.float32)
    n, _, length = sig.shape
    if length < window:
        raise DataError(f"records of {length} samples at {fs} Hz are shorter than the "
                        f"{window}-sample window")
    starts = rng.integers(0, length - window + 1, size=n)
    x = np.stack([sig[i, :, s:s + window] for i, s in enumerate(starts)])
    y = np.zeros(n, dtype=np.int64)
    inverted = rng.permutation(n)[: int(round(inverted_fraction * n))]
    y[inverted] = 1
    swap_of = np.full(n, -1, dtype=np.int64)
    swap_of[inverted] = rng.integers(0, len(swaps), size=len(inverted))
    for k, swap in enumerate(swaps):
        idx = np.flatnonzero(swap_of == k)
        x[idx] = reverse_electrodes(x[idx], swap)
    return Arrays(x=x, y=y, info={"swap_index": swap_of})


class ECGDataModule(ArrayDataModule):
    """12-lead ECG electrode-inversion trials (3 s, 250 Hz), label 1 = reversed electrodes.

    Sources: ``synthetic`` (default, offline: deepfake-ecg GAN). Generated sets are cached
    under :func:`~bnn_edge.data.cache.default_cache_dir` keyed by every setting that
    changes them, so a second run with the same settings starts in under a second.
    """

    def __init__(self, source: str = "synthetic", n_trials: int = 1000,
                 swaps: list[str] | tuple[str, ...] = ("LA-RA",), inverted_fraction: float = 0.5,
                 cache_dir: str | None = None, progress: bool = True, **split_options):
        super().__init__(**split_options)
        if source not in SOURCES:
            raise ConfigError("data.source", source, f"one of {', '.join(SOURCES)}")
        if isinstance(n_trials, bool) or not isinstance(n_trials, int) or n_trials < 2 * self.folds:
            raise ConfigError("data.n_trials", n_trials,
                              f"an integer >= 2 * data.folds ({2 * self.folds})")
        swaps = list(swaps)
        for swap in swaps:
            try:
                swap_transform(swap)
            except ValueError:
                raise ConfigError("data.swaps", swaps,
                                  "a list of LA-RA, LA-LL, RA-LL or Vi-Vj (i, j in 1..6)") from None
        if not swaps:
            raise ConfigError("data.swaps", swaps, "at least one electrode swap")
        if not isinstance(inverted_fraction, int | float) or not 0 < inverted_fraction < 1:
            raise ConfigError("data.inverted_fraction", inverted_fraction, "a number in (0, 1)")
        self.source, self.n_trials, self.swaps = source, n_trials, swaps
        self.inverted_fraction = float(inverted_fraction)
        self.cache_dir = default_cache_dir() if cache_dir is None else Path(cache_dir)
        self.progress = progress

    def describe_source(self) -> str:
        return (f"synthetic 12-lead ECGs from the deepfake-ecg GAN generator (offline), "
                f"{self.n_trials} trials of 3 s at 250 Hz, electrode reversals "
                f"{', '.join(self.swaps)} on {self.inverted_fraction:.0%}")

    def cache_path(self) -> Path:
        settings = {"task": "ecg-inversion", "source": self.source, "version": 1,
                    "n_trials": self.n_trials, "seed": self.seed, "swaps": self.swaps,
                    "inverted_fraction": self.inverted_fraction, "fs": FS, "window": WINDOW}
        return self.cache_dir / f"ecg_{self.source}_{cache_key(settings)}.npz"

    def load(self) -> Arrays:
        path = self.cache_path()
        if path.exists():
            cached = load_arrays(path)
            arrays = Arrays(cached["x"], cached["y"], {"swap_index": cached["swap_index"]})
            origin = "cache"
        else:
            t0 = time.perf_counter()
            ecgs = generate_deepfake_ecgs(self.n_trials, self.seed, progress=self.progress)
            rng = np.random.default_rng(self.seed)
            arrays = make_inversion_task(ecgs, 500, rng, self.swaps, self.inverted_fraction)
            save_arrays_atomic(path, x=arrays.x, y=arrays.y, swap_index=arrays.info["swap_index"])
            origin = f"generated in {time.perf_counter() - t0:.1f} s"
        swap_counts = Counter(int(k) for k in arrays.info.pop("swap_index") if k >= 0)
        arrays.info.update({
            "source": self.source,
            "generator": "deepfake-ecg (Pulse2Pulse GAN), 8 leads at 500 Hz -> 12 leads at 250 Hz",
            "lead_order": list(LEADS),
            "sampling_rate_hz": FS,
            "swaps": self.swaps,
            "swap_counts": {self.swaps[k]: n for k, n in sorted(swap_counts.items())},
            "label_meaning": {"0": "correct electrodes", "1": "electrodes reversed"},
            "cache_file": str(path),
            "cache": origin,
        })
        return arrays
