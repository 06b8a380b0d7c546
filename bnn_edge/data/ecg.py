"""ECG electrode inversion: lead algebra, the synthetic 12-lead source and the data module.

Leads are always in the order ``I, II, III, aVR, aVL, aVF, V1..V6`` (:data:`LEADS`).
The default source, ``synthetic``, draws 10 s, 8-lead ECGs at 500 Hz from the
``deepfake-ecg`` GAN generator (Thambawita et al., 2021, trained on real ECGs), derives
the four remaining limb leads, resamples to 250 Hz, cuts one random 3 s window (750
samples) per ECG and applies an electrode reversal to half of the trials (label 1).
The file sources ``ptbxl``, ``challenge`` and ``wfdb`` (real 12-lead recordings) live in
:mod:`bnn_edge.data.ecg_sources` and share this module's resampling and reversal.
"""

from __future__ import annotations

import importlib.resources
from collections import Counter
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch
from scipy.signal import resample_poly
from torch.utils.data import TensorDataset

from bnn_edge.data.base import ArrayDataModule, Arrays, check_trials
from bnn_edge.data.cache import cache_key, load_or_build, resolve_cache_dir
from bnn_edge.errors import ConfigError, DataError

LEADS = ("I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6")
FS = 250
WINDOW = 750
TRIAL_SHAPE = (len(LEADS), WINDOW)
SOURCES = ("synthetic", "ptbxl", "challenge", "wfdb")
SPLITS = ("random", "strat_fold")

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


def resample_to(sig: np.ndarray, fs_in: float, fs: int = FS,
                padtype: str = "constant") -> np.ndarray:
    """Resample signals (..., T) sampled at ``fs_in`` Hz to ``fs`` Hz (polyphase), as float32.

    ``fs_in`` may be fractional (e.g. 1000/3 Hz); the ratio is taken as an exact fraction.
    ``padtype`` is scipy's assumption about the signal beyond its ends.
    """
    ratio = Fraction(fs) / Fraction(fs_in).limit_denominator(10_000)
    return resample_poly(sig, ratio.numerator, ratio.denominator, axis=-1,
                         padtype=padtype).astype(np.float32)


