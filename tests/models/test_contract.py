"""The network contract the hardware side relies on: input shape, ordered layers, one probe."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from bnn_edge.models import BinarizableNet, layers_of, probe
from bnn_edge.nn import BinaryLinear, SignActivation
from bnn_edge.tasks import build_network


@pytest.mark.parametrize(("name", "shape", "first", "options"), [
    ("ecg", (12, 750), (12, 750), {}),
    ("eeg", (64, 960), (1, 64, 960), {}),  # EEG's prepare adds the plane axis
    ("mobilenet", (3, 64, 64), (3, 64, 64), {"image_size": 64, "num_classes": 10}),
])
def test_the_probe_follows_forward_layer_by_layer(name, shape, first, options):
    net = build_network(name, "classifier", 1, **options).eval()
    assert net.input_shape == shape
    layers = probe(net)
    assert [layer.name for layer in layers] == [n for n, _ in net.layers()]
    assert layers[0].in_shape == first
    x = torch.randn(2, *shape)
    with torch.no_grad():
        out, act = net(x), net.prepare(x)
        for layer in layers:  # each layer's recorded shapes are what forward passes on
            assert tuple(act.shape[1:]) == layer.in_shape
            act = layer.module(act)
            assert tuple(act.shape[1:]) == layer.out_shape
    assert torch.equal(act, out)
    # binary inputs: exactly the binary linear layers of the classifier (behind a sign)
    binary_in = [layer.name for layer in layers if layer.binary_in]
    assert binary_in and all(isinstance(net.get_submodule(n), BinaryLinear | nn.BatchNorm1d |
                                        nn.Dropout) for n in binary_in)
    assert all(layer.binary_in for layer in layers if isinstance(layer.module, BinaryLinear))


def test_the_probe_runs_on_the_meta_device_at_any_size():
    with torch.device("meta"):
        net = build_network("ecg", "full", 4000)
    layers = probe(net)
    assert layers[1].out_shape[0] == 32 * 4000
    assert math.prod(layers[-1].out_shape) == 2


def test_a_plain_sequential_needs_its_input_shape_and_other_modules_are_refused():
    seq = nn.Sequential(SignActivation(), nn.Flatten(), BinaryLinear(6, 2))
    with pytest.raises(ValueError, match="give the input shape"):
        probe(seq)
    assert [(layer.name, layer.binary_in) for layer in probe(seq, (2, 3))] == [
        ("0", False), ("1", True), ("2", True)]

    class Loose(nn.Module):
        def forward(self, x):
            return x

    with pytest.raises(ValueError, match="Loose: expected a BinarizableNet"):
        layers_of(Loose())
    assert issubclass(type(build_network("ecg")), BinarizableNet)
