"""EEG motor imagery on PhysioNet EEGMMIDB (paper Table I)."""

from bnn_edge.tasks import Paper, Task

TASK = Task(
    name="eeg",
    network="bnn_edge.models.eeg:eeg_net",
    data="bnn_edge.data.eeg.EEGDataModule",
    title="EEG",
    options=("chunk",),
    paper=Paper(
        data="EEGMMIDB (105 subjects, real recordings)",
        accuracy={"none": {1: 88.0}, "full": {1: 84.6, 11: 86.0}, "classifier": {1: 87.0}},
        memory_saving=(64.0, 57.8),
        equal_memory={32: (11, 1.0), 8: (3, 2.3)},
    ),
)
