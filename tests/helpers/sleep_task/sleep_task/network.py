"""The sleep network: two conv blocks and two dense layers, described once."""

from dataclasses import replace

from bnn_edge.models.spec import Conv, Dense, NetworkSpec, Pool, SpecNet

SPEC = NetworkSpec(name="sleep", input_shape=(2, 256),
                   features=(Conv(8, 7, padding=3, pool=Pool("max", 4)),
                             Conv(8, 5, padding=2, pool=Pool("max", 4))),
                   classifier=(Dense(16), Dense(3)))


def sleep_net(binarize: str = "none", aug: int = 1, num_classes: int = 3) -> SpecNet:
    """The network in one variant; ``num_classes`` sets the last layer."""
    return SpecNet(replace(SPEC, classifier=(Dense(16), Dense(num_classes))), binarize, aug)
