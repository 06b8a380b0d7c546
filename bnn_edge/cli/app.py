"""What every Hydra entry point shares: the command-line check and the one failure path.

:func:`precheck` composes the app's configuration from the command line before Hydra runs
it, so that a mistake costs one line instead of Hydra's multi-line report: a bad group
choice, an unknown key (with the close matches), a missing mandatory value, or an output
folder that cannot be written. A ``trainer.<name>`` that is an argument of
``lightning.pytorch.Trainer`` but not in the trainer config is accepted as if written
``+trainer.<name>``, and so is a ``logger.wandb.<name>`` that ``wandb.init`` takes.
:func:`fail` prints an error as one ``error:`` line and exits with 2.
"""

from __future__ import annotations

import difflib
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

from omegaconf import DictConfig, ListConfig, OmegaConf

from bnn_edge.errors import BnnEdgeError, ConfigError
from bnn_edge.validation import check_launcher, check_output_dir

#: the Hydra configs, shipped inside the package
CONF_DIR = Path(__file__).resolve().parent.parent / "conf"

#: Hydra flags that print or inspect instead of running: nothing to check
_INSPECT = ("--help", "-h", "--hydra-help", "--cfg", "-c", "--info", "-i",
            "--shell-completion", "-sc")
#: Hydra flags followed by a value
_WITH_VALUE = ("--cfg", "-c", "--package", "-p", "--config-path", "-cp", "--config-name",
               "-cn", "--config-dir", "-cd", "--experimental-rerun")


def run_group(*, _root_=None) -> str:
    """The W&B group (the ``${run_group:}`` resolver): a multirun's :func:`sweep_group`,
    shared by its jobs, else the run's own folder name (shared by the folds of cv=all)."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    if not HydraConfig.initialized():
        return "interactive"
    hc = HydraConfig.get()
    if hc.mode == RunMode.MULTIRUN:
        model = OmegaConf.select(_root_, "model.name", default=None) if _root_ else None
        return sweep_group(Path(hc.sweep.dir), hc.runtime.choices.get("experiment"), model)
    return Path(hc.runtime.output_dir).name


def sweep_group(sweep_dir: Path, experiment: str | None, model: str | None) -> str:
    """``<experiment, else model>: <swept keys> (<sweep folder>)``, the swept keys read from
    the sweep's ``multirun.yaml`` (its sweeper's params and command line)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    keys: list[str] = []
    try:
        sweep = OmegaConf.load(sweep_dir / "multirun.yaml").hydra
        params = [f"{k}={v}" for k, v in (sweep.sweeper.get("params") or {}).items()]
        for override in OverridesParser.create().parse_overrides(
                params + list(sweep.overrides.task)):
            if override.is_sweep_override() and override.key_or_group not in keys:
                keys.append(override.key_or_group)
    except Exception:  # no readable multirun.yaml (another sweeper): the folder says it
        keys = []
    what = experiment if experiment not in (None, "null") else (
        "models" if "model" in keys else model or "train")
    return f"{what}: {' x '.join(keys)} ({sweep_dir.name})" if keys \
        else f"{what} ({sweep_dir.name})"


def run_name(*, _root_) -> str:
    """The W&B run name (``${run_name:}``): ``<model>_<binarize>_aug<k>_fold<f>_seed<s>`` for
    a training run, ``<task>-<output folder>`` for another command."""
    if OmegaConf.select(_root_, "model.name", default=None) is None:
        return f"{_root_.task_name}-{Path(str(_root_.paths.output_dir)).name}"
    return (f"{_root_.model.name}_{_root_.binarize}_aug{_root_.aug}_fold{_root_.data.fold}"
            f"_seed{_root_.seed}")


def run_tags(*, _root_) -> list[str]:
    """The W&B tags (``${run_tags:}``): model, binarize, aug, fold, seed and data source of a
    training run, the task of another command."""
    if OmegaConf.select(_root_, "model.name", default=None) is None:
        return [f"task={_root_.task_name}"]
    source = OmegaConf.select(_root_, "data.source", default="imagefolder")
    return [f"model={_root_.model.name}", f"binarize={_root_.binarize}", f"aug={_root_.aug}",
            f"fold={_root_.data.fold}", f"seed={_root_.seed}", f"source={source}"]


