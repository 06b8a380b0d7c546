"""One run folder (what ``bnn_edge.train`` writes) and the safe reading of everything in it.

A run folder or a checkpoint may come from someone else, so everything read here is data:
YAML through ``yaml.safe_load`` (no tags; an interpolation stays text and is refused), JSON
through ``json``, checkpoints through ``torch.load(weights_only=True)``. Objects are rebuilt
only through allow-lists of this project's own classes, each with its own validation: the
data modules of the registered tasks (:mod:`bnn_edge.tasks`) and
:class:`~bnn_edge.lit.module.BNNClassifier`. No name found in a file is imported or called.

Layout::

    <run>/config.yaml      the resolved configuration
    <run>/data.json        the data used
    <run>/metrics.csv      per-epoch metrics
    <run>/results.json     status and final metrics (written last)
    <run>/checkpoints/     last.ckpt and best-epochNNN-val_accX.ckpt
    <run>/.lock            while a process trains in it: its pid, host, user, start, command

One process at a time trains in a run folder: it holds an OS lock (``flock``) on ``.lock``,
which the OS drops when the process ends, however it ends, so a crash leaves no stale lock.
"""

from __future__ import annotations

import getpass
import inspect
import json
import math
import os
import re
import shlex
import socket
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import yaml

from bnn_edge.errors import BnnEdgeError, ConfigError, DataError, RunLocked

#: keys through which Hydra would call or configure a callable: never accepted from a file
HYDRA_KEYS = frozenset({"_target_", "_args_", "_partial_", "_recursive_", "_convert_"})
MAX_FILE_BYTES = 1 << 20  # config.yaml, results.json: a run writes a few KiB
MAX_NODES = 100_000  # values in one file (guards against YAML alias bombs)
#: options that may change when a run is resumed (where it runs, how it logs, how long)
RESUME_MAY_DIFFER = ("resume", "ckpt_path", "test", "paths", "hydra", "logger", "callbacks",
                     "trainer.max_epochs", "trainer.default_root_dir", "trainer.accelerator",
                     "trainer.devices", "trainer.num_nodes", "trainer.strategy",
                     "trainer.enable_progress_bar", "trainer.enable_model_summary",
                     "trainer.log_every_n_steps", "data.num_workers", "data.cache_dir",
                     "data.progress", "data.pin_memory", "data.on_device", "trainer.benchmark")
_BEST = re.compile(r"^best-epoch(\d+)-val_acc([0-9.]+)\.ckpt$")
LOCK_FILE = ".lock"
#: where the launchers of a distributed run put a process's rank (Lightning reads the same)
RANK_VARIABLES = ("RANK", "LOCAL_RANK", "NODE_RANK", "SLURM_PROCID", "JSM_NAMESPACE_RANK")
#: run folders whose lock this process holds: resolved path -> (lock file descriptor,
#: whether taking the lock created the folder)
_HELD: dict[Path, tuple[int, bool]] = {}


def _read_text(path: Path) -> str:
    if not path.is_file():
        raise DataError(f"{path}: missing")
    if path.stat().st_size > MAX_FILE_BYTES:
        raise DataError(f"{path}: {path.stat().st_size:,} bytes, more than a run writes "
                        f"({MAX_FILE_BYTES:,} at most)")
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from None


def read_yaml(path: Path) -> dict:
    """A YAML mapping read as plain data (``yaml.safe_load``); DataError names a bad file."""
    path = Path(path)
    text = _read_text(path)
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise DataError(f"{path}: not valid YAML{where}") from None
    if not isinstance(value, dict):
        raise DataError(f"{path}: the top level is {_kind(value)}, expected a mapping")
    check_plain(value, "", path)
    return value


def read_json(path: Path) -> dict:
    """A JSON object read from ``path``; DataError names a bad file."""
    path = Path(path)
    text = _read_text(path)
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        raise DataError(f"{path}: not valid JSON (line {e.lineno})") from None
    if not isinstance(value, dict):
        raise DataError(f"{path}: the top level is {_kind(value)}, expected an object")
    return value


def _kind(value) -> str:
    return {list: "a list", str: "a string", type(None): "empty"}.get(type(value),
                                                                      type(value).__name__)


