"""The task registry: each task declared once, in its own module, as a :class:`Task`.

A task (``model=<name>``) is a network builder, a data module, a title, what its data's
categories are and, where the paper has them, the paper's figures. The network and data
registries, the run-folder allow-list of data modules, the report's titles and the cost
tool's inputs are all read from these records. The paper's three tasks live in
``bnn_edge/tasks/``; a task from another installed package is declared under the
entry-point group ``bnn_edge.tasks`` (``name = "package.module:TASK"``) or passed to
:func:`register` (docs/adding_a_task.md). Records name their code by dotted path, so
reading the registry imports neither torch nor the data code.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from importlib import import_module
from importlib.metadata import entry_points

from bnn_edge.errors import BnnEdgeError
from bnn_edge.validation import require_choice

ENTRY_POINT_GROUP = "bnn_edge.tasks"
BUILTIN = ("ecg", "eeg", "mobilenet")  # the modules of this package holding a TASK


@dataclass(frozen=True)
class Paper:
    """What the paper reports for a task (any part may be missing)."""

    #: where the paper's figures come from (the report says ours are not the same)
    data: str
    #: Table III, percent: {binarize: {aug: accuracy}}; top-5 the same for many-class tasks
    accuracy: dict[str, dict[int, float]] = field(default_factory=dict)
    top5: dict[str, dict[int, float]] = field(default_factory=dict)
    #: Table IV: percent of the memory a binarized classifier saves vs 32-bit and vs 8-bit
    memory_saving: tuple[float, float] | None = None
    #: why Table IV's row does not follow from the paper's own architecture, if it does not
    memory_inconsistency: str | None = None
    #: Sec. III-C, reference bits -> (aug of the all-binarized network, points by which the
    #: binarized classifier is better at equal memory)
    equal_memory: dict[int, tuple[int, float]] = field(default_factory=dict)


@dataclass(frozen=True)
class Task:
    """One task. ``network`` and ``data`` are dotted paths: the builder
    ``module:function(binarize, aug, num_classes, **options)`` returning a
    :class:`~bnn_edge.models.BinarizableNet`, and the data module's ``_target_``
    ``package.module.Class``. ``options`` are the builder's extra ``model.*`` options."""

    name: str
    network: str
    data: str
    title: str
    options: tuple[str, ...] = ()
    default_classes: int = 2
    #: what the data module's ``categories()`` name, for the training summary
    #: ("Test accuracy by reversal: ..."); None when it has none
    category_title: str | None = None
    #: the title of the top-5 row, for tasks with more than five classes
    top5_title: str | None = None
    paper: Paper | None = None
    #: a package whose folder holds ``model/<name>.yaml`` and ``data/<name>.yaml`` (tasks from
    #: other packages; the paper's are in bnn_edge/conf)
    config_package: str | None = None

    def build(self) -> Callable:
        """The network builder."""
        module, _, function = self.network.partition(":")
        return getattr(import_module(module), function)

    def data_class(self) -> type:
        """The data module class."""
        module, _, cls = self.data.rpartition(".")
        return getattr(import_module(module), cls)


_extra: dict[str, Task] = {}


def _checked(task, where: str) -> Task:
    if not isinstance(task, Task):
        raise BnnEdgeError(f"{where}: expected a bnn_edge.tasks.Task, got {type(task).__name__}")
    if ":" not in task.network or "." not in task.data:
        raise BnnEdgeError(f"{where}: task {task.name!r} needs network='module:function' and "
                           f"data='package.module.Class'")
    return task


@cache
def _installed() -> dict[str, Task]:
    tasks = {}
    for name in BUILTIN:
        module = f"bnn_edge.tasks.{name}"
        tasks[name] = _checked(import_module(module).TASK, module)
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        where = f"entry point {ep.name} = {ep.value} ({ENTRY_POINT_GROUP})"
        try:
            task = _checked(ep.load(), where)
        except ImportError as e:
            raise BnnEdgeError(f"{where}: cannot be imported ({e})") from e
        if task.name in tasks:
            raise BnnEdgeError(f"{where}: a task named {task.name!r} is already registered")
        tasks[task.name] = task
    return tasks