OmegaConf.register_new_resolver("run_group", run_group, replace=True)
OmegaConf.register_new_resolver("run_name", run_name, replace=True)
OmegaConf.register_new_resolver("run_tags", run_tags, replace=True)


def group_choices(group: str) -> list[str]:
    """The options of a Hydra config group, e.g. ``group_choices("model") == ["ecg", ...]``,
    with those of the tasks from other packages (:func:`bnn_edge.tasks.config_packages`)."""
    from importlib.resources import files

    from bnn_edge.tasks import config_packages

    folders = [CONF_DIR / group] + [files(package) / group
                                    for package in config_packages().values()]
    return sorted({p.name.removesuffix(".yaml") for folder in folders if folder.is_dir()
                   for p in folder.iterdir() if p.name.endswith(".yaml")})


def app_groups(app: str) -> tuple[str, ...]:
    """The config groups in the defaults list of ``conf/<app>.yaml`` (Hydra's own excluded)."""
    defaults = OmegaConf.load(CONF_DIR / f"{app}.yaml").get("defaults", [])
    keys = (k for entry in defaults if isinstance(entry, DictConfig) for k in entry)
    return tuple(k for k in keys if not k.startswith(("hydra", "override")))


def check_cli_choices(argv: list[str], groups: tuple[str, ...] = ("model",)) -> None:
    """Check ``group=choice`` arguments before Hydra composes (its own error is many lines).

    Comma-separated sweep values are checked one by one; other sweep syntax is left to Hydra.
    ``null`` deselects an optional group and is always allowed.
    """
    for arg in argv:
        key, sep, value = arg.lstrip("+~").partition("=")
        if not sep or key not in groups or any(c in value for c in "()[]{}*$"):
            continue
        allowed = group_choices(key)
        for choice in value.split(","):
            if choice not in allowed and choice != "null":
                raise ConfigError(key, choice, f"one of {', '.join(allowed)}")


def one_line(error: BaseException) -> str:
    """The first line of an error's message (a DataLoader worker's adds a traceback)."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def fail(error: BaseException, output_dir: str | Path | None = None) -> NoReturn:
    """Print ``error`` as one ``error:`` line, drop ``output_dir`` if nothing was written
    there but Hydra's own start-up files, and exit with status 2."""
    print(f"error: {one_line(error)}", file=sys.stderr)
    if output_dir is not None:
        discard_empty_dir(Path(output_dir))
    sys.exit(2)


def discard_empty_dir(path: Path) -> None:
    """Remove a folder holding only what Hydra writes at start (.hydra, the app's log) and
    the run folder's lock file."""
    from bnn_edge.experiment.rundir import LOCK_FILE

    if path.is_dir() and all(p.name in (".hydra", LOCK_FILE) or p.suffix == ".log"
                             for p in path.iterdir()):
        shutil.rmtree(path, ignore_errors=True)


def overrides_of(argv: list[str]) -> list[str]:
    """The override arguments of a Hydra command line (flags and their values left out)."""
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg.startswith("-"):
            skip = arg in _WITH_VALUE
        else:
            out.append(arg)
    return out


def _first_values(overrides: list[str]) -> list[str]:
    """Each sweep override (``aug=1,2,4``) replaced by its first value, for composing."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import OverrideParseException

    parser = OverridesParser.create()
    out = []
    for text in overrides:
        try:
            (override,) = parser.parse_overrides([text])
        except OverrideParseException as e:
            raise BnnEdgeError(f"cannot read the override {text!r}: "
                               f"{one_line(e)}") from None
        if override.is_sweep_override():
            first = next(iter(override.sweep_string_iterator()), None)
            prefix = text[: len(text) - len(text.lstrip("+~"))]
            text = f"{prefix}{override.key_or_group}={first}"
        out.append(text)
    return out


def _trainer_arguments() -> set[str]:
    import inspect

    from lightning.pytorch import Trainer

    return set(inspect.signature(Trainer.__init__).parameters) - {"self"}


def _open_arguments(app: str, parent: str) -> set[str]:
    """The arguments the config node ``parent`` hands on whole, each accepted as if written
    ``+<parent>.<name>``: ``lightning.pytorch.Trainer``'s (train's ``trainer``), a W&B
    run's (``logger.wandb``)."""
    if (app, parent) == ("train", "trainer"):
        return _trainer_arguments()
    if parent == "logger.wandb":
        from bnn_edge.lit.tracking import init_arguments

        return init_arguments()
    return set()


