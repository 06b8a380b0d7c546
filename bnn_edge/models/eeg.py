"""EEG motor-imagery network (the paper's Table I, after Dose et al., 2018).

Input: one plane of 64 channels x 960 samples (6 s at 160 Hz), shape (1, 64, 960), so the
convolutions are 2-D with (channel, time) kernels:

- temporal conv: 40 * aug kernels of 1 x 30 taps, padding 15 in time -> (40, 64, 961);
- spatial conv: 40 * aug kernels spanning all 64 channels (64 x 1 x 40 in) -> (40, 1, 961);
- average pool 1 x 30, stride 15 -> (40, 1, 63); flatten -> 2520 * aug;
- FC 80, FC 2.

ReLU after every conv and the hidden FC layer (sign when binarized), batch norm after
every conv and FC layer (it becomes the neuron threshold of a binary layer and keeps the
sign balanced), no batch norm on the input: the data modules normalise every channel
already. No dropout; the paper regularises with training-time noise instead.
At aug=1: 103,680 conv parameters (1,200 + 102,400 weights, 80 biases), 201,842 in the
classifier (2520 * 80 + 80 * 2 weights, 82 biases), 305,522 in all (batch norm excluded).
"""

from __future__ import annotations

from dataclasses import replace

from bnn_edge.models.spec import Conv, Dense, NetworkSpec, Pool, SpecNet
from bnn_edge.nn.recompute import RecomputedSequential
from bnn_edge.validation import require_int

N_CHANNELS = 64
N_SAMPLES = 960
FS = 160

EEG_SPEC = NetworkSpec(
    name="eeg",
    input_shape=(1, N_CHANNELS, N_SAMPLES),
    features=(
        Conv(40, (1, 30), padding=(0, 15)),
        Conv(40, (N_CHANNELS, 1), pool=Pool("avg", (1, 30), stride=(1, 15))),
    ),
    classifier=(Dense(80), Dense(2)),
    conv_dim=2,
    activation="relu",
    input_norm=False,
    batch_norm=True,
    conv_dropout=0.0,
    fc_dropout=0.0,
)


class EEGNet(SpecNet):
    """:class:`SpecNet` whose trials are (channels, samples): it adds the plane axis the
    2-D convolutions need (and takes (batch, 1, channels, samples) as it is).

    ``chunk`` > 0 runs the temporal conv, its batch norm and activation and the spatial
    conv ``chunk`` trials at a time, recomputed in the backward pass
    (:class:`RecomputedSequential`): the (batch, 40 aug, 64, 961) maps are never kept
    whole. 0 keeps them (plain autograd); None chunks only batches whose map would pass
    1 GiB (aug >= 4 at batch 32).
    """

    def __init__(self, spec: NetworkSpec, binarize: str = "none", aug: int = 1,
                 chunk: int | None = None):
        super().__init__(spec, binarize, aug)
        require_int("model.chunk", chunk, 0, none_ok=True,
                    allowed="an integer >= 0 (trials per recomputed chunk; 0 = off) or null "
                            "(automatic)")
        self.input_shape = tuple(spec.input_shape[1:])
        self.features = RecomputedSequential(*self.features, chunk=chunk)

    def prepare(self, x):
        return x.unsqueeze(1) if x.dim() == 3 else x


def eeg_net(binarize: str = "none", aug: int = 1, num_classes: int = 2,
            chunk: int | None = None) -> SpecNet:
    """The Table I network in the given variant; ``num_classes`` sets the last layer.

    It takes (batch, 1, 64, 960) and, for convenience, (batch, 64, 960) trials; ``chunk``
    is :class:`EEGNet`'s memory-saving option.
    """
    spec = replace(EEG_SPEC, classifier=(Dense(80), Dense(num_classes)))
    return EEGNet(spec, binarize=binarize, aug=aug, chunk=chunk)