def reverse_fraction(x: np.ndarray, rng: np.random.Generator, swaps: list[str],
                     inverted_fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """Reverse electrodes in place on ``round(inverted_fraction * n)`` random trials of ``x``.

    Each reversed trial (label 1) gets a swap drawn uniformly from ``swaps``. Returns the
    labels and each trial's swap index (-1: not reversed).
    """
    n = len(x)
    y = np.zeros(n, dtype=np.int64)
    inverted = rng.permutation(n)[: int(round(inverted_fraction * n))]
    y[inverted] = 1
    swap_of = np.full(n, -1, dtype=np.int64)
    swap_of[inverted] = rng.integers(0, len(swaps), size=len(inverted))
    for k, swap in enumerate(swaps):
        idx = np.flatnonzero(swap_of == k)
        x[idx] = reverse_electrodes(x[idx], swap)
    return y, swap_of


def make_inversion_task(ecgs: np.ndarray, fs_in: int, rng: np.random.Generator,
                        swaps: list[str], inverted_fraction: float,
                        window: int = WINDOW, fs: int = FS) -> Arrays:
    """Resample ECGs to ``fs``, cut one random window each, reverse electrodes on a fraction.

    Exactly ``round(inverted_fraction * n)`` trials, chosen at random, are reversed
    (label 1), each with a swap drawn uniformly from ``swaps``.
    """
    sig = resample_to(ecgs, fs_in, fs)
    n, _, length = sig.shape
    if length < window:
        raise DataError(f"records of {length} samples at {fs} Hz are shorter than the "
                        f"{window}-sample window")
    starts = rng.integers(0, length - window + 1, size=n)
    x = np.stack([sig[i, :, s:s + window] for i, s in enumerate(starts)])
    y, swap_of = reverse_fraction(x, rng, swaps, inverted_fraction)
    return Arrays(x=x, y=y, info={"swap_index": swap_of})


META_KEYS = ("records_read", "records_skipped", "records_skipped_total", "skipped_examples",
             "input_sampling_hz")


def _read_meta(arrays: dict, where: Path) -> dict:
    """The JSON record of what a file source read and skipped, stored beside its arrays."""
    import json

    meta = arrays.get("meta")
    try:
        value = json.loads(str(meta)) if meta is not None and meta.dtype.kind == "U" else None
    except json.JSONDecodeError:
        value = None
    if not isinstance(value, dict) or not all(k in value for k in META_KEYS):
        raise DataError(f"{where}: its record of the files read (meta) is missing or malformed")
    return value


class ECGDataModule(ArrayDataModule):
    """12-lead ECG electrode-inversion trials (3 s, 250 Hz), label 1 = reversed electrodes.

    Sources: ``synthetic`` (default, offline: deepfake-ecg GAN), ``ptbxl`` (a PTB-XL copy),
    ``challenge`` (the competition's .npy files, labels kept) and ``wfdb`` (any folder of
    12-lead WFDB records); see :mod:`bnn_edge.data.ecg_sources` and docs/ecg_data.md.
    Built sets are cached under :func:`~bnn_edge.data.cache.default_cache_dir` keyed by every
    setting that changes them (and, for files, their paths, sizes and modification times),
    so a second run with the same settings starts in about a second.
    """

    def __init__(self, source: str = "synthetic", n_trials: int = 1000,
                 swaps: list[str] | tuple[str, ...] = ("LA-RA",), inverted_fraction: float = 0.5,
                 root: str | None = None, sampling: int = 500, windows_per_record: int = 1,
                 max_records: int | None = None, exclude_electrode_problems: bool = True,
                 split: str = "random", cache_dir: str | None = None, progress: bool = True,
                 **split_options):
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
        self._check_real_options(source, root, sampling, windows_per_record, max_records,
                                 exclude_electrode_problems, split)
        self.source, self.n_trials, self.swaps = source, n_trials, swaps
        self.inverted_fraction = float(inverted_fraction)
        self.windows_per_record, self.max_records = windows_per_record, max_records
        self.split_by = split
        self.cache_dir = resolve_cache_dir(cache_dir)
        self.progress = progress
        self.reader = None
        # per trial, for file sources: PTB-XL strat_fold (-1: none) and swap index (-1: none)
        self.strat_fold: np.ndarray | None = None
        self.swap_index: np.ndarray | None = None
        if source != "synthetic":
            from bnn_edge.data import ecg_sources as src

            path = Path(str(root)).expanduser().resolve()
            if source == "ptbxl":
                self.reader = src.PTBXLSource(path, sampling, exclude_electrode_problems,
                                              max_records)
            elif source == "challenge":
                self.reader = src.ChallengeSource(path, max_records, windows_per_record)
            else:
                self.reader = src.WFDBSource(path, max_records)

    def _check_real_options(self, source, root, sampling, windows_per_record, max_records,
                            exclude_electrode_problems, split) -> None:
        """Validate the options of the file sources (ConfigError names the option)."""
        def is_int(v):
            return isinstance(v, int) and not isinstance(v, bool)

        if source != "synthetic" and (root is None or not str(root).strip()):
            expected = {"ptbxl": "the PTB-XL folder (ptbxl_database.csv, records500/)",
                        "challenge": "the folder holding input_training.npy and "
                                     "output_training.npy",
                        "wfdb": "a folder of 12-lead WFDB records"}[source]
            raise ConfigError("data.root", root, f"{expected} with data.source={source}")
        if sampling not in (500, 100) or isinstance(sampling, bool):
            raise ConfigError("data.sampling", sampling,
                              "500 or 100 (which PTB-XL records to read)")
        if not is_int(windows_per_record) or windows_per_record < 1:
            raise ConfigError("data.windows_per_record", windows_per_record, "an integer >= 1")
        if source == "ptbxl" and windows_per_record * WINDOW > 10 * FS:
            raise ConfigError("data.windows_per_record", windows_per_record,
                              "at most 3 with data.source=ptbxl (10 s records, 3 s windows)")
        if max_records is not None and (not is_int(max_records) or max_records < 1):
            raise ConfigError("data.max_records", max_records, "an integer >= 1 or null (all)")
        if not isinstance(exclude_electrode_problems, bool):
            raise ConfigError("data.exclude_electrode_problems", exclude_electrode_problems,
                              "true or false")
        if split not in SPLITS:
            raise ConfigError("data.split", split, f"one of {', '.join(SPLITS)}")
        if split == "strat_fold" and source != "ptbxl":
            raise ConfigError("data.split", split,
                              "random (strat_fold needs data.source=ptbxl)")
        if split == "strat_fold" and self.folds > 9:
            raise ConfigError("data.folds", self.folds,
                              "at most 9 with data.split=strat_fold (strat_folds 1-9 are dealt "
                              "into the folds, 10 is the test split)")

    def describe_source(self) -> str:
        if self.reader is None:
            return (f"synthetic 12-lead ECGs from the deepfake-ecg GAN generator (offline), "
                    f"{self.n_trials} trials of 3 s at 250 Hz, electrode reversals "
                    f"{', '.join(self.swaps)} on {self.inverted_fraction:.0%}")
        k = self.windows_per_record
        text = f"{self.reader.describe()}, {k} window{'s' * (k > 1)} of 3 s at 250 Hz per record"
        if self.reader.labelled:
            text += ", labels from output_training.npy"
        else:
            text += (f", electrode reversals {', '.join(self.swaps)} on "
                     f"{self.inverted_fraction:.0%}")
        if self.arrays is not None:
            info = self.arrays.info
            text += (f"; {info['records_read']} records read, "
                     f"{info['records_skipped_total']} skipped")
        return text

    def cache_path(self) -> Path:
        if self.reader is not None:
            return self._real_cache_path()
        settings = {"task": "ecg-inversion", "source": self.source, "version": 1,
                    "n_trials": self.n_trials, "seed": self.seed, "swaps": self.swaps,
                    "inverted_fraction": self.inverted_fraction, "fs": FS, "window": WINDOW}
        return self.cache_dir / f"ecg_{self.source}_{cache_key(settings)}.npz"

    def _real_cache_path(self) -> Path:
        settings = {"task": "ecg-inversion", "source": self.source, "version": 1,
                    **self.reader.settings(), "windows_per_record": self.windows_per_record,
                    "seed": self.seed, "fs": FS, "window": WINDOW}
        if not self.reader.labelled:
            settings.update(swaps=self.swaps, inverted_fraction=self.inverted_fraction)
        return self.cache_dir / f"ecg_{self.source}_{cache_key(settings)}.npz"

    def _check_swaps(self, cached: dict, path: Path) -> np.ndarray:
        """The swap index of every trial, checked against the labels and ``data.swaps``."""
        swap, y = cached["swap_index"], cached["y"]
        if ((swap < -1) | (swap >= len(self.swaps))).any() or ((swap >= 0) != (y == 1)).any():
            raise DataError(f"{path}: swap_index does not match the labels and data.swaps")
        return swap

    def _check_synthetic(self, cached: dict, path: Path) -> Arrays:
        check_trials(cached, path, TRIAL_SHAPE, self.num_classes, per_trial=("swap_index",))
        if len(cached["y"]) != self.n_trials:
            raise DataError(f"{path}: {len(cached['y'])} trials, expected data.n_trials="
                            f"{self.n_trials}")
        return Arrays(cached["x"], cached["y"], {"swap_index": self._check_swaps(cached, path)})

    def _build_synthetic(self) -> dict[str, np.ndarray]:
        ecgs = generate_deepfake_ecgs(self.n_trials, self.seed, progress=self.progress)
        rng = np.random.default_rng(self.seed)
        arrays = make_inversion_task(ecgs, 500, rng, self.swaps, self.inverted_fraction)
        return {"x": arrays.x, "y": arrays.y, "swap_index": arrays.info["swap_index"]}

    def load(self) -> Arrays:
        if self.reader is not None:
            return self._load_real()
        path = self.cache_path()
        arrays, origin = load_or_build(path, self._build_synthetic, self._check_synthetic,
                                       verb="generated")
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

    def _load_real(self) -> Arrays:
        """Read (or reuse the cached) windows of a file source; record what was skipped."""
        import json

        from bnn_edge.data.ecg_sources import build_task

        path = self._real_cache_path()

        def build() -> dict[str, np.ndarray]:
            arrays, meta = build_task(self.reader, self.windows_per_record, self.seed,
                                      self.swaps, self.inverted_fraction, self.progress)
            return {"meta": np.array(json.dumps(meta)), **arrays}

        def check(arrays: dict, where: Path) -> tuple[dict, dict]:
            check_trials(arrays, where, TRIAL_SHAPE, self.num_classes,
                         per_trial=("swap_index", "groups", "strat_fold"))
            meta = _read_meta(arrays, where)
            if not self.reader.labelled:
                self._check_swaps(arrays, where)
            return {k: v for k, v in arrays.items() if k != "meta"}, meta

        (cached, meta), origin = load_or_build(path, build, check, verb="read",
                                               built_from=self.reader.root)
        # windows of one record (or patient) stay in one split; one window per record and no
        # patient ids (challenge, wfdb) leave the split stratified by class instead
        grouped = self.reader.group_by == "patient_id" or self.windows_per_record > 1
        groups = cached["groups"] if grouped else None
        self.strat_fold = cached["strat_fold"]
        n_groups = len(np.unique(cached["groups"])) if grouped else len(cached["y"])
        need = self.folds + (self.test_fraction > 0)
        if self.split_by == "random" and n_groups < need:
            raise DataError(f"{self.reader.root}: only {n_groups} usable "
                            f"{self.reader.group_by.replace('_', ' ')}s "
                            f"({meta['records_read']} records read, "
                            f"{meta['records_skipped_total']} skipped); data.folds="
                            f"{self.folds} with a test split needs at least {need}")
        swap_of = self.swap_index = cached["swap_index"]
        swap_counts = Counter(int(k) for k in swap_of if k >= 0)
        info = {
            "source": self.source,
            "root": str(self.reader.root),
            **meta,
            "windows_per_record": self.windows_per_record,
            "groups": self.reader.group_by if grouped else None,
            "lead_order": list(LEADS),
            "sampling_rate_hz": FS,
        }
        if self.reader.labelled:
            info.update(swaps=None, swap_counts=None,
                        labels=f"given by {self.reader.labels} (reversal types not recorded)")
        else:
            info.update(swaps=self.swaps,
                        swap_counts={self.swaps[k]: n for k, n in sorted(swap_counts.items())},
                        labels="electrode reversals applied here to a random "
                               f"{self.inverted_fraction:.0%} of the windows")
        info.update({"label_meaning": {"0": "correct electrodes", "1": "electrodes reversed"},
                     "cache_file": str(path), "cache": origin})
        return Arrays(cached["x"], cached["y"], info, groups)

    def setup(self, stage: str | None = None) -> None:
        if self.split_by != "strat_fold" or self.arrays is not None:
            return super().setup(stage)
        from bnn_edge.data.ecg_sources import strat_fold_split

        self.arrays = self.load()
        self.split = strat_fold_split(self.strat_fold, self.folds, self.fold)
        x = torch.from_numpy(np.ascontiguousarray(self.arrays.x, dtype=np.float32))
        y = torch.from_numpy(self.arrays.y.astype(np.int64))
        self.datasets = {name: TensorDataset(x[idx], y[idx])
                         for name, idx in vars(self.split).items()}

    def summary(self) -> dict:
        summary = super().summary()
        if self.split_by == "strat_fold":
            from bnn_edge.data.ecg_sources import val_strat_folds

            summary["test_fraction"] = None
            summary["split"] = (f"strat_fold: test = strat_fold 10, validation = strat_fold(s) "
                                f"{val_strat_folds(self.folds, self.fold)}, train = the rest")
        else:
            summary["split"] = ("random, patient-wise" if self.arrays.groups is not None
                                and self.source == "ptbxl" else
                                "random, record-wise" if self.arrays.groups is not None
                                else "random, stratified by class")
        return summary
