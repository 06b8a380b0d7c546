"""ECG electrode inversion on 12-lead recordings (paper Table II)."""

from bnn_edge.tasks import Paper, Task

TASK = Task(
    name="ecg",
    network="bnn_edge.models.ecg:ecg_net",
    data="bnn_edge.data.ecg.ECGDataModule",
    title="ECG",
    category_title="reversal",
    paper=Paper(
        data="the Challenge Data electrode-inversion set (1000 real recordings)",
        accuracy={"none": {1: 96.3}, "full": {1: 92.1, 7: 94.9}, "classifier": {1: 95.9}},
        memory_saving=(84.0, 75.8),
        memory_inconsistency=(
            "Table II's classifier alone (5152 x 75 + 75 + 75 x 2 + 2 = 386,627 weights and "
            "biases) exceeds the 0.31M parameters Table IV gives the whole model: the paper's "
            "row does not follow from its own architecture (docs/memory.md)"),
        equal_memory={32: (7, 1.0), 8: (2, 1.0)},
    ),
)
