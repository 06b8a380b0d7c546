"""The task registry: every task's network, data module and configs fit together."""

from __future__ import annotations

import pytest
from omegaconf import OmegaConf

from bnn_edge.cli.app import CONF_DIR, group_choices
from bnn_edge.data import DATA_MODULES
from bnn_edge.experiment.tasks import TASKS, Task, check_task
from bnn_edge.models import NETWORKS


@pytest.mark.parametrize("name", sorted(TASKS))
def test_every_task_fits_together(name):
    assert check_task(name) == []
    task = TASKS[name]
    model = OmegaConf.load(CONF_DIR / "model" / f"{name}.yaml")
    data = OmegaConf.load(CONF_DIR / "data" / f"{name}.yaml")
    assert model.name == name and name in NETWORKS
    assert data._target_ == task.data and task.data in DATA_MODULES


def test_the_registries_and_config_groups_name_the_same_tasks():
    assert set(TASKS) == set(NETWORKS) == set(group_choices("model")) == set(
        group_choices("data"))


def test_a_task_whose_network_does_not_take_the_data_is_reported(monkeypatch):
    """The check fails for real: EEG's data with ECG's network does not fit."""
    monkeypatch.setitem(TASKS, "ecg", Task("ecg", "bnn_edge.data.eeg.EEGDataModule", "ECG"))
    problems = check_task("ecg")
    assert len(problems) == 3 and all("does not take trials of shape (64, 960)" in p
                                      for p in problems)
    monkeypatch.setitem(TASKS, "ecg", Task("ecg", "bnn_edge.data.nowhere.X", "ECG"))
    assert check_task("ecg") == ["ecg: data module bnn_edge.data.nowhere.X is not registered"]