def check_plain(value, where: str, path: Path, hydra_keys_ok: bool = True) -> None:
    """DataError unless ``value`` is plain data: scalars, lists, string-keyed mappings.

    With ``hydra_keys_ok=False`` a Hydra key (``_target_``, ``_args_``, ``_partial_``,
    ``_recursive_``, ``_convert_``) anywhere is refused too. An ``${...}`` interpolation
    is always refused: a run folder holds resolved values only.
    """
    budget = [MAX_NODES]
    stack: list[tuple[object, str, frozenset]] = [(value, where, frozenset())]
    while stack:
        node, at, seen = stack.pop()
        budget[0] -= 1
        if budget[0] < 0:
            raise DataError(f"{path}: more than {MAX_NODES:,} values; not a run's file")
        if isinstance(node, dict | list):
            if id(node) in seen:
                raise DataError(f"{path}: {at or 'the file'} refers back to itself "
                                f"(a recursive alias)")
            inner = seen | {id(node)}
            items = node.items() if isinstance(node, dict) else enumerate(node)
            for key, child in items:
                if isinstance(node, dict):
                    if not isinstance(key, str):
                        raise DataError(f"{path}: {at or 'top level'}: key {key!r} is not text")
                    if key in HYDRA_KEYS and not hydra_keys_ok:
                        raise DataError(f"{path}: {_join(at, key)} is not allowed here: a run "
                                        f"folder may not name functions to call")
                    stack.append((child, _join(at, key), inner))
                else:
                    stack.append((child, f"{at}[{key}]", inner))
        elif isinstance(node, str):
            if "${" in node:
                raise DataError(f"{path}: {at}={node!r} is an interpolation; a run folder "
                                f"holds resolved values only")
        elif not (node is None or isinstance(node, bool | int | float)):
            raise DataError(f"{path}: {at}={node!r} is a {type(node).__name__}, not plain data")


def _join(at: str, key: str) -> str:
    return f"{at}.{key}" if at else key


