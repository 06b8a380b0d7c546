"""Tests for bnn_edge.models: the ECG network (Table II) in every binarize variant."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from bnn_edge.models import BINARIZE_CHOICES, SpecNet, check_variant
from bnn_edge.models.ecg import ECG_SPEC, N_LEADS, N_SAMPLES, ecg_net
from bnn_edge.nn import (
    BinaryConv1d,
    BinaryLayer,
    BinaryLinear,
    SignActivation,
    binary_layers,
)
from bnn_edge.tasks import build_network, tasks
from tests.helpers.params import classifier_parameters, conv_parameters

VARIANTS = ("none", "classifier", "full")
KERNELS = (13, 11, 9, 7, 5)


@pytest.fixture(scope="module")
def nets() -> dict[tuple[str, int], SpecNet]:
    """One seeded network per (binarize, aug) pair used below, built once per module."""
    out = {}
    for i, (binarize, aug) in enumerate(
        [(b, 1) for b in VARIANTS] + [(b, 3) for b in VARIANTS] + [("none", 2)]
    ):
        torch.manual_seed(100 + i)
        out[(binarize, aug)] = build_network("ecg", binarize=binarize, aug=aug)
    return out


def _ecg_input(batch: int, seed: int) -> torch.Tensor:
    return torch.randn(batch, N_LEADS, N_SAMPLES, generator=torch.Generator().manual_seed(seed))


# --------------------------------------------------------------------------- registry


def test_registry_and_choices():
    """The registry holds 'ecg' and the binarize choices are none/classifier/full."""
    assert "ecg" in tasks()
    assert BINARIZE_CHOICES == VARIANTS
    assert N_LEADS == 12 and N_SAMPLES == 750


# --------------------------------------------------------------------------- sizes


@pytest.mark.parametrize("binarize", VARIANTS)
def test_parameter_counts_aug1(nets, binarize):
    """aug=1: conv weights 37,760; classifier weights+biases 386,627; 5152 flat features."""
    net = nets[(binarize, 1)]
    conv = conv_parameters(net)
    fc = classifier_parameters(net)
    assert conv["weights"] == 37_760
    assert conv["weights"] == 12 * 32 * 13 + 32 * 32 * (11 + 9 + 7 + 5)
    assert conv["biases"] == 5 * 32
    assert conv["total"] == conv["weights"] + conv["biases"]
    assert fc["total"] == 386_627
    assert fc["weights"] == 5152 * 75 + 75 * 2
    assert fc["biases"] == 75 + 2
    assert net.flat_features == 5152 == 161 * 32
    assert net.num_classes == 2


def test_sizes_aug2(nets):
    """aug=2: flatten size 161*64 and conv weights 13*12*64 + (11+9+7+5)*64*64."""
    net = nets[("none", 2)]
    assert net.flat_features == 161 * 64
    assert conv_parameters(net)["weights"] == 13 * 12 * 64 + (11 + 9 + 7 + 5) * 64 * 64
    assert classifier_parameters(net)["weights"] == 161 * 64 * 75 + 75 * 2


@pytest.mark.parametrize("binarize", VARIANTS)
def test_conv_and_linear_shapes(nets, binarize):
    """Convs: 12->32->...->32 with kernels 13, 11, 9, 7, 5, no padding; FC 5152->75->2."""
    net = nets[(binarize, 1)]
    convs = [m for m in net.features if isinstance(m, nn.Conv1d)]
    assert [tuple(c.weight.shape) for c in convs] == [
        (32, 12, 13), (32, 32, 11), (32, 32, 9), (32, 32, 7), (32, 32, 5)]
    assert all(c.padding == (0,) for c in convs)
    pools = [m for m in net.features if isinstance(m, nn.MaxPool1d)]
    assert len(pools) == 2 and all(p.kernel_size == 2 for p in pools)
    linears = [m for m in net.classifier if isinstance(m, nn.Linear)]
    assert [(lin.in_features, lin.out_features) for lin in linears] == [(5152, 75), (75, 2)]


def test_flat_size_matches_actual_feature_output(nets):
    """flat_features equals the per-sample size of the features' real output."""
    net = nets[("none", 1)].eval()
    with torch.no_grad():
        feats = net.features(_ecg_input(2, 0))
    assert feats.shape == (2, 32, 161)
    assert net.flat_features == feats[0].numel()


def test_num_classes_option():
    """ecg_net(num_classes=5) changes only the last layer."""
    torch.manual_seed(1)
    net = ecg_net(num_classes=5)
    assert net.num_classes == 5
    linears = [m for m in net.classifier if isinstance(m, nn.Linear)]
    assert linears[-1].out_features == 5
    assert conv_parameters(net)["weights"] == 37_760


# --------------------------------------------------------------------------- forward shapes


