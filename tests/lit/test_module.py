"""The binary-network recipe of the Lightning module: spread thresholds that learn faster."""

import math

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf
from torch.nn import functional as F

from bnn_edge.errors import ConfigError
from bnn_edge.lit.module import BNNClassifier, module_options, recipe
from bnn_edge.nn import clip_binary_weights_, spread_thresholds_, threshold_norms
from bnn_edge.tasks import build_network


def names(net, norms):
    ids = {id(m): n for n, m in net.named_modules()}
    return [ids[id(m)] for m in norms]


def test_the_thresholds_are_the_batch_norms_that_feed_a_sign():
    eeg_full = build_network("eeg", binarize="full")
    assert names(eeg_full, threshold_norms(eeg_full)) == ["features.1", "features.5",
                                                          "classifier.2"]
    # the last conv block's batch norm feeds the classifier's sign across the flatten
    eeg_cls = build_network("eeg", binarize="classifier")
    assert names(eeg_cls, threshold_norms(eeg_cls)) == ["features.5", "classifier.3"]
    ecg_cls = build_network("ecg", binarize="classifier")  # across hardtanh and flatten
    assert names(ecg_cls, threshold_norms(ecg_cls)) == ["features.20", "classifier.4"]
    assert len(threshold_norms(build_network("ecg", binarize="full"))) == 6
    assert threshold_norms(build_network("eeg", binarize="none")) == []  # ReLUs, no signs


def test_spread_thresholds_fill_the_interval():
    norms = threshold_norms(build_network("eeg", binarize="full"))
    spread_thresholds_(norms, 0.5, torch.Generator().manual_seed(0))
    shifts = torch.cat([bn.bias.detach() for bn in norms])
    assert shifts.abs().max() <= 0.5 and shifts.abs().max() > 0.45
    assert abs(float(shifts.mean())) < 0.1 and float(shifts.std()) > 0.25  # U(-.5,.5): 0.29


def test_the_recipe_is_on_for_full_only_and_can_be_set():
    assert recipe("full", 1e-3, None, None) == (1.0, pytest.approx(1e-2))
    assert recipe("classifier", 1e-3, None, None) == (0.0, 1e-3)
    assert recipe("none", 2e-3, 0.3, 5e-3) == (0.3, 5e-3)
    full = BNNClassifier("eeg", binarize="full")
    groups = full.configure_optimizers().param_groups
    assert [g["lr"] for g in groups] == [1e-3, pytest.approx(1e-2)]
    assert len(groups[1]["params"]) == 6  # weight and shift of three batch norms
    shifts = torch.cat([bn.bias.detach() for bn in threshold_norms(full.net)])
    assert float(shifts.abs().mean()) > 0.3  # U(-1, 1): 0.5 on average
    plain = BNNClassifier("eeg", binarize="full", threshold_init=0, threshold_lr=1e-3)
    assert all(float(bn.bias.abs().max()) == 0 for bn in threshold_norms(plain.net))
    assert {g["lr"] for g in plain.configure_optimizers().param_groups} == {1e-3}


@pytest.mark.parametrize(("values", "message"), [
    ({"threshold_init": -1}, "model.threshold_init=-1 is not allowed: expected a number >= 0"),
    ({"threshold_init": "wide"}, "model.threshold_init='wide' is not allowed"),
    ({"threshold_lr": 0}, "model.threshold_lr=0 is not allowed: expected a number > 0, or null"),
    ({"threshold_lr": math.inf}, "model.threshold_lr=inf is not allowed"),
])
def test_bad_recipe_options_are_config_errors(values, message):
    with pytest.raises(ConfigError, match="^" + message.replace("(", r"\(").replace(".", r"\.")):
        module_options(OmegaConf.create({"name": "eeg", **values}))


def lateralised_trials(n: int, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """(n, 64, 960) noise with a 10 Hz rhythm that is weaker over one half of the channels:
    the class is which half (band power, as in motor imagery), not any waveform."""
    t = np.arange(960) / 160
    y = rng.integers(0, 2, n)
    x = rng.normal(0, 1, (n, 64, 960))
    phase = rng.uniform(0, 2 * np.pi, (n, 64, 1))
    amp = np.ones((n, 64, 1))
    for i, label in enumerate(y):
        amp[i, 32 * label:32 * (label + 1)] = 0.3  # desynchronised half
    x += 1.5 * amp * np.sin(2 * np.pi * 10 * t + phase)
    return torch.tensor(x, dtype=torch.float32), torch.tensor(y)


def test_the_recipe_lets_a_full_bnn_learn_band_power():
    """A fully binarized Table I network with the recipe learns a band-power class in 3
    epochs of 96 trials, well above chance on 64 held-out trials (1.0 when written; 0.53
    with threshold_init=0 and threshold_lr=model.lr, the old training)."""
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    x, y = lateralised_trials(160, rng)
    module = BNNClassifier("eeg", binarize="full")
    opt = module.configure_optimizers()
    for _ in range(3):
        for batch in torch.randperm(96).split(16):
            loss = F.cross_entropy(module(x[batch]), y[batch])
            opt.zero_grad()
            loss.backward()
            opt.step()
            clip_binary_weights_(module.net)
    module.eval()
    with torch.no_grad():
        acc = float((module(x[96:]).argmax(1) == y[96:]).float().mean())
    assert acc > 0.8  # chance: 0.5


@pytest.mark.parametrize("binarize", ["none", "classifier"])
def test_the_recipe_leaves_the_other_variants_as_they_were(binarize):
    """none and classifier start from the very weights the network gets alone (no random
    number is drawn for thresholds) and every parameter learns at model.lr."""
    torch.manual_seed(3)
    alone = build_network("eeg", binarize=binarize).state_dict()
    torch.manual_seed(3)
    module = BNNClassifier("eeg", binarize=binarize)
    assert all(torch.equal(alone[k], v) for k, v in module.net.state_dict().items())
    assert {g["lr"] for g in module.configure_optimizers().param_groups} == {1e-3}
