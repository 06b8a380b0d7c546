"""The task registry: each task's network, data module, title and metrics, declared once.

A task (``model=<name>``) pairs a network of :data:`bnn_edge.models.NETWORKS` with a data
module of :data:`bnn_edge.data.DATA_MODULES`; :func:`check_task` verifies that the two agree
(the network takes the data's trials and outputs its classes), and the tables read the
title and whether top-5 accuracy is reported from here. docs/adding_a_task.md lists the
files a new task touches.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Task:
    """One task: ``name`` (also the network's and the config groups'), the data module's
    ``_target_``, the table ``title`` and, for a task with more than five classes, the
    title of its top-5 row."""

    name: str
    data: str
    title: str
    top5_title: str | None = None


TASKS: dict[str, Task] = {
    "ecg": Task("ecg", "bnn_edge.data.ecg.ECGDataModule", "ECG"),
    "eeg": Task("eeg", "bnn_edge.data.eeg.EEGDataModule", "EEG"),
    "mobilenet": Task("mobilenet", "bnn_edge.data.imagenet.ImageNetDataModule",
                      "ImageNet top-1", top5_title="ImageNet top-5"),
}


def check_task(name: str) -> list[str]:
    """What does not fit together in task ``name`` (an empty list when all is well).

    The network is built on the meta device and fed a batch of the data module's trial
    shape; its output must have the data's class count. A data module whose trials or
    classes depend on the files (ImageNet) declares no trial shape and is checked by
    registration only.
    """
    import torch

    from bnn_edge.data import DATA_MODULES, data_module_class
    from bnn_edge.models import BINARIZE_CHOICES, NETWORKS, build_network

    task = TASKS[name]
    problems = []
    if name not in NETWORKS:
        problems.append(f"{name}: no network registered under this name")
    if task.data not in DATA_MODULES:
        problems.append(f"{name}: data module {task.data} is not registered")
    if problems:
        return problems
    data = data_module_class(task.data)
    if not data.trial_shape:
        return problems
    for binarize in BINARIZE_CHOICES:
        with torch.device("meta"):
            net = build_network(name, binarize=binarize, num_classes=data.num_classes).eval()
            try:
                out = net(torch.zeros(2, *data.trial_shape))
            except RuntimeError as e:
                problems.append(f"{name} binarize={binarize}: the network does not take "
                                f"trials of shape {data.trial_shape} ({e})")
                continue
        if tuple(out.shape) != (2, data.num_classes):
            problems.append(f"{name} binarize={binarize}: output {tuple(out.shape)[1:]}, "
                            f"expected {data.num_classes} classes")
    return problems
