"""What a run is: the settings that change its result, and the code version that made it.

:data:`NO_EFFECT` lists, in one place, the stored options that cannot change a run's
accuracy (where it writes, how it logs, how data are loaded, what it evaluates after
training); :data:`VARIANT` and :data:`REPLICATE` are the options a report compares and
repeats over. Every other option of the run's ``config.yaml`` (data source and its options,
trials, epochs, batch limits, test fraction, precision, recipe, ...) is a *setting*, and
so are the data actually read (``data.json``) and the epochs actually trained
(``results.json``). Runs are only averaged or compared when their settings agree.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from bnn_edge.experiment.rundir import flatten_options

#: the row of a table: which network, which layers binary, how many filters
VARIANT = ("model.name", "binarize", "aug")
#: what differs between the replicates of one cell: the data seed and the validation fold
REPLICATE = ("seed", "data.seed", "data.fold")
#: options that cannot change the result (dotted prefixes)
NO_EFFECT = ("task_name", "paths", "hydra", "logger", "callbacks", "resume", "ckpt_path",
             "test", "cv", "bit_errors", "trainer.default_root_dir", "trainer.accelerator",
             "trainer.enable_progress_bar", "trainer.enable_model_summary",
             "trainer.enable_checkpointing", "trainer.log_every_n_steps", "trainer.benchmark",
             "data.num_workers", "data.cache_dir", "data.on_device", "data.pin_memory",
             "data.progress", "data.download")
#: ... except these, which change training (error-aware training flips weights; the fault
#: model's options only matter when it does, at a nonzero train_ber)
EFFECT_INSIDE = ("bit_errors.train_ber", "bit_errors.fault_model", "bit_errors.device")
#: what the data actually were (data.json) and how long it trained (results.json)
RECORDED = {"data.json:source": ("data", "source"), "data.json:n_trials": ("data", "n_trials"),
            "results.json:epochs": ("results", "epochs")}


def _under(key: str, prefixes) -> bool:
    return any(key == k or key.startswith(k + ".") for k in prefixes)


def _no_effect(key: str, error_aware: bool = True) -> bool:
    if _under(key, EFFECT_INSIDE):
        return not error_aware and key != "bit_errors.train_ber"
    return _under(key, (*NO_EFFECT, *VARIANT, *REPLICATE))


def settings(config: dict, data: dict, results: dict) -> dict[str, object]:
    """The settings of a run (dotted option -> value), from its stored files only."""
    flat = flatten_options(config)
    error_aware = bool(flat.get("bit_errors.train_ber"))
    out = {k: v for k, v in flat.items() if not _no_effect(k, error_aware)}
    files = {"data": data, "results": results}
    for name, (file, key) in RECORDED.items():
        if key in files[file]:
            out[name] = files[file][key]
    return {k: tuple(v) if isinstance(v, list) else v for k, v in out.items()}


def differing(all_settings: list[dict]) -> dict[str, list]:
    """The settings whose values differ between runs: {option: [distinct values]}."""
    keys = sorted({k for s in all_settings for k in s})
    out = {}
    for key in keys:
        values = []
        for s in all_settings:
            v = s.get(key, "<absent>")
            if v not in values:
                values.append(v)
        if len(values) > 1:
            out[key] = values
    return out


def _git(*args: str) -> str | None:
    here = Path(__file__).resolve().parent
    try:
        proc = subprocess.run(["git", "-C", str(here), *args], capture_output=True, text=True,
                              timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return proc.stdout.strip() if proc.returncode == 0 and proc.stdout.strip() else None


def code_version() -> str:
    """``<package version>+git.<describe>`` when the package runs from its own git checkout
    (not from an install that happens to sit inside another repository), else the version."""
    import bnn_edge

    top = _git("rev-parse", "--show-toplevel")
    package = Path(bnn_edge.__file__).resolve().parent
    described = _git("describe", "--always", "--dirty") if top and (
        Path(top).resolve() / "bnn_edge") == package else None
    return f"{bnn_edge.__version__}+git.{described}" if described else bnn_edge.__version__