@pytest.mark.parametrize("aug", [1, 3])
@pytest.mark.parametrize("binarize", VARIANTS)
def test_output_shape_train_and_eval(nets, binarize, aug):
    """(batch, 12, 750) -> (batch, 2) in train and eval mode, finite outputs."""
    net = nets[(binarize, aug)]
    x = _ecg_input(3, 1)
    try:
        net.train()
        torch.manual_seed(2)
        with torch.no_grad():
            y_train = net(x)
        net.eval()
        with torch.no_grad():
            y_eval = net(x)
    finally:
        net.train()
    assert y_train.shape == (3, 2)
    assert y_eval.shape == (3, 2)
    assert torch.isfinite(y_train).all() and torch.isfinite(y_eval).all()


def test_forward_backward_full_reaches_all_latent_weights():
    """A training step on binarize=full gives non-zero gradients to every binary layer."""
    torch.manual_seed(3)
    net = build_network("ecg", binarize="full").train()
    loss = F.cross_entropy(net(_ecg_input(4, 3)), torch.tensor([0, 1, 0, 1]))
    loss.backward()
    for name, m in binary_layers(net):
        assert m.weight.grad is not None, name
        assert m.weight.grad.abs().sum() > 0, name


# --------------------------------------------------------------------------- binary structure


def test_binary_layers_none(nets):
    """binarize=none: no binary layers, no SignActivation, Hardtanh activations."""
    net = nets[("none", 1)]
    assert binary_layers(net) == []
    assert not any(isinstance(m, SignActivation) for m in net.modules())
    assert sum(isinstance(m, nn.Hardtanh) for m in net.modules()) == 5 + 1


def test_binary_layers_classifier(nets):
    """binarize=classifier: exactly the two linear layers are binary; convs real, Hardtanh."""
    net = nets[("classifier", 1)]
    found = binary_layers(net)
    linears = [m for m in net.classifier if isinstance(m, nn.Linear)]
    assert [m for _, m in found] == linears
    assert all(type(m) is BinaryLinear for _, m in found)
    assert all(name.startswith("classifier.") for name, _ in found)
    assert not any(isinstance(m, BinaryLayer) for m in net.features.modules())
    assert sum(type(m) is nn.Conv1d for m in net.features) == 5
    # Feature activations are all Hardtanh, none are sign.
    assert sum(isinstance(m, nn.Hardtanh) for m in net.features) == 5
    assert not any(isinstance(m, SignActivation) for m in net.features)
    assert not any(isinstance(m, nn.Hardtanh) for m in net.classifier)
    # The flattened features pass through a sign before the first binary linear.
    cls = list(net.classifier)
    assert isinstance(cls[0], nn.Flatten)
    assert isinstance(cls[1], SignActivation)
    first_linear = next(i for i, m in enumerate(cls) if isinstance(m, BinaryLinear))
    assert first_linear > 1


def test_binary_layers_full(nets):
    """binarize=full: 5 binary convs then 2 binary linears; every activation is sign."""
    net = nets[("full", 1)]
    found = binary_layers(net)
    assert [type(m) for _, m in found] == [BinaryConv1d] * 5 + [BinaryLinear] * 2
    assert [name.split(".")[0] for name, _ in found] == ["features"] * 5 + ["classifier"] * 2
    assert not any(isinstance(m, nn.Hardtanh | nn.ReLU) for m in net.modules())
    # 5 conv activations + 1 hidden FC activation, all sign.
    assert sum(isinstance(m, SignActivation) for m in net.modules()) == 6
    assert all(
        type(m) is SignActivation
        for m in net.modules()
        if isinstance(m, nn.Hardtanh | nn.ReLU | nn.Tanh | nn.Sigmoid | SignActivation)
    )
    # No plain (non-binary) conv or linear remains.
    for m in net.modules():
        if isinstance(m, nn.Conv1d | nn.Linear):
            assert isinstance(m, BinaryLayer)


def test_classifier_input_to_first_binary_linear_is_binary_in_eval(nets):
    """binarize=classifier, eval: the input to the first BinaryLinear is exactly +-1."""
    net = nets[("classifier", 1)].eval()
    first = next(m for m in net.classifier if isinstance(m, BinaryLinear))
    seen = []
    handle = first.register_forward_hook(lambda mod, inp, out: seen.append(inp[0].detach()))
    try:
        with torch.no_grad():
            net(_ecg_input(4, 4))
    finally:
        handle.remove()
        net.train()
    assert len(seen) == 1
    assert seen[0].shape == (4, 5152)
    assert set(seen[0].unique().tolist()) == {-1.0, 1.0}


def test_full_every_binary_layer_input_after_first_is_binary_in_eval(nets):
    """binarize=full, eval: every binary layer but the first sees exactly +-1 inputs."""
    net = nets[("full", 1)].eval()
    inputs: dict[str, torch.Tensor] = {}
    handles = [m.register_forward_hook(lambda mod, inp, out, n=name: inputs.__setitem__(
        n, inp[0].detach())) for name, m in binary_layers(net)]
    try:
        with torch.no_grad():
            net(_ecg_input(2, 5))
    finally:
        for h in handles:
            h.remove()
        net.train()
    names = [name for name, _ in binary_layers(net)]
    assert len(inputs) == 7
    # The first layer sees the (batch-normed) real input.
    assert not torch.isin(inputs[names[0]], torch.tensor([-1.0, 1.0])).all()
    for name in names[1:]:
        assert set(inputs[name].unique().tolist()) <= {-1.0, 1.0}, name


