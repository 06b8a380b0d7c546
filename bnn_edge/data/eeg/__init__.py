"""EEG motor imagery (imagined left vs right fist): the EEGMMIDB reader, the head-model
simulation, the data module. ``bnn_edge.data.eeg.EEGDataModule`` is the target the configs
name."""

from bnn_edge.data.eeg.datamodule import EEGDataModule

__all__ = ["EEGDataModule"]
