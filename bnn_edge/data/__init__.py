"""Data modules of the three tasks and what they share (splits, cache).

:data:`DATA_MODULES` is the allow-list of data-module classes by the exact ``_target_`` the
configs name: the only classes a run folder may ask to rebuild.
"""

from __future__ import annotations

from importlib import import_module

DATA_MODULES: dict[str, str] = {
    "bnn_edge.data.ecg.ECGDataModule": "bnn_edge.data.ecg",
    "bnn_edge.data.eeg.EEGDataModule": "bnn_edge.data.eeg",
    "bnn_edge.data.imagenet.ImageNetDataModule": "bnn_edge.data.imagenet",
}


def data_module_class(target: str) -> type:
    """The registered class whose dotted path is exactly ``target``; KeyError otherwise."""
    module = DATA_MODULES[target]  # KeyError for anything not registered, checked first
    return getattr(import_module(module), target.rpartition(".")[2])