def test_full_forward_uses_plus_minus_one_weights(monkeypatch, nets):
    """binarize=full: the weights passed to F.linear and F.conv1d are exactly +-1."""
    net = nets[("full", 1)]
    linear_weights: list[torch.Tensor] = []
    conv_weights: list[torch.Tensor] = []
    real_linear, real_conv1d = F.linear, F.conv1d

    def spy_linear(x, weight, bias=None):
        linear_weights.append(weight.detach().clone())
        return real_linear(x, weight, bias)

    def spy_conv1d(x, weight, *args, **kwargs):
        conv_weights.append(weight.detach().clone())
        return real_conv1d(x, weight, *args, **kwargs)

    monkeypatch.setattr(F, "linear", spy_linear)
    monkeypatch.setattr(F, "conv1d", spy_conv1d)
    # Latent weights are real and mostly not +-1.
    for _, m in binary_layers(net):
        assert not torch.isin(m.weight.detach(), torch.tensor([-1.0, 1.0])).all()
    with torch.no_grad():
        net.eval()
        try:
            net(_ecg_input(2, 6))
        finally:
            net.train()
    assert len(linear_weights) == 2
    assert len(conv_weights) == 5
    for w, (_, m) in zip(conv_weights + linear_weights, binary_layers(net), strict=True):
        assert w.shape == m.weight.shape
        assert set(w.unique().tolist()) == {-1.0, 1.0}
        assert torch.equal(w, torch.where(m.weight.detach() >= 0, 1.0, -1.0))


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    "args, kwargs",
    [
        (("nope",), {}),
        (("ecg",), {"binarize": "half"}),
        (("ecg",), {"aug": 0}),
        (("ecg",), {"aug": -1}),
        (("ecg",), {"aug": 1.5}),
        (("ecg",), {"aug": True}),
        (("ecg",), {"aug": "2"}),
    ],
    ids=["bad-name", "binarize-half", "aug-0", "aug-neg", "aug-float", "aug-bool", "aug-str"],
)
def test_build_network_rejects_bad_arguments(args, kwargs):
    """Unknown network, unknown binarize, or aug that is not an int >= 1 raise ValueError."""
    with pytest.raises(ValueError):
        build_network(*args, **kwargs)


def test_check_variant_and_specnet_validate():
    """check_variant accepts every choice and SpecNet itself rejects bad variants."""
    for b in VARIANTS:
        check_variant(b, 1)
    check_variant("none", 4)
    with pytest.raises(ValueError):
        SpecNet(ECG_SPEC, binarize="Full")
    with pytest.raises(ValueError):
        SpecNet(ECG_SPEC, aug=False)


# --------------------------------------------------------------------------- dropout


@pytest.mark.parametrize("binarize", VARIANTS)
def test_dropout_probabilities(nets, binarize):
    """Conv dropouts p=0.05 (keep 0.95) before convs 2-5; classifier dropouts p=0.15 (keep 0.85)
    before each of the two linear layers."""
    net = nets[(binarize, 1)]
    conv_drop = [m for m in net.features if isinstance(m, nn.Dropout)]
    fc_drop = [m for m in net.classifier if isinstance(m, nn.Dropout)]
    assert [m.p for m in conv_drop] == [0.05] * 4
    assert [pytest.approx(1 - m.p) for m in conv_drop] == [0.95] * 4
    assert [m.p for m in fc_drop] == [0.15] * 2
    assert [pytest.approx(1 - m.p) for m in fc_drop] == [0.85] * 2
    # Each dropout directly precedes a conv / linear; the input is never dropped.
    feats, cls = list(net.features), list(net.classifier)
    for i, m in enumerate(feats):
        if isinstance(m, nn.Dropout):
            assert isinstance(feats[i + 1], nn.Conv1d)
    for i, m in enumerate(cls):
        if isinstance(m, nn.Dropout):
            assert isinstance(cls[i + 1], nn.Linear)
    assert not isinstance(feats[0], nn.Dropout)
    assert isinstance(feats[0], nn.BatchNorm1d) and feats[0].num_features == 12


def test_batch_norm_layout(nets):
    """Batch norm on the input, after every conv (32 ch) and after every FC layer."""
    net = nets[("none", 1)]
    bn_feats = [m.num_features for m in net.features if isinstance(m, nn.BatchNorm1d)]
    bn_cls = [m.num_features for m in net.classifier if isinstance(m, nn.BatchNorm1d)]
    assert bn_feats == [12] + [32] * 5
    assert bn_cls == [75, 2]
    assert tuple(c.kernel for c in ECG_SPEC.features) == KERNELS