def register(task: Task) -> Task:
    """Add ``task`` to this process's registry (for notebooks and tests; the command-line
    tools see tasks through the entry-point group)."""
    _checked(task, "register()")
    if task.name in tasks():
        raise BnnEdgeError(f"register(): a task named {task.name!r} is already registered")
    _extra[task.name] = task
    return task


def unregister(name: str) -> None:
    """Remove a task added by :func:`register` (KeyError for any other name)."""
    del _extra[name]


def tasks() -> dict[str, Task]:
    """Every registered task by name: the paper's, the installed packages', the registered."""
    return {**_installed(), **_extra}


def config_packages() -> dict[str, str]:
    """Task name -> the package holding its ``model/`` and ``data/`` configs, for the tasks
    whose configs are not in ``bnn_edge/conf`` (the Hydra search path gets them)."""
    return {name: task.config_package for name, task in tasks().items()
            if task.config_package}


def get_task(name: str) -> Task:
    """The task ``name``; ConfigError (option ``model``) naming the registered ones."""
    found = tasks()
    require_choice("model", name, sorted(found))
    return found[name]


def task_of_data(target: str) -> Task:
    """The task whose data module's ``_target_`` is exactly ``target``; KeyError otherwise
    (a run folder may rebuild only these classes)."""
    for task in tasks().values():
        if task.data == target:
            return task
    raise KeyError(target)


def data_targets() -> list[str]:
    """The ``_target_`` of every registered data module: the run folders' allow-list."""
    return [task.data for task in tasks().values()]


def check_network(name: str, binarize: str, aug: int) -> Task:
    """The task ``name``, with ``binarize`` and ``aug`` checked (ConfigError)."""
    from bnn_edge.models import check_variant

    task = get_task(name)
    check_variant(binarize, aug)
    return task


def build_network(name: str, binarize: str = "none", aug: int = 1, **kwargs):
    """Build the network of task ``name`` in the given variant (ConfigError for a bad
    ``model``, ``binarize`` or ``aug``)."""
    return check_network(name, binarize, aug).build()(binarize=binarize, aug=aug, **kwargs)


def check_task(name: str) -> list[str]:
    """What does not fit together in task ``name`` (an empty list when all is well).

    The network is built on the meta device for every variant; its ``input_shape`` must be
    the data module's ``trial_shape`` and its output the data's class count. A data module
    whose trials or classes depend on the files (ImageNet) declares no trial shape and is
    checked on the network alone.
    """
    import torch

    from bnn_edge.models import BINARIZE_CHOICES, BinarizableNet

    task = get_task(name)
    try:
        data = task.data_class()
        builder = task.build()
    except (ImportError, AttributeError) as e:
        return [f"{name}: {e}"]
    # a data module whose trials depend on its files has no fixed shape or class count
    classes = data.num_classes if data.trial_shape else task.default_classes
    problems = []
    for binarize in BINARIZE_CHOICES:
        with torch.device("meta"):
            net = builder(binarize=binarize, aug=1, num_classes=classes).eval()
        if not isinstance(net, BinarizableNet):
            return problems + [f"{name}: the builder returns a {type(net).__name__}, not a "
                               f"BinarizableNet"]
        if data.trial_shape and tuple(net.input_shape) != tuple(data.trial_shape):
            problems.append(f"{name} binarize={binarize}: the network takes trials of shape "
                            f"{tuple(net.input_shape)}, the data module gives "
                            f"{tuple(data.trial_shape)}")
            continue
        try:
            with torch.device("meta"):
                out = net(torch.zeros(2, *net.input_shape))
        except RuntimeError as e:
            problems.append(f"{name} binarize={binarize}: the network does not take its own "
                            f"input shape {tuple(net.input_shape)} ({e})")
            continue
        if tuple(out.shape) != (2, classes):
            problems.append(f"{name} binarize={binarize}: output {tuple(out.shape)[1:]}, "
                            f"expected {classes} classes")
    return problems
