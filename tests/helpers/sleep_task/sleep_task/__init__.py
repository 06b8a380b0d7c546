"""A toy sleep-staging task that lives outside bnn_edge: two-channel 4 s epochs at 64 Hz,
three stages (wake, N2, REM) told apart by their rhythms (alpha, spindles, theta)."""

from bnn_edge.tasks import Paper, Task

TASK = Task(
    name="sleep",
    network="sleep_task.network:sleep_net",
    data="sleep_task.data.SleepDataModule",
    title="Sleep staging",
    category_title="stage",
    paper=Paper(data="no paper: a toy task", accuracy={"none": {1: 90.0}}),
    config_package="sleep_task.conf",
)