def _unknown_key(key: str, known: list[str], extra: set[str] = frozenset()) -> BnnEdgeError:
    parent, _, name = key.rpartition(".")
    prefix = f"{parent}." if parent else ""
    close = difflib.get_close_matches(name, sorted(set(known) | extra), n=3, cutoff=0.5)
    if close:
        hint = f"did you mean {' or '.join(prefix + c for c in close)}?"
    elif known:
        shown = ", ".join(known[:12]) + (", ..." if len(known) > 12 else "")
        hint = f"the options {'of ' + parent if parent else 'here'} are {shown}"
    else:
        hint = f"{parent or 'this app'} has no such option"
    return BnnEdgeError(f"{key} is not an option ({hint})")


def _known_keys(node, top: bool) -> list[str]:
    """The keys of a config node (the root's without ``hydra``); none if it is no mapping."""
    if not isinstance(node, DictConfig):
        return []
    return sorted(str(k) for k in node if not top or k != "hydra")


def _may_set(node, name: str) -> bool:
    """Whether ``name`` may be set in ``node`` without a ``+``: any item of a list, a key a
    mapping holds (``???`` included) or any key of an open one; nothing in a value."""
    if isinstance(node, ListConfig):
        return True
    return isinstance(node, DictConfig) and (name in list(node) or not OmegaConf.is_struct(node))


def check_keys(cfg: DictConfig, overrides: list[str],
               open_arguments: Callable[[str], set[str]] = lambda parent: set()) -> list[str]:
    """Check each value override's key against ``cfg`` and apply it there, in order; return
    them, a key absent from its node but in ``open_arguments(parent)`` written ``+key``.

    The rules are Hydra's: ``key=`` needs the key in its (closed) node, ``+key=`` a key
    holding no value, ``~key`` a key holding one. A bad key raises a one-line BnnEdgeError
    naming it; any other fault is left to Hydra's composing.
    """
    from hydra._internal.config_loader_impl import ConfigLoaderImpl
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from omegaconf.errors import OmegaConfBaseException

    parser = OverridesParser.create()
    out = list(overrides)
    for i, text in enumerate(overrides):
        override = parser.parse_override(text)
        key = override.key_or_group
        parent, _, name = key.rpartition(".")
        try:
            node = OmegaConf.select(cfg, parent, throw_on_missing=False) if parent else cfg
            held = OmegaConf.select(cfg, key, throw_on_missing=False)
        except OmegaConfBaseException:  # a broken interpolation: Hydra's composing says where
            break
        if override.is_delete() and held is None:
            raise _unknown_key(key, _known_keys(node, not parent), open_arguments(parent))
        if (override.is_add() and held is not None
                and not isinstance(override.value(), (dict, list))):
            raise BnnEdgeError(f"+{key}: {key} is already an option; set it without the +")
        plain = not (override.is_add() or override.is_force_add() or override.is_delete())
        if plain and not _may_set(node, name):
            extra = open_arguments(parent)
            if name not in extra or not isinstance(node, DictConfig):
                raise _unknown_key(key, _known_keys(node, not parent), extra)
            out[i] = "+" + text
            override = parser.parse_override(out[i])
        try:
            ConfigLoaderImpl._apply_overrides_to_config([override], cfg)
        except Exception:  # a bad value, not a bad key: Hydra's composing says which
            break
    return out


def _keys_checked(app: str, compose, overrides: list[str]) -> list[str]:
    """:func:`check_keys` for an app's overrides (one value each) against its config composed
    with their config group choices alone."""
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.override_parser.overrides_parser import OverridesParser

    loader = GlobalHydra.instance().config_loader()

    def is_group(override) -> bool:
        group, _, name = override.key_or_group.rpartition("/")
        return override.package is not None or (
            name in loader.list_groups(group) and not isinstance(override.value(), dict))

    group = [is_group(o) for o in OverridesParser.create().parse_overrides(overrides)]
    values = iter(check_keys(compose(app, [o for o, g in zip(overrides, group, strict=True) if g]),
                             [o for o, g in zip(overrides, group, strict=True) if not g],
                             lambda parent: _open_arguments(app, parent)))
    return [o if g else next(values) for o, g in zip(overrides, group, strict=True)]


