"""The task registry: every task's network, data module and configs fit together, and a
task can be registered from outside the package."""

from __future__ import annotations

import pytest
from omegaconf import OmegaConf

from bnn_edge.cli.app import CONF_DIR, group_choices
from bnn_edge.errors import BnnEdgeError
from bnn_edge.tasks import (
    Task,
    build_network,
    check_task,
    data_targets,
    get_task,
    register,
    task_of_data,
    tasks,
    unregister,
)


@pytest.mark.parametrize("name", ["ecg", "eeg", "mobilenet"])
def test_every_task_fits_together(name):
    assert check_task(name) == []
    task = get_task(name)
    model = OmegaConf.load(CONF_DIR / "model" / f"{name}.yaml")
    data = OmegaConf.load(CONF_DIR / "data" / f"{name}.yaml")
    assert model.name == name == task.name
    assert data._target_ == task.data and task_of_data(task.data) is task
    assert task.data_class().__name__ == task.data.rpartition(".")[2]


def test_the_registry_and_config_groups_name_the_same_tasks():
    assert set(tasks()) == set(group_choices("model")) == set(group_choices("data")) == {
        "ecg", "eeg", "mobilenet"}
    assert sorted(data_targets()) == sorted(t.data for t in tasks().values())


@pytest.fixture
def registered():
    """Tasks registered for one test, removed afterwards."""
    names = []

    def add(task: Task) -> Task:
        names.append(register(task).name)
        return task

    yield add
    for name in names:
        if name in tasks():  # the test may have removed it itself
            unregister(name)


def test_a_task_whose_network_does_not_take_the_data_is_reported(registered):
    """The check fails for real: EEG's data with ECG's network does not fit, and a data
    module that cannot be imported is named."""
    registered(Task("mixed", "bnn_edge.models.ecg:ecg_net", "bnn_edge.data.eeg.EEGDataModule",
                    "Mixed"))
    problems = check_task("mixed")
    assert len(problems) == 3 and all(
        "takes trials of shape (12, 750), the data module gives (64, 960)" in p
        for p in problems)
    registered(Task("nowhere", "bnn_edge.models.ecg:ecg_net", "bnn_edge.data.nowhere.X", "X"))
    assert check_task("nowhere") == ["nowhere: No module named 'bnn_edge.data.nowhere'"]


def test_a_registered_task_builds_and_is_removed_again(registered):
    registered(Task("ecg3", "bnn_edge.models.ecg:ecg_net", "bnn_edge.data.ecg.ECGDataModule",
                    "ECG, three classes", default_classes=3))
    net = build_network("ecg3", "full", 2, num_classes=3)
    assert net.num_classes == 3 and net.aug == 2 and "ecg3" in tasks()
    with pytest.raises(BnnEdgeError, match="a task named 'ecg3' is already registered"):
        register(get_task("ecg3"))
    with pytest.raises(BnnEdgeError, match="expected a bnn_edge.tasks.Task, got dict"):
        register({"name": "x"})
    with pytest.raises(BnnEdgeError, match="network='module:function'"):
        register(Task("bad", "bnn_edge.models.ecg.ecg_net", "a.B", "Bad"))
    unregister("ecg3")
    assert "ecg3" not in tasks()
    with pytest.raises(ValueError, match="model='ecg3' is not allowed"):
        build_network("ecg3")
