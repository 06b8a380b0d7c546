"""The ECG electrode-inversion data module: any source of the registry, one load path."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from bnn_edge.data.base import ArrayDataModule, Arrays, Split, check_trials
from bnn_edge.data.cache import cache_key, load_or_build, resolve_cache_dir
from bnn_edge.data.ecg.leads import (
    FS,
    LEADS,
    TRIAL_SHAPE,
    WINDOW,
    canonical_swap,
)
from bnn_edge.data.ecg.nuisance import Nuisance
from bnn_edge.data.ecg.sources import SOURCES
from bnn_edge.data.ecg.sources.records import strat_fold_split, val_strat_folds
from bnn_edge.errors import ConfigError, DataError
from bnn_edge.validation import (
    is_number,
    require_bool,
    require_choice,
    require_int,
    require_number,
)

SPLITS = ("random", "strat_fold")
#: the default reversal mix: the three limb reversals and the neighbouring precordial swaps,
#: weighted by how often each is seen in practice (docs/ecg_data.md gives the sources)
DEFAULT_SWAPS = ("LA-RA", "LA-LL", "RA-LL", "V1-V2", "V2-V3")
#: relative prevalence of each reversal among reversed recordings (docs/ecg_data.md: limb
#: shares from 269 confirmed misplacements, Emerg Med J 2024; precordial share assumed)
PREVALENCE = {"LA-RA": 0.34, "LA-LL": 0.20, "RA-LL": 0.10, "V1-V2": 0.072, "V2-V3": 0.072,
              "V3-V4": 0.072, "V4-V5": 0.072, "V5-V6": 0.072}
META_KEYS = ("records_read", "records_skipped", "records_skipped_total", "skipped_examples",
             "input_sampling_hz")
ROOT_EXPECTED = {"ptbxl": "the PTB-XL folder (ptbxl_database.csv, records500/)",
                 "challenge": "the folder holding input_training.npy and output_training.npy",
                 "wfdb": "a folder of 12-lead WFDB records"}


def _read_meta(arrays: dict, where) -> dict:
    """The JSON record of what a file source read and skipped, stored beside its arrays."""
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

    Sources (:data:`bnn_edge.data.ecg.sources.SOURCES`): ``synthetic`` (default, offline:
    deepfake-ecg GAN), ``ptbxl`` (a PTB-XL copy), ``challenge`` (the competition's .npy
    files, labels kept) and ``wfdb`` (any folder of 12-lead WFDB records); docs/ecg_data.md.
    Built sets are cached under :func:`~bnn_edge.data.cache.default_cache_dir` keyed by every
    setting that changes them (and, for files, their paths, sizes and modification times),
    so a second run with the same settings starts in about a second.
    """

    trial_shape = TRIAL_SHAPE

    def __init__(self, source: str = "synthetic", n_trials: int = 1000,
                 swaps: list[str] | tuple[str, ...] = DEFAULT_SWAPS,
                 swap_weights: str | list[float] | tuple[float, ...] = "prevalence",
                 inverted_fraction: float = 0.5,
                 root: str | None = None, sampling: int = 500, windows_per_record: int = 1,
                 max_records: int | None = None, exclude_electrode_problems: bool = True,
                 split: str = "random", cache_dir: str | None = None, progress: bool = True,
                 axis_spread_deg: float = Nuisance.axis_spread_deg,
                 heart_rate_spread: float = Nuisance.heart_rate_spread,
                 gain_spread: float = Nuisance.gain_spread,
                 baseline_wander_mv: float = Nuisance.baseline_wander_mv,
                 emg_noise_mv: float = Nuisance.emg_noise_mv,
                 powerline_mv: float = Nuisance.powerline_mv,
                 powerline_hz: float = Nuisance.powerline_hz,
                 highpass_hz: float = Nuisance.highpass_hz,
                 **split_options):
        super().__init__(**split_options)
        require_choice("data.source", source, SOURCES)
        require_int("data.n_trials", n_trials, 2 * self.folds,
                    allowed=f"an integer >= 2 * data.folds ({2 * self.folds})")
        allowed = "a list of LA-RA, LA-LL, RA-LL or Vi-Vj (i, j in 1..6)"
        if isinstance(swaps, str | bytes) or not isinstance(swaps, Iterable):
            raise ConfigError("data.swaps", swaps, allowed)
        given = list(swaps)
        try:
            swaps = [canonical_swap(swap) for swap in given]
        except ValueError:
            raise ConfigError("data.swaps", given, allowed) from None
        if not swaps:
            raise ConfigError("data.swaps", given, "at least one electrode swap")
        repeated = {s: k for s, k in Counter(swaps).items() if k > 1}
        if repeated:  # one physical swap under two names would be counted as two categories
            times = ", ".join(f"{s} appears {k} times" for s, k in repeated.items())
            raise ConfigError("data.swaps", given, f"each electrode swap once, whatever the "
                              f"order of its two electrodes ({times})")
        self.swap_weights = self._check_weights(swap_weights, given)
        require_number("data.inverted_fraction", inverted_fraction, 0, 1, low_open=True,
                       high_open=True)
        nuisance = Nuisance(axis_spread_deg, heart_rate_spread, gain_spread,
                            baseline_wander_mv, emg_noise_mv, powerline_mv, powerline_hz,
                            highpass_hz)
        self._check_file_options(source, root, sampling, windows_per_record, max_records,
                                 exclude_electrode_problems, split)
        self.source, self.n_trials, self.swaps = source, n_trials, swaps  # canonical names
        self.inverted_fraction = float(inverted_fraction)
        self.windows_per_record, self.max_records = windows_per_record, max_records
        self.split_by = split
        self.cache_dir = resolve_cache_dir(cache_dir)
        self.progress = progress
        # per trial: PTB-XL strat_fold (-1: none) and swap index (-1: not reversed)
        self.strat_fold: np.ndarray | None = None
        self.swap_index: np.ndarray | None = None
        path = None if root is None else Path(str(root)).expanduser().resolve()
        self.data_source = SOURCES[source].from_options(
            root=path, n_trials=n_trials, sampling=sampling, max_records=max_records,
            windows_per_record=windows_per_record,
            exclude_electrode_problems=exclude_electrode_problems, nuisance=nuisance)

    @staticmethod
    def _check_weights(weights, swaps: list[str]) -> list[float] | None:
        """``data.swap_weights``: ``prevalence`` (:data:`PREVALENCE`), ``uniform`` (None), or
        one number >= 0 per swap, not all 0."""
        if weights == "uniform":
            return None
        if weights == "prevalence":
            names = [canonical_swap(swap) for swap in swaps]
            unknown = [swap for swap, name in zip(swaps, names, strict=True)
                       if name not in PREVALENCE]
            if unknown:
                raise ConfigError("data.swap_weights", weights,
                                  f"uniform or a list of weights: no prevalence is known for "
                                  f"{', '.join(unknown)} (docs/ecg_data.md)")
            return [PREVALENCE[name] for name in names]
        allowed = (f"prevalence, uniform, or a list of {len(swaps)} numbers >= 0, one per swap "
                   f"of data.swaps, not all 0")
        if isinstance(weights, str | bytes) or not isinstance(weights, Iterable):
            raise ConfigError("data.swap_weights", weights, allowed)
        weights = list(weights)
        if (len(weights) != len(swaps) or not all(is_number(w) and w >= 0 for w in weights)
                or sum(weights) <= 0):
            raise ConfigError("data.swap_weights", weights, allowed)
        return [float(w) for w in weights]

    def _check_file_options(self, source, root, sampling, windows_per_record, max_records,
                            exclude_electrode_problems, split) -> None:
        """Validate the options of the file sources (ConfigError names the option)."""
        if source in ROOT_EXPECTED and (root is None or not str(root).strip()):
            raise ConfigError("data.root", root,
                              f"{ROOT_EXPECTED[source]} with data.source={source}")
        require_choice("data.sampling", sampling, (500, 100),
                       allowed="500 or 100 (which PTB-XL records to read)")
        require_int("data.windows_per_record", windows_per_record, 1)
        if source == "ptbxl" and windows_per_record * WINDOW > 10 * FS:
            raise ConfigError("data.windows_per_record", windows_per_record,
                              "at most 3 with data.source=ptbxl (10 s records, 3 s windows)")
        require_int("data.max_records", max_records, 1, none_ok=True,
                    allowed="an integer >= 1 or null (all)")
        require_bool("data.exclude_electrode_problems", exclude_electrode_problems)
        require_choice("data.split", split, SPLITS)
        if split == "strat_fold" and source != "ptbxl":
            raise ConfigError("data.split", split,
                              "random (strat_fold needs data.source=ptbxl)")
        if split == "strat_fold" and self.folds > 9:
            raise ConfigError("data.folds", self.folds,
                              "at most 9 with data.split=strat_fold (strat_folds 1-9 are dealt "
                              "into the folds, 10 is the test split)")

    # ------------------------------------------------------------------ description

    def describe_source(self) -> str:
        src = self.data_source
        if not src.windowed:
            text = src.describe()
        else:
            k = self.windows_per_record
            text = f"{src.describe()}, {k} window{'s' * (k > 1)} of 3 s at 250 Hz per record"
        if src.labelled:
            text += f", labels from {src.labels.name}"
        else:
            if self.swap_weights is None or len(self.swaps) == 1:
                mix = ", ".join(self.swaps)
            else:
                mix = ", ".join(f"{s} {w / sum(self.swap_weights):.0%}"
                                for s, w in zip(self.swaps, self.swap_weights, strict=True))
            text += f", electrode reversals ({mix}) on {self.inverted_fraction:.0%}"
        if self.arrays is not None and src.windowed:
            info = self.arrays.info
            text += (f"; {info['records_read']} records read, "
                     f"{info['records_skipped_total']} skipped")
        return text

    def cache_path(self) -> Path:
        src = self.data_source
        settings = {"task": "ecg-inversion", "source": src.name, "version": 1,
                    **src.settings(), "seed": self.seed, "fs": FS, "window": WINDOW}
        if src.windowed:
            settings["windows_per_record"] = self.windows_per_record
        if not src.labelled:
            settings.update(swaps=self.swaps, inverted_fraction=self.inverted_fraction)
            if self.swap_weights is not None:
                settings["swap_weights"] = self.swap_weights
        return self.cache_dir / f"ecg_{src.name}_{cache_key(settings)}.npz"

    # ------------------------------------------------------------------ loading

    def _check_swaps(self, arrays: dict, where) -> np.ndarray:
        """The swap index of every trial, checked against the labels and ``data.swaps``."""
        swap, y = arrays["swap_index"], arrays["y"]
        if ((swap < -1) | (swap >= len(self.swaps))).any() or ((swap >= 0) != (y == 1)).any():
            raise DataError(f"{where}: swap_index does not match the labels and data.swaps")
        return swap

    def _check(self, arrays: dict, where) -> tuple[dict, dict]:
        """The arrays of a built or cached set, checked as the network will see them."""
        per_trial = ("swap_index", "groups", "strat_fold") if self.data_source.windowed else (
            "swap_index",)
        check_trials(arrays, where, TRIAL_SHAPE, self.num_classes, per_trial=per_trial)
        meta = _read_meta(arrays, where) if self.data_source.windowed else {}
        if not self.data_source.windowed and len(arrays["y"]) != self.n_trials:
            raise DataError(f"{where}: {len(arrays['y'])} trials, expected data.n_trials="
                            f"{self.n_trials}")
        if not self.data_source.labelled:
            self._check_swaps(arrays, where)
        return {k: v for k, v in arrays.items() if k != "meta"}, meta

    def _build(self) -> dict[str, np.ndarray]:
        arrays, meta = self.data_source.build(self)
        if not self.data_source.windowed:  # nothing was read from files: no record to keep
            return {k: arrays[k] for k in ("x", "y", "swap_index")}
        return {"meta": np.array(json.dumps(meta)), **arrays}

    def load(self) -> Arrays:
        src = self.data_source
        path = self.cache_path()
        verb = "read" if src.windowed else "generated"
        (cached, meta), origin = load_or_build(
            path, self._build, self._check, verb=verb,
            built_from=src.origin(self.seed))
        n = len(cached["y"])
        groups = None
        if src.windowed:
            # windows of one record (or patient) stay in one split; one window per record
            # and no patient ids (challenge, wfdb) leave the split stratified by class
            grouped = src.group_by == "patient_id" or self.windows_per_record > 1
            groups = cached["groups"] if grouped else None
            n_groups = len(np.unique(cached["groups"])) if grouped else n
            need = self.folds + (self.test_fraction > 0)
            if self.split_by == "random" and n_groups < need:
                raise DataError(f"{src.root}: only {n_groups} usable "
                                f"{src.group_by.replace('_', ' ')}s "
                                f"({meta['records_read']} records read, "
                                f"{meta['records_skipped_total']} skipped); data.folds="
                                f"{self.folds} with a test split needs at least {need}")
        self.strat_fold = cached.get("strat_fold", np.full(n, -1, dtype=np.int64))
        swap_of = self.swap_index = cached["swap_index"]
        info = {"source": src.name, **src.info(meta, self), "lead_order": list(LEADS),
                "sampling_rate_hz": FS}
        if src.labelled:
            info.update(swaps=None, swap_counts=None,
                        labels=f"given by {src.labels} (reversal types not recorded)")
        else:
            counts = Counter(int(k) for k in swap_of if k >= 0)
            info.update(swaps=self.swaps,
                        swap_counts={self.swaps[k]: c for k, c in sorted(counts.items())})
            if src.windowed:
                info["labels"] = ("electrode reversals applied here to a random "
                                  f"{self.inverted_fraction:.0%} of the windows")
        info.update({"label_meaning": {"0": "correct electrodes", "1": "electrodes reversed"},
                     "cache_file": str(path), "cache": origin})
        return Arrays(cached["x"], cached["y"], info, groups)

    def categories(self, split: str) -> list[str] | None:
        """The reversal of every trial of ``split``: ``correct`` or its swap (None when the
        files carry the labels without saying which reversal)."""
        if self.data_source.labelled or self.split is None:
            return None
        return ["correct" if k < 0 else self.swaps[k]
                for k in self.swap_index[getattr(self.split, split)]]

    def make_split(self) -> Split:
        if self.split_by == "strat_fold":
            return strat_fold_split(self.strat_fold, self.folds, self.fold)
        return super().make_split()

    def summary(self) -> dict:
        summary = super().summary()
        if self.split_by == "strat_fold":
            summary["test_fraction"] = None
            summary["split"] = (f"strat_fold: test = strat_fold 10, validation = strat_fold(s) "
                                f"{val_strat_folds(self.folds, self.fold)}, train = the rest")
        elif self.arrays.groups is not None:
            summary["split"] = ("random, patient-wise" if self.data_source.group_by == "patient_id"
                                else "random, record-wise")
        else:
            summary["split"] = "random, stratified by class"
        return summary