def _missing(node, prefix: str = "") -> list[str]:
    out = []
    for key in node:
        full = f"{prefix}{key}"
        if OmegaConf.is_missing(node, key):
            out.append(full)
            continue
        child = node._get_node(key)
        if isinstance(child, DictConfig) and not child._is_interpolation():
            out += _missing(child, full + ".")
    return out


def precheck(app: str, argv: list[str], output_dir: bool = True,
             check_job: Callable[[DictConfig], None] | None = None) -> list[str]:
    """Check the command line of ``conf/<app>.yaml``; return it, ``trainer.X`` rewritten.

    Raises BnnEdgeError (ConfigError for a bad value) with a one-line message. With
    ``output_dir`` the run (or sweep) folder Hydra is about to create is checked too; with
    ``check_job``, every job of a multirun is composed and checked before any starts.
    """
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.errors import ConfigCompositionException, MissingConfigException

    if any(arg.split("=")[0] in _INSPECT for arg in argv):
        return argv
    check_cli_choices(argv, groups=app_groups(app))
    overrides = overrides_of(argv)
    composed = _first_values(overrides)

    def compose(name, ovr):
        return hydra_compose(name, overrides=ovr, return_hydra_config=True)

    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        try:
            try:
                cfg = compose(app, composed)
            except ConfigCompositionException:  # find the override it refused, and say why
                composed = _keys_checked(app, compose, composed)
                cfg = compose(app, composed)
        except (MissingConfigException, ConfigCompositionException) as e:
            raise BnnEdgeError(one_line(e)) from None
        rewritten = {o: c for o, c in zip(overrides, composed, strict=True)
                     if c.startswith("+") and not o.startswith("+")}
        body = OmegaConf.masked_copy(cfg, [k for k in cfg if k != "hydra"])
        missing = _missing(body)
        if missing:
            raise BnnEdgeError(f"{missing[0]} is required: set {missing[0]}=...")
        multirun = ("-m" in argv or "--multirun" in argv
                    or str(cfg.hydra.mode) == "RunMode.MULTIRUN")
        if output_dir:
            key = "hydra.sweep.dir" if multirun else "hydra.run.dir"
            folder = check_output_dir(key, OmegaConf.select(cfg, key))
            if app == "train" and not multirun and body.get("resume") is True:
                check_resume_before_hydra(body, folder)
            if app == "train" and not multirun:
                lock_run_folder(folder)
        if multirun:
            check_launcher(cfg.hydra.launcher)
        if multirun and check_job is not None:
            check_sweep_jobs(compose, app, cfg, [rewritten.get(o, o) for o in overrides],
                             check_job)
    return [rewritten.get(arg, arg) for arg in argv]


def sweep_jobs(cfg: DictConfig, overrides: list[str]) -> list[list[str]]:
    """The task overrides of every job of a multirun, as Hydra's basic sweeper makes them
    (``hydra.sweeper.params`` of the config, then the command line)."""
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser

    params = [f"{k}={v}" for k, v in (cfg.hydra.sweeper.get("params") or {}).items()]
    parsed = OverridesParser.create().parse_overrides(params + overrides)
    task = [o for o in parsed if not o.is_hydra_override()]
    return [job for batch in BasicSweeper.split_arguments(task, None) for job in batch]


