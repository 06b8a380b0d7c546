"""The packed engine's input shape comes from the network contract."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bnn_edge.hardware.packed.engine import PackedNet
from bnn_edge.tasks import build_network


def test_a_network_of_any_image_size_is_rebuilt_for_the_size_it_gets():
    torch.manual_seed(0)
    net = build_network("mobilenet", "full", 1, num_classes=10, hidden=32).eval()
    engine = PackedNet.from_module(net)
    assert engine.input_shape == (3, 224, 224)  # the declared size, built at once
    x = torch.randn(2, 3, 32, 32)
    scores = engine(x)
    assert engine.input_shape == (3, 32, 32) and scores.shape == (2, 10)
    with torch.no_grad():
        assert np.array_equal(scores.argmax(1), net(x).argmax(1).numpy())


def test_a_fixed_size_network_or_a_given_shape_refuses_another():
    ecg = PackedNet.from_module(build_network("ecg", "full").eval())
    assert ecg.input_shape == (12, 750)
    with pytest.raises(ValueError, match=r"\(2, 12, 700\): this engine was built for "
                                         r"\(N, 12, 750\)"):
        ecg(torch.randn(2, 12, 700))
    image = PackedNet.from_module(build_network("mobilenet", "full", 1, num_classes=10,
                                                hidden=32).eval(), input_shape=(3, 64, 64))
    with pytest.raises(ValueError, match=r"built for \(N, 3, 64, 64\)"):
        image(torch.randn(1, 3, 32, 32))