def flatten(tree: dict, prefix: str = "") -> dict[str, object]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}`` (lists are values)."""
    out: dict[str, object] = {}
    for key, value in tree.items():
        name = _join(prefix, str(key))
        if isinstance(value, dict) and value:
            out.update(flatten(value, name))
        else:
            out[name] = value
    return out


def flatten_options(config: dict) -> dict[str, object]:
    """:func:`flatten` of a run's options, a fault model stored by name (runs made before
    the ``fault_model`` config group) read as ``bit_errors.fault_model.name``."""
    flat = flatten(config)
    if isinstance(flat.get("bit_errors.fault_model"), str):
        flat["bit_errors.fault_model.name"] = flat.pop("bit_errors.fault_model")
    return flat


def _may_differ(key: str) -> bool:
    return any(key == k or key.startswith(k + ".") for k in RESUME_MAY_DIFFER)


def _number_in(value, low: float, high: float) -> bool:
    return (isinstance(value, int | float) and not isinstance(value, bool)
            and math.isfinite(value) and low <= value <= high)


def check_results(results: dict, path: Path) -> dict:
    """A results.json checked field by field (DataError names the file and the field).

    A finished run names its variant (``model``, ``binarize``, ``aug``) and has accuracies
    in [0, 1] or null; a failed one says ``"status": "failed"``.
    """
    from bnn_edge.models import BINARIZE_CHOICES
    from bnn_edge.tasks import tasks

    names = sorted(tasks())

    status = results.get("status", "done")
    if status not in ("done", "failed"):
        raise DataError(f"{path}: status={status!r}, expected done or failed")
    if status == "failed":
        if not isinstance(results.get("error", ""), str):
            raise DataError(f"{path}: error={results['error']!r} is not text")
        return results
    checks = {
        "model": (lambda v: v in names, f"one of {', '.join(names)}"),
        "binarize": (lambda v: v in BINARIZE_CHOICES, f"one of {', '.join(BINARIZE_CHOICES)}"),
        "aug": (lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 1,
                "an integer >= 1"),
    }
    for key, (ok, allowed) in checks.items():
        if key not in results:
            raise DataError(f"{path}: {key} is missing")
        if not ok(results[key]):
            raise DataError(f"{path}: {key}={results[key]!r}, expected {allowed}")
    for key in ("val_acc", "val_acc_best", "val_acc_top5", "test_acc", "test_acc_top5"):
        value = results.get(key)
        if value is not None and not _number_in(value, 0, 1):
            raise DataError(f"{path}: {key}={value!r}, expected a number in [0, 1] or null")
    for key in ("test_loss", "wall_time_s", "epochs", "fold", "folds", "seed"):
        value = results.get(key)
        if value is not None and not _number_in(value, -math.inf, math.inf):
            raise DataError(f"{path}: {key}={value!r}, expected a number or null")
    for key in ("val_acc_by_class", "val_acc_by_category", "test_acc_by_category"):
        value = results.get(key)
        if value is not None and not (isinstance(value, dict) and all(
                isinstance(v, dict) and _number_in(v.get("acc"), 0, 1)
                and _number_in(v.get("n"), 0, math.inf) for v in value.values())):
            raise DataError(f"{path}: {key}={value!r}, expected {{name: {{\"acc\": a number "
                            f"in [0, 1], \"n\": a count}}}}")
    return results


class RunDir:
    """A run folder: its files, its status and the safe rebuild of its data and model."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    @classmethod
    def of_checkpoint(cls, ckpt_path: str | Path) -> RunDir:
        """The run a checkpoint belongs to: ``<run>/checkpoints/<file>.ckpt``."""
        return cls(Path(str(ckpt_path)).resolve().parent.parent)

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r})"

    @property
    def config_file(self) -> Path:
        return self.path / "config.yaml"

    @property
    def results_file(self) -> Path:
        return self.path / "results.json"

    @property
    def checkpoint_dir(self) -> Path:
        return self.path / "checkpoints"

    @property
    def last_checkpoint(self) -> Path:
        return self.checkpoint_dir / "last.ckpt"

    @property
    def lock_file(self) -> Path:
        return self.path / LOCK_FILE

    # ------------------------------------------------------------------ who trains in it

    def lock(self) -> bool:
        """Take this folder's exclusive lock for this process (the folder is created if
        missing); RunLocked names the process that holds it.

        The lock file records the holder: pid, host, user, start time and command. Returns
        True when the lock was taken now; False when this process holds it already, or is
        a secondary process of a distributed run (it works under its first process's lock).
        """
        import fcntl

        key = self.path.resolve()
        if key in _HELD or _secondary_rank():
            return False
        created = not self.path.is_dir()
        self.path.mkdir(parents=True, exist_ok=True)
        while True:
            fd = os.open(self.lock_file, os.O_RDWR | os.O_CREAT, 0o666)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _holder(fd)
                os.close(fd)
                raise RunLocked(f"run folder {self.path} is in use by {holder}; one process "
                                f"at a time trains in a run folder: wait for it to end or "
                                f"stop it") from None
            except OSError as e:  # a file system without locks: train, and say so
                os.close(fd)
                print(f"warning: {self.lock_file}: cannot lock it ({e.strerror}); nothing "
                      f"keeps a second process from training in {self.path}", file=sys.stderr)
                return False
            if _same_file(fd, self.lock_file):
                break
            os.close(fd)  # its last holder removed that file as we opened it: open the new one
        record = {"pid": os.getpid(), "host": socket.gethostname(), "user": _user(),
                  "since": time.strftime("%Y-%m-%d %H:%M:%S%z"),
                  "command": shlex.join(getattr(sys, "orig_argv", sys.argv))}
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(record) + "\n").encode("utf-8"), 0)
        _HELD[key] = (fd, created)
        return True

    def release(self) -> None:
        """Give back this folder's lock: its lock file goes, and the folder too if taking
        the lock created it and it is still empty."""
        held = _HELD.pop(self.path.resolve(), None)
        if held is None:
            return
        fd, created = held
        try:
            if _same_file(fd, self.lock_file):
                self.lock_file.unlink()
        finally:
            os.close(fd)
        if created:
            with suppress(OSError):  # not empty: the run wrote into it
                self.path.rmdir()

    @contextmanager
    def locked(self) -> Iterator[None]:
        """This folder's lock for the block (left held if this process held it before)."""
        taken = self.lock()
        try:
            yield
        finally:
            if taken:
                self.release()

    # ------------------------------------------------------------------ what it holds

    def config(self) -> dict:
        """The stored ``config.yaml`` as plain data (Hydra keys allowed, never called)."""
        if not self.config_file.is_file():
            raise DataError(f"{self.config_file}: missing; a checkpoint must sit in "
                            f"<run>/checkpoints/ next to the run's config.yaml")
        return read_yaml(self.config_file)

    def hydra_config(self) -> dict | None:
        """Hydra's own record (``.hydra/config.yaml``, unresolved) or None."""
        path = self.path / ".hydra" / "config.yaml"
        if not path.is_file():
            return None
        text = _read_text(path)
        try:
            value = yaml.safe_load(text)
        except yaml.YAMLError:
            return None
        return value if isinstance(value, dict) else None

    def task(self) -> str | None:
        """``train``, ``evaluate``, ... as the folder's config says; None if it says nothing."""
        for cfg in (self._quiet_config(), self.hydra_config()):
            if cfg is not None and isinstance(cfg.get("task_name"), str):
                return cfg["task_name"]
        return None

    def is_cv_parent(self) -> bool:
        """A ``cv=all`` run: a folder of per-fold runs (its own results are in cv.json)."""
        if (self.path / "cv.json").is_file():
            return True
        cfg = self.hydra_config() or {}
        cv = cfg.get("cv")
        return isinstance(cv, dict) and cv.get("mode") == "all"

    def _quiet_config(self) -> dict | None:
        try:
            return self.config() if self.config_file.is_file() else None
        except DataError:
            return None

    def results(self) -> dict | None:
        """The checked results.json, None when there is none yet; DataError if malformed."""
        if not self.results_file.is_file():
            return None
        return check_results(read_json(self.results_file), self.results_file)

    def status(self) -> tuple[str, dict, str]:
        """(status, results, reason): done | failed | incomplete | unreadable."""
        try:
            results = self.results()
        except DataError as e:
            return "unreadable", {}, str(e)
        if results is None:
            return "incomplete", {}, "no results.json"
        status = results.get("status", "done")
        if status == "done" and results.get("val_acc") is None:
            return "incomplete", results, "no validation accuracy"
        return status, results, results.get("error", "")

    def finished(self) -> dict | None:
        """The results of a run that finished (not failed), else None."""
        status, results, _ = self.status()
        return results if status == "done" else None

    def best_checkpoint(self) -> Path | None:
        """The best-by-val/acc checkpoint inside this folder (ties: the earliest epoch)."""
        found = []
        for p in self.checkpoint_dir.glob("best-*.ckpt"):
            m = _BEST.match(p.name)
            if m:
                found.append((-float(m.group(2).rstrip(".")), int(m.group(1)), p))
        return min(found)[2] if found else None

    def checkpoint_for_eval(self) -> Path | None:
        """The best checkpoint, else last.ckpt, else None."""
        best = self.best_checkpoint()
        return best or (self.last_checkpoint if self.last_checkpoint.is_file() else None)

    @staticmethod
    def find_checkpoint(value, option: str = "ckpt_path",
                        allowed: str = "a checkpoint file or a run directory") -> Path:
        """The checkpoint ``value`` names: a checkpoint file, or a run folder's best
        checkpoint, else its last.ckpt (what evaluate and export read); ConfigError
        naming ``option`` when there is none."""
        path = Path(str(value)).expanduser()
        if path.is_dir():
            path = RunDir(path).checkpoint_for_eval() or path / "checkpoints" / "last.ckpt"
        if not path.is_file():
            raise ConfigError(option, str(value), allowed + " (no such checkpoint)")
        return path

    def check_resume(self, current: dict) -> None:
        """ConfigError unless this run was made with the options ``current`` (resolved)
        has: only where it runs, how it logs and ``trainer.max_epochs`` may change.
        Nothing is read but config.yaml, nothing written."""
        if not self.config_file.is_file():
            return
        differences = option_differences(self.config(), current)
        if differences:
            more = f" and {len(differences) - 3} more" if len(differences) > 3 else ""
            raise ConfigError("resume", True,
                              f"the options of the run in {self.path}; it differs in "
                              f"{'; '.join(differences[:3])}{more}")

    # ------------------------------------------------------------------ safe rebuilds

    def data_config(self, **overrides) -> tuple[type, dict]:
        """The data-module class and its plain-data arguments, both checked.

        ``data._target_`` must be exactly the data module of a registered task
        (:func:`bnn_edge.tasks.data_targets`); no other Hydra key and no interpolation may
        appear anywhere under ``data``.
        """
        from bnn_edge.tasks import data_targets, task_of_data

        cfg = self.config()
        file = self.config_file
        if "data" not in cfg:
            raise DataError(f"{file}: data is missing; not a bnn_edge training run")
        data = cfg["data"]
        if not isinstance(data, dict):
            raise DataError(f"{file}: data is {_kind(data)}, expected the data module's options")
        target = data.get("_target_")
        allowed = data_targets()
        if not isinstance(target, str) or target not in allowed:
            raise DataError(f"{file}: data._target_={target!r} is not a bnn_edge data module "
                            f"(expected one of {', '.join(allowed)})")
        params = {k: v for k, v in data.items() if k != "_target_"}
        check_plain(params, "data", file, hydra_keys_ok=False)
        cls = task_of_data(target).data_class()
        accepted = _accepted_arguments(cls)
        unknown = sorted(set(params) - accepted)
        if unknown:
            raise DataError(f"{file}: data.{unknown[0]} is not an option of {target}")
        return cls, {**params, **overrides}

    def datamodule(self, **overrides):
        """The run's data module, rebuilt through the allow-list and its own validation.

        The stored ``cache_dir``, ``num_workers`` and ``on_device`` are not used: a reader
        caches where it caches its own data and loads in its own process, from host memory.
        """
        cls, params = self.data_config(**{"num_workers": 0, **overrides})
        params.pop("cache_dir", None)
        if "on_device" not in overrides:
            params.pop("on_device", None)
        try:
            return cls(**params)
        except ConfigError as e:
            raise DataError(f"{self.config_file}: {e}") from None