def check_sweep_jobs(compose, app: str, cfg: DictConfig, overrides: list[str],
                     check_job: Callable[[DictConfig], None]) -> None:
    """Make each job's configuration and ``check_job`` it: one line naming the first bad
    option and the job, before Hydra starts any job. Hydra composes once per choice of
    config groups; each job's other values are applied to a copy, as Hydra applies them."""
    if not str(cfg.hydra.sweeper.get("_target_", "")).endswith(".BasicSweeper"):
        return  # another sweeper picks its jobs as it goes
    import copy

    from hydra._internal.config_loader_impl import ConfigLoaderImpl
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parser = OverridesParser.create()
    hydra_overrides = [o for o in overrides if parser.parse_override(o).is_hydra_override()]
    groups = set(app_groups(app))
    jobs = sweep_jobs(cfg, overrides)
    keys = [o.partition("=")[0] for o in jobs[0]] if jobs else []
    varying = {k for i, k in enumerate(keys) if len({job[i] for job in jobs}) > 1}
    composed: dict[tuple[str, ...], DictConfig] = {}
    for job in jobs:
        try:
            parsed = parser.parse_overrides(job)
            choice = tuple(t for t, o in zip(job, parsed, strict=True)
                           if o.key_or_group in groups)
            if choice not in composed:
                full = compose(app, hydra_overrides + list(choice))
                composed[choice] = OmegaConf.masked_copy(full, [k for k in full if k != "hydra"])
            job_cfg = copy.deepcopy(composed[choice])
            ConfigLoaderImpl._apply_overrides_to_config(
                [o for o in parsed if o.key_or_group not in groups], job_cfg)
            check_job(job_cfg)
        except Exception as e:
            shown = " ".join(o for o in job if o.partition("=")[0] in varying)
            where = f" (in the sweep's job {shown})" if shown else ""
            raise BnnEdgeError(f"{one_line(e)}{where}") from None


def check_resume_before_hydra(body, folder: Path) -> None:
    """``resume=true`` into a run made with other options is refused before Hydra starts
    (Hydra would rewrite the run's ``.hydra/`` record and open its log)."""
    from bnn_edge.experiment.rundir import RunDir

    OmegaConf.update(body, "paths.output_dir", str(folder), force_add=True)
    RunDir(folder).check_resume(OmegaConf.to_container(body, resolve=True))


def lock_run_folder(folder: Path) -> None:
    """Hold the run folder's lock from before Hydra writes into it until this process
    ends (RunLocked, one line, if another process trains in it)."""
    import atexit

    from bnn_edge.experiment.rundir import RunDir

    run = RunDir(folder)
    if run.lock():
        atexit.register(run.release)


def closed_pipe_ends_quietly(func: Callable) -> Callable:
    """``func`` with a closed standard output (``... | head``) ending the command quietly,
    exit status 1 (as rich's console ends then), instead of a BrokenPipeError traceback;
    what is still buffered goes to /dev/null."""
    import functools
    import os

    @functools.wraps(func)
    def guarded(*args, **kwargs):
        try:
            out = func(*args, **kwargs)
            sys.stdout.flush()
            return out
        except BrokenPipeError:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            sys.exit(1)

    return guarded


def wants_help(argv: list[str]) -> bool:
    """Whether a command line asks for ``--help`` (``-h``)."""
    return any(arg in ("-h", "--help") for arg in argv)


def usage(app: str, args: str) -> str:
    """The usage lines of a command: its console form and its ``python -m`` form."""
    return f"usage: bnn-edge {app} {args}\n       python -m bnn_edge.{app} {args}"


@closed_pipe_ends_quietly
def run_app(app: str, task: Callable[[DictConfig], object], about: str, args: str, *,
            render_help: Callable[[str, str, str, list[str]], str],
            output_dir: bool = True,
            check_job: Callable[[DictConfig], None] | None = None,
            check_args: Callable[[list[str]], None] | None = None) -> None:
    """``--help`` (``render_help``: ``about``, then the options of ``conf/<app>.yaml``; passed
    in by the command, since cli/help.py reads this module); else check the command
    line of ``app`` (``check_args`` first; in a multirun each job with ``check_job``) and
    run ``task`` under Hydra with it (rewritten)."""
    argv = sys.argv[1:]
    try:
        if wants_help(argv):
            print(render_help(app, usage(app, args), about, overrides_of(argv)), end="")
            return
        if check_args is not None:
            check_args(argv)
        argv = precheck(app, argv, output_dir=output_dir, check_job=check_job)
    except BnnEdgeError as e:
        fail(e)
    sys.argv[1:] = argv
    import hydra

    hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name=app)(
        closed_pipe_ends_quietly(task))()
