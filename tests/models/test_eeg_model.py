"""The EEG motor-imagery network (paper Table I) in every binarize variant."""

from __future__ import annotations

import pytest
import torch
from omegaconf import OmegaConf
from torch import nn

from bnn_edge.errors import ConfigError
from bnn_edge.lit.module import module_options
from bnn_edge.models.eeg import EEG_SPEC, FS, N_CHANNELS, N_SAMPLES, eeg_net
from bnn_edge.nn import BinaryConv2d, BinaryLinear, SignActivation, binary_layers
from bnn_edge.tasks import build_network, get_task
from tests.helpers.params import classifier_parameters, conv_parameters

VARIANTS = ("none", "classifier", "full")
EXPECTED_BINARY = {"none": [], "classifier": ["classifier.2", "classifier.5"],
                   "full": ["features.0", "features.3", "classifier.1", "classifier.4"]}


@pytest.fixture(scope="module")
def nets() -> dict[str, nn.Module]:
    out = {}
    for i, binarize in enumerate(VARIANTS):
        torch.manual_seed(200 + i)
        out[binarize] = build_network("eeg", binarize=binarize, aug=1)
    return out


def _eeg_input(batch: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(batch, N_CHANNELS, N_SAMPLES, generator=g)


def test_registry_and_input_shape():
    """'eeg' is registered; the input is one plane of 64 channels x 960 samples at 160 Hz."""
    assert get_task("eeg").build() is eeg_net
    assert EEG_SPEC.input_shape == (1, 64, 960) and EEG_SPEC.conv_dim == 2
    assert (N_CHANNELS, N_SAMPLES, FS) == (64, 960, 160)
    assert N_SAMPLES == 6 * FS


@pytest.mark.parametrize("binarize", VARIANTS)
def test_parameter_counts_table_i(nets, binarize):
    """aug=1: 305,522 parameters, 103,680 in the convs and 201,842 in the classifier."""
    net = nets[binarize]
    conv, fc = conv_parameters(net), classifier_parameters(net)
    assert conv["total"] == 103_680
    assert conv["weights"] == 1 * 30 * 40 + 40 * 64 * 40 and conv["biases"] == 80
    assert fc["total"] == 201_842
    assert fc["weights"] == 2520 * 80 + 80 * 2 and fc["biases"] == 82
    assert conv["total"] + fc["total"] == 305_522
    assert net.flat_features == 2520 == 63 * 40
    assert net.num_classes == 2


def test_parameter_counts_aug11():
    """aug=11 (the paper's best BNN): 440 kernels per conv, 27,720 flat features."""
    net = build_network("eeg", binarize="full", aug=11)
    assert net.flat_features == 63 * 440
    assert conv_parameters(net)["weights"] == 30 * 440 + 64 * 440 * 440
    assert classifier_parameters(net)["total"] == 27_720 * 80 + 80 + 80 * 2 + 2


def test_layer_output_shapes(nets):
    """Temporal conv -> (40, 64, 961), spatial conv -> (40, 1, 961), pool -> (40, 1, 63)."""
    shapes = []
    hooks = [m.register_forward_hook(lambda m, i, o: shapes.append((type(m), tuple(o.shape))))
             for m in nets["none"].features if isinstance(m, nn.Conv2d | nn.AvgPool2d)]
    try:
        nets["none"].eval()
        with torch.no_grad():
            nets["none"](_eeg_input(2, 0))
    finally:
        for h in hooks:
            h.remove()
    assert [s for _, s in shapes] == [(2, 40, 64, 961), (2, 40, 1, 961), (2, 40, 1, 63)]
    assert shapes[2][0] is nn.AvgPool2d


@pytest.mark.parametrize("binarize", VARIANTS)
def test_binary_layers_and_activations(nets, binarize):
    """Which layers are binary, and ReLU is replaced by sign exactly where they are."""
    net = nets[binarize]
    layers = binary_layers(net)
    assert [name for name, _ in layers] == EXPECTED_BINARY[binarize]
    kinds = [type(m) for _, m in layers]
    if binarize == "full":
        assert kinds == [BinaryConv2d, BinaryConv2d, BinaryLinear, BinaryLinear]
    n_sign = sum(isinstance(m, SignActivation) for m in net.modules())
    n_relu = sum(isinstance(m, nn.ReLU) for m in net.modules())
    # none: ReLU after both convs and FC 80; classifier: ReLU after the temporal conv, sign
    # (in place of the spatial conv's ReLU, which would make it constant) on the flattened
    # features and after FC 80; full: sign everywhere.
    assert (n_relu, n_sign) == {"none": (3, 0), "classifier": (1, 2), "full": (0, 3)}[binarize]
    for _, layer in layers:
        assert set(layer.binary_weight.unique().tolist()) == {-1.0, 1.0}


@pytest.mark.parametrize("binarize", VARIANTS)
def test_forward_backward_and_input_layouts(nets, binarize):
    """(B, 64, 960) and (B, 1, 64, 960) give the same logits; gradients reach every weight."""
    net = nets[binarize]
    net.eval()
    x = _eeg_input(3, 1)
    with torch.no_grad():
        a, b = net(x), net(x.unsqueeze(1))
    assert a.shape == (3, 2) and torch.equal(a, b)
    net.train()
    net.zero_grad()
    torch.nn.functional.cross_entropy(net(_eeg_input(4, 2)), torch.tensor([0, 1, 0, 1])).backward()
    for name, p in net.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_binarized_features_are_two_valued(nets):
    """In the full BNN the flattened features (input of the classifier) are exactly +-1."""
    net = nets["full"].eval()
    with torch.no_grad():
        feats = net.features(_eeg_input(2, 3).unsqueeze(1))
    assert feats.shape == (2, 40, 1, 63)
    assert set(feats.unique().tolist()) == {-1.0, 1.0}


def test_binary_classifier_input_is_informative(nets):
    """binarize=classifier: the +-1 features reaching the binary FC layers vary across trials."""
    net = nets["classifier"].eval()
    with torch.no_grad():
        signs = net.classifier[:2](net.features(_eeg_input(4, 4).unsqueeze(1)))
    assert set(signs.unique().tolist()) == {-1.0, 1.0}
    assert 0.2 < (signs > 0).float().mean() < 0.8


def test_num_classes_sets_the_last_layer():
    net = eeg_net(binarize="classifier", num_classes=4)
    assert net.num_classes == 4
    assert classifier_parameters(net)["total"] == 2520 * 80 + 80 + 80 * 4 + 4


@pytest.mark.parametrize("chunk", [-1, 1.5, "2", True])
def test_a_bad_chunk_is_the_model_chunk_option(chunk):
    with pytest.raises(ConfigError, match=r"model\.chunk=.* is not allowed: expected an integer"
                                          r" >= 0 \(trials per recomputed chunk; 0 = off\) or "
                                          r"null \(automatic\)"):
        module_options(OmegaConf.create({"name": "eeg", "chunk": chunk}))


def test_chunk_keeps_the_network_and_is_automatic_by_default():
    plain, chunked = eeg_net("full", 2, chunk=0), eeg_net("full", 2, chunk=3)
    assert plain.features.chunk == 0 and chunked.features.chunk == 3
    auto = eeg_net("full", 2).features
    assert auto.chunk is None
    # 80 kernels x 64 x 961 floats = 19.7 MB a trial: plain up to 54 trials, then 6 a chunk
    assert auto.chunk_for(torch.zeros(54, 1, 64, 960)) == 0
    assert auto.chunk_for(torch.zeros(55, 1, 64, 960)) == 6
    assert eeg_net("full", 11).features.chunk_for(torch.zeros(32, 1, 64, 960)) == 1
    assert plain.state_dict().keys() == chunked.state_dict().keys()
    assert module_options(OmegaConf.create({"name": "eeg", "chunk": None}))["net_options"] is None
    assert module_options(OmegaConf.create({"name": "eeg", "chunk": 4}))["net_options"] == {
        "chunk": 4}
