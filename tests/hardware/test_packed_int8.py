"""The exact int8 route of the packed classifier: the popcount kernel's outputs, bit for bit."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from bnn_edge.hardware.packed import kernels
from bnn_edge.hardware.packed.engine import PackedClassifier, PackedNet
from bnn_edge.hardware.packed.int8 import Int8Chain
from bnn_edge.hardware.packed.product import Layer
from bnn_edge.hardware.packed.stages import ClassifierStage
from bnn_edge.tasks import build_network
from tests.helpers.exports import random_classifier

CROSSOVER = 8  # int8 from 8 rows on, so that batches below and above it are both tried


def counted(monkeypatch) -> list[int]:
    """Record the batch size of every int8 call."""
    calls, call = [], Int8Chain.__call__

    def spy(self, x, packed=False):
        calls.append(x.shape[0])
        return call(self, x, packed)

    monkeypatch.setattr(Int8Chain, "__call__", spy)
    return calls


@pytest.mark.parametrize("level", ["numpy", None])
@pytest.mark.parametrize("widths", [(97, 41, 5), (2520, 80, 2), (130, 64, 3),
                                    (1, 1, 1), (200, 70, 65, 9)])
def test_scores_are_the_popcount_scores_below_and_above_the_crossover(monkeypatch, level,
                                                                      widths):
    net = random_classifier(widths, seed=widths[0])
    calls = counted(monkeypatch)
    with kernels.use_isa(level):
        popcount = PackedNet(net)
        engine = PackedNet(net, int8_min_rows=CROSSOVER)
        clf = PackedClassifier.from_module(net.classifier, int8_min_rows=CROSSOVER)
        for batch in (1, 7, 8, 33, 300):
            x = torch.randn(batch, widths[0])
            x[0, :3] = torch.tensor([0.0, -0.0, float("nan")])[:widths[0]]  # +1, +1, -1
            expected = popcount(x.numpy())
            assert np.array_equal(engine(x.numpy()), expected)  # bit-identical float32
            assert np.array_equal(clf(x), expected)
            assert np.array_equal(engine.predict(x), expected.argmax(1))
    assert calls == [b for b in (1, 7, 8, 33, 300) if b >= CROSSOVER for _ in range(3)]


@pytest.mark.parametrize(("rows", "n", "m", "hidden"), [(1, 1, 1, 0), (9, 65, 33, 1),
                                                        (40, 129, 8, 2), (17, 1000, 3, 1)])
def test_integer_pre_activations_are_the_popcount_ones(rows, n, m, hidden):
    rng = np.random.default_rng(n)
    widths = [n] + [int(rng.integers(1, 150)) for _ in range(hidden)] + [m]
    layers = []
    for a, b in zip(widths, widths[1:], strict=False):
        words = rng.integers(0, 2**63, (b, -(-a // 64)), dtype=np.uint64)
        if a % 64:
            words[:, -1] &= np.uint64((1 << (a % 64)) - 1)  # padding bits 0
        if len(layers) < hidden:
            layers.append(Layer.hidden(words, a, rng.integers(-a, a + 1, b).astype(float),
                                       rng.random(b) < 0.3))
        else:
            layers.append(Layer.dot(words, a))
    x = rng.standard_normal((rows, n)).astype(np.float32)
    d = Int8Chain(layers)(x)
    assert d.dtype == np.int32 and np.array_equal(d, kernels.Chain(layers)(x))
    assert np.all(np.abs(d) <= widths[-2]) and np.all((d - widths[-2]) % 2 == 0)


def randomized_norms(net: nn.Module) -> nn.Module:
    g = torch.Generator().manual_seed(5)
    for m in net.modules():
        if isinstance(m, nn.BatchNorm1d | nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 3)
            m.weight.data.copy_(torch.randn(m.num_features, generator=g))  # negative: flips
    return net.eval()


def test_a_classifier_fed_by_packed_conv_bits_reads_them_in_place(monkeypatch):
    """ECG full at aug 3 (96 channels, two words a step): the classifier's input bits sit
    at scattered positions, padding between them."""
    net = randomized_norms(build_network("ecg", "full", aug=3))
    calls = counted(monkeypatch)
    popcount, engine = PackedNet.from_module(net), PackedNet.from_module(net, int8_min_rows=2)
    assert engine.stages[-1].in_layout.kind == "seq"  # bits straight from the last conv
    x = torch.randn(3, 12, 750)
    for batch in (1, 3):
        assert np.array_equal(engine(x[:batch]), popcount(x[:batch]))
    assert calls == [3]


def test_bit_errors_reach_the_int8_route_and_undo():
    net = random_classifier((300, 90, 4), seed=1)
    popcount, engine = PackedNet(net), PackedNet(net, int8_min_rows=1)
    x = torch.randn(64, 300).numpy()
    clean = engine(x)
    flat = np.random.default_rng(0).choice(300 * 90, 2000, replace=False)
    for eng in (popcount, engine):
        eng.flip(0, flat)
    faulty = engine(x)
    assert np.array_equal(faulty, popcount(x)) and not np.array_equal(faulty, clean)
    engine.flip(0, flat)
    assert np.array_equal(engine(x), clean)


@pytest.mark.parametrize("value", [0, -3, 2.5, True, "64"])
def test_a_crossover_that_is_not_a_batch_size_is_refused(value):
    net = random_classifier((20, 5, 2), seed=0)
    conv_only = nn.Sequential(nn.Conv1d(1, 2, 3))
    for build in (lambda: PackedNet(net, int8_min_rows=value),
                  lambda: PackedNet(conv_only, (1, 9), int8_min_rows=value),
                  lambda: PackedClassifier.from_module(net.classifier, int8_min_rows=value)):
        with pytest.raises(ValueError, match=rf"int8_min_rows: {value!r}; a batch size >= 1"):
            build()
    assert PackedNet(net).stages[-1].int8 is None  # the default: popcount at every batch
    assert isinstance(PackedNet(net, int8_min_rows=1).stages[-1], ClassifierStage)
