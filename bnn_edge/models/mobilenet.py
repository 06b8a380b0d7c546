"""MobileNet V1 (Howard et al. 2017) at width 1.0 with the paper's binarized classifier.

``features``: a 3x3 stride-2 conv (32 kernels) and 13 depthwise-separable blocks
(3x3 depthwise conv + 1x1 pointwise conv, each followed by batch norm and ReLU), down to
1024 channels at 1/32 of the input size. Convs carry no bias (the batch norm shifts).
``classifier``: global average pool, then

- ``none``: Linear(1024, num_classes) with bias, the published network: 4,231,976
  trainable parameters at 224 x 224 and 1000 classes;
- ``classifier``: sign, BinaryLinear(1024, hidden), BatchNorm1d, sign,
  BinaryLinear(hidden, num_classes), BatchNorm1d; at hidden=2816 and 1000 classes the two
  layers hold 1024 * 2816 + 2816 * 1000 = 5,699,584 binary weights (no bias: the batch
  norm that follows each one folds into the neuron threshold);
- ``full``: the same binary classifier, and every depthwise and pointwise conv binary
  with sign activations; the first conv and the input stay real.

When the classifier is binary, the last block ends at its batch norm: a ReLU there would
make every pooled feature >= 0 and the sign at the classifier's input always +1.
``aug`` multiplies every channel width (the classifier input becomes 1024 * aug). The
network takes any input size from 32 x 32 up (the pool is adaptive); 224 is the paper's.
"""

from __future__ import annotations

from torch import nn

from bnn_edge.models.base import BinarizableNet, check_variant
from bnn_edge.nn import BinaryConv2d, BinaryLinear, SignActivation
from bnn_edge.validation import require_int

FIRST_FILTERS = 32
# (pointwise output channels, depthwise stride) of the 13 depthwise-separable blocks
BLOCKS: tuple[tuple[int, int], ...] = (
    (64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2),
    (512, 1), (512, 1), (512, 1), (512, 1), (512, 1),
    (1024, 2), (1024, 1),
)
HIDDEN = 2816
PUBLISHED_PARAMETERS = 4_231_976  # MobileNet V1 1.0-224, 1000 classes, trainable


class MobileNetV1(BinarizableNet):
    """MobileNet V1 in one ``binarize`` variant; ``features`` + ``classifier`` like SpecNet."""

    def __init__(self, binarize: str = "none", aug: int = 1, num_classes: int = 1000,
                 hidden: int = HIDDEN, in_channels: int = 3, image_size: int = 224):
        super().__init__()
        check_variant(binarize, aug)
        require_int("model.hidden", hidden, 1)
        self.binarize, self.aug, self.num_classes, self.hidden = binarize, aug, num_classes, hidden
        # any size works (global pooling); this is the size memory, cost and export count at
        self.input_shape = (in_channels, image_size, image_size)
        binary_convs = binarize == "full"
        binary_fc = binarize in ("classifier", "full")
        conv_cls = BinaryConv2d if binary_convs else nn.Conv2d

        def activation() -> nn.Module:
            return SignActivation() if binary_convs else nn.ReLU()

        channels = FIRST_FILTERS * aug
        features: list[nn.Module] = [
            nn.Conv2d(in_channels, channels, 3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(channels), activation(),
        ]
        for i, (filters, stride) in enumerate(BLOCKS):
            filters *= aug
            features += [
                conv_cls(channels, channels, 3, stride=stride, padding=1, groups=channels,
                         bias=False),
                nn.BatchNorm2d(channels), activation(),
                conv_cls(channels, filters, 1, bias=False),
                nn.BatchNorm2d(filters),
            ]
            if not (binary_fc and i == len(BLOCKS) - 1):
                features.append(activation())
            channels = filters
        self.features = nn.Sequential(*features)
        self.feature_channels = channels

        classifier: list[nn.Module] = [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
        if binary_fc:
            classifier += [
                SignActivation(),
                BinaryLinear(channels, hidden, bias=False), nn.BatchNorm1d(hidden),
                SignActivation(),
                BinaryLinear(hidden, num_classes, bias=False), nn.BatchNorm1d(num_classes),
            ]
        else:
            classifier.append(nn.Linear(channels, num_classes))
        self.classifier = nn.Sequential(*classifier)
        self._init_weights()

    def _init_weights(self) -> None:
        """He init (fan_in) for the real convs, BN at 1/0.

        fan_in keeps each conv's output variance near 1, the batch norms' initial running
        variance; the reference fan_out makes depthwise outputs smaller by the channel count,
        so a short run would evaluate with running statistics still far off.
        """
        for m in self.modules():
            if type(m) is nn.Conv2d:
                nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm1d | nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)


def mobilenet_net(binarize: str = "none", aug: int = 1, num_classes: int = 1000,
                  hidden: int = HIDDEN, image_size: int = 224) -> MobileNetV1:
    """The registry's builder: MobileNet V1 in the given variant (see module docstring)."""
    return MobileNetV1(binarize=binarize, aug=aug, num_classes=num_classes, hidden=hidden,
                       image_size=image_size)

