"""ECG electrode inversion: lead algebra, sources (synthetic and three file layouts), the
data module. ``bnn_edge.data.ecg.ECGDataModule`` is the target the configs name."""

from bnn_edge.data.ecg.datamodule import ECGDataModule
from bnn_edge.data.ecg.leads import (
    FS,
    LEADS,
    TRIAL_SHAPE,
    WINDOW,
    limb_leads_from_i_ii,
    resample_to,
    reverse_electrodes,
    reverse_fraction,
    swap_transform,
)
from bnn_edge.data.ecg.sources.synthetic import generate_deepfake_ecgs, make_inversion_task

__all__ = ["FS", "LEADS", "TRIAL_SHAPE", "WINDOW", "ECGDataModule", "generate_deepfake_ecgs",
           "limb_leads_from_i_ii", "make_inversion_task", "resample_to", "reverse_electrodes",
           "reverse_fraction", "swap_transform"]
