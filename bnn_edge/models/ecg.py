"""ECG electrode-inversion network (the paper's Table II).

Input: 12 leads x 750 samples (3 s at 250 Hz). Five 1-D convolutions of 32 * aug
kernels (13, 11, 9, 7, 5 taps, no padding; max pool 2 after the first two), flatten
(161 * 32 * aug features), FC 75, FC 2. Batch norm on the input and after every conv and
FC layer, hardtanh (sign when binarized), dropout 0.05 in the conv part and 0.15 in the
classifier (keep probabilities 0.95 and 0.85).
"""

from __future__ import annotations

from dataclasses import replace

from bnn_edge.models.spec import Conv, Dense, NetworkSpec, Pool, SpecNet

N_LEADS = 12
N_SAMPLES = 750

ECG_SPEC = NetworkSpec(
    name="ecg",
    input_shape=(N_LEADS, N_SAMPLES),
    features=(
        Conv(32, 13, pool=Pool("max", 2)),
        Conv(32, 11, pool=Pool("max", 2)),
        Conv(32, 9),
        Conv(32, 7),
        Conv(32, 5),
    ),
    classifier=(Dense(75), Dense(2)),
    conv_dim=1,
    activation="hardtanh",
    input_norm=True,
    batch_norm=True,
    conv_dropout=0.05,
    fc_dropout=0.15,
)


def ecg_net(binarize: str = "none", aug: int = 1, num_classes: int = 2) -> SpecNet:
    """The Table II network in the given variant; ``num_classes`` sets the last layer."""
    spec = replace(ECG_SPEC, classifier=(Dense(75), Dense(num_classes)))
    return SpecNet(spec, binarize=binarize, aug=aug)