def _secondary_rank() -> bool:
    """A process of a distributed run other than its first (its rank variable is above 0)."""
    return any(os.environ.get(name, "").isdigit() and int(os.environ[name]) > 0
               for name in RANK_VARIABLES)


def _same_file(fd: int, path: Path) -> bool:
    """Whether ``path`` still names the file open as ``fd``."""
    try:
        named = os.stat(path)
    except FileNotFoundError:
        return False
    opened = os.fstat(fd)
    return (named.st_dev, named.st_ino) == (opened.st_dev, opened.st_ino)


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no login name and no password entry (a bare container)
        return str(os.getuid())


def _holder(fd: int) -> str:
    """Who holds a run folder's lock, as its lock file says."""
    try:
        record = json.loads(os.pread(fd, 4096, 0).decode("utf-8"))
    except (OSError, ValueError):
        record = None
    if not isinstance(record, dict):
        return "another process (its lock file does not say which yet)"
    command = " ".join(str(record.get("command", "?")).split())
    command = command if len(command) <= 300 else command[:297] + "..."
    return (f"pid {record.get('pid', '?')} on {record.get('host', '?')} (user "
            f"{record.get('user', '?')}) since {record.get('since', '?')}: {command}")


def _accepted_arguments(cls: type) -> set[str]:
    """Keyword arguments a data module takes (its own and, through ``**kwargs``, its base's)."""
    names: set[str] = set()
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        params = inspect.signature(init).parameters.values()
        names |= {p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
        if not any(p.kind == p.VAR_KEYWORD for p in params):
            break
    return names - {"self"}


#: the options that name a variant, listed first when runs differ
_FIRST = ("model.name", "binarize", "aug", "seed", "data._target_", "data.source")


def option_differences(stored: dict, current: dict) -> list[str]:
    """The options (dotted) that differ between a stored run config and the current one,
    as ``key=stored (now current)``, leaving out what may change on resume; the variant's
    own options (model, binarize, aug, seed, data source) come first."""
    old, new = flatten_options(stored), flatten_options(current)
    out = []
    keys = sorted(set(old) | set(new), key=lambda k: (_FIRST.index(k) if k in _FIRST else
                                                       len(_FIRST), k))
    for key in keys:
        if _may_differ(key) or old.get(key, "<absent>") == new.get(key, "<absent>"):
            continue
        out.append(f"{key}={old.get(key, '<absent>')!r} (now {new.get(key, '<absent>')!r})")
    return out


# ---------------------------------------------------------------------- checkpoints

def module_arguments() -> set[str]:
    """The hyper-parameters a checkpoint may carry: BNNClassifier's own arguments."""
    from bnn_edge.lit.module import BNNClassifier

    return set(inspect.signature(BNNClassifier.__init__).parameters) - {"self"}


def read_checkpoint(path: str | Path, option: str = "ckpt_path") -> dict:
    """A checkpoint as a dict of plain values and tensors (``torch.load(weights_only=True)``).

    ConfigError when the file does not exist; DataError naming it when it is empty,
    truncated, not a checkpoint, or lacks ``state_dict`` / ``hyper_parameters``.
    """
    import torch

    path = Path(str(path))
    if not path.is_file():
        raise ConfigError(option, str(path), "an existing checkpoint file")
    if path.stat().st_size == 0:
        raise DataError(f"{path}: an empty file, not a bnn_edge checkpoint")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many types for corrupt, truncated or foreign files
        reason = str(e).strip().splitlines()[0] if str(e).strip() else ""
        raise DataError(f"{path}: not a bnn_edge checkpoint ({type(e).__name__}"
                        f"{': ' + reason[:200] if reason else ''})") from None
    if not isinstance(ckpt, dict) or not isinstance(ckpt.get("state_dict"), dict):
        raise DataError(f"{path}: not a bnn_edge checkpoint (no state_dict)")
    hp = ckpt.get("hyper_parameters")
    if not isinstance(hp, dict):
        raise DataError(f"{path}: not a bnn_edge checkpoint (no hyper_parameters)")
    check_plain(hp, "hyper_parameters", path, hydra_keys_ok=False)
    unknown = sorted(set(hp) - module_arguments())
    if unknown:
        raise DataError(f"{path}: hyper_parameters.{unknown[0]} is not an argument of "
                        f"BNNClassifier; not a checkpoint of this project")
    if not all(isinstance(v, torch.Tensor) for v in ckpt["state_dict"].values()):
        raise DataError(f"{path}: state_dict holds values that are not tensors")
    return ckpt


def describe_variant(hp: dict) -> str:
    return (f"{hp.get('network')} binarize={hp.get('binarize')} aug={hp.get('aug')} "
            f"num_classes={hp.get('num_classes')}")


def _shape_mismatch(expected: dict, found: dict) -> str | None:
    missing = [k for k in expected if k not in found]
    unexpected = [k for k in found if k not in expected]
    shapes = [k for k in expected if k in found and tuple(expected[k]) != tuple(found[k])]
    if not (missing or unexpected or shapes):
        return None
    parts = [f"{len(v)} {what}" for v, what in ((missing, "missing"), (unexpected, "unexpected"),
                                                 (shapes, "of another shape")) if v]
    if shapes:
        k = shapes[0]
        example = f"{k}: {tuple(found[k])} in the file, {tuple(expected[k])} in the network"
    else:
        example = (missing or unexpected)[0]
    return f"{', '.join(parts)} weights (first: {example})"


def load_module(path: str | Path, option: str = "ckpt_path", ckpt: dict | None = None):
    """A :class:`~bnn_edge.lit.module.BNNClassifier` rebuilt from a checkpoint, safely.

    The hyper-parameters are checked by the module's own validation and against the stored
    weights on the meta device first (no memory is allocated for a network the file does
    not hold); only then is the network built and the weights loaded (strictly).
    """
    import torch

    from bnn_edge.lit.module import BNNClassifier

    path = Path(str(path))
    ckpt = read_checkpoint(path, option) if ckpt is None else ckpt
    hp, state = ckpt["hyper_parameters"], ckpt["state_dict"]
    try:
        with torch.device("meta"):
            probe = BNNClassifier(**hp)
    except (ValueError, TypeError, BnnEdgeError) as e:
        raise DataError(f"{path}: hyper-parameters {describe_variant(hp)} are not valid "
                        f"({e})") from None
    expected = {k: v.shape for k, v in probe.state_dict().items()}
    problem = _shape_mismatch(expected, {k: v.shape for k, v in state.items()})
    if problem:
        raise DataError(f"{path}: its weights do not fit its hyper-parameters "
                        f"({describe_variant(hp)}): {problem}")
    module = BNNClassifier(**hp)
    module.load_state_dict(state, strict=True)
    return module.eval()


def check_checkpoint_matches(path: str | Path, expected: dict, option: str = "ckpt_path") -> None:
    """DataError unless the checkpoint at ``path`` holds the network ``expected`` describes.

    ``expected`` has the variant's hyper-parameters (network, binarize, aug, num_classes,
    net_options); the file is read safely and its weights checked against them.
    """
    ckpt = read_checkpoint(path, option)
    hp = ckpt["hyper_parameters"]
    keys = ("network", "binarize", "aug", "num_classes")
    if any(hp.get(k) != expected.get(k) for k in keys) or (
            (hp.get("net_options") or None) != (expected.get("net_options") or None)):
        raise DataError(f"{path}: a checkpoint of {describe_variant(hp)}, but this run is "
                        f"{describe_variant(expected)}")
    load_module(path, option, ckpt=ckpt)
