"""The recomputed conv -> batch norm -> activation -> conv chain (the EEG memory-saving path).

It must give the plain layers' outputs, gradients and running statistics (float32 summation
order aside: outputs within 1e-5, gradients within 1e-5 of their largest value), for every
activation and variant, a chunk that does not divide the batch included, and keep no
per-trial map for the backward pass.
"""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from bnn_edge.nn import BinaryConv2d, Conv2d, SignActivation, clip_binary_weights_
from bnn_edge.nn.recompute import RecomputedSequential, conv_norm_act_conv
from bnn_edge.tasks import build_network

ACTIVATIONS = {"relu": nn.ReLU, "sign": SignActivation, "hardtanh": nn.Hardtanh}


def chain(binary: bool, act: str, seed: int = 0) -> nn.ModuleList:
    """An EEG-like chain: 1 x 7 temporal conv over 6 rows, then a conv spanning the rows."""
    torch.manual_seed(seed)
    conv = BinaryConv2d if binary else Conv2d
    mods = nn.ModuleList([conv(1, 5, (1, 7), padding=(0, 3)), nn.BatchNorm2d(5),
                          ACTIVATIONS[act](), conv(5, 4, (6, 1))])
    with torch.no_grad():  # shifts and scales away from 1/0, so every activation region is hit
        mods[1].weight.uniform_(0.5, 2.0)
        mods[1].bias.uniform_(-0.5, 0.5)
    return mods


def plain(x, mods):
    return mods[3](mods[2](mods[1](mods[0](x))))


def close(a: torch.Tensor, b: torch.Tensor) -> bool:
    a, b = a.detach(), b.detach()
    return bool((a - b).abs().max() <= 1e-5 * max(1.0, float(b.abs().max())))


@pytest.mark.parametrize("act", sorted(ACTIVATIONS))
@pytest.mark.parametrize("binary", [False, True])
@pytest.mark.parametrize("chunk", [1, 3, 11, 64])
@pytest.mark.parametrize("input_grad", [False, True])  # one backward pass, or two
def test_outputs_gradients_and_running_stats_are_the_plain_layers(act, binary, chunk,
                                                                  input_grad):
    mods = chain(binary, act)
    ref = copy.deepcopy(mods)
    x = torch.randn(11, 1, 6, 40).requires_grad_(input_grad)
    x_ref = x.detach().clone().requires_grad_(input_grad)
    y = conv_norm_act_conv(x, *mods, chunk=chunk)
    y_ref = plain(x_ref, ref)
    assert y.shape == y_ref.shape == (11, 4, 1, 40)
    assert close(y, y_ref)
    upstream = torch.randn_like(y)
    y.backward(upstream)
    y_ref.backward(upstream)
    if input_grad:
        assert close(x.grad, x_ref.grad)
    scale = float(ref[0].weight.grad.abs().max())
    for (name, p), p_ref in zip(mods.named_parameters(), ref.parameters(), strict=True):
        if name == "0.bias":  # a bias before a batch norm: its gradient is 0, rounding aside
            assert max(p.grad.abs().max(), p_ref.grad.abs().max()) <= 1e-5 * scale
            continue
        assert p_ref.grad.abs().max() > 0, name
        assert close(p.grad, p_ref.grad), name
    assert close(mods[1].running_mean, ref[1].running_mean)
    assert close(mods[1].running_var, ref[1].running_var)
    assert int(mods[1].num_batches_tracked) == int(ref[1].num_batches_tracked) == 1


def test_every_activation_region_is_exercised():
    """The chains above reach both sides of the STE window and of ReLU's zero."""
    mods = chain(False, "sign")
    with torch.no_grad():
        h = mods[1](mods[0](torch.randn(11, 1, 6, 40)))
    assert (h < -1).any() and (h > 1).any() and (h.abs() <= 1).any()


def test_cumulative_momentum_and_no_affine_norm_match():
    mods = chain(False, "relu")
    mods[1] = nn.BatchNorm2d(5, momentum=None, affine=False)
    ref = copy.deepcopy(mods)
    x = torch.randn(9, 1, 6, 40)
    for _ in range(2):
        conv_norm_act_conv(x, *mods, chunk=4).sum().backward()
        plain(x, ref).sum().backward()
    assert close(mods[1].running_var, ref[1].running_var)
    assert close(mods[0].weight.grad, ref[0].weight.grad)


def test_evaluation_runs_the_chunks_through_the_layers():
    mods = chain(True, "sign").eval()
    x = torch.randn(7, 1, 6, 40)
    with torch.no_grad():
        assert close(conv_norm_act_conv(x, *mods, chunk=3), plain(x, mods))


def test_no_map_of_the_chain_is_kept_for_the_backward_pass():
    """Plain autograd keeps several (batch, 5, 6, 40) maps; the chain keeps the input, the
    weights and per-channel statistics only."""
    def saved_bytes(fn) -> int:
        total = []

        def pack(t):
            total.append(t.numel() * t.element_size())
            return t

        x = torch.randn(32, 1, 6, 40)
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            fn(x)
        return sum(total)

    mods = chain(True, "sign")
    map_bytes = 32 * 5 * 6 * 40 * 4
    assert saved_bytes(lambda x: plain(x, mods)) > 2 * map_bytes
    assert saved_bytes(lambda x: conv_norm_act_conv(x, *mods, chunk=4)) < map_bytes / 2


def test_under_bf16_autocast_the_chain_computes_in_float32():
    mods = chain(False, "relu")
    ref = copy.deepcopy(mods)
    x = torch.randn(6, 1, 6, 40)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = conv_norm_act_conv(x, *mods, chunk=2)
    assert y.dtype == torch.float32
    assert close(y, plain(x, ref))


def test_recomputed_sequential_keeps_the_plain_layer_names():
    layers = list(chain(False, "relu")) + [nn.Flatten()]
    seq = RecomputedSequential(*copy.deepcopy(layers), chunk=2)
    assert list(seq.state_dict()) == list(nn.Sequential(*layers).state_dict())
    with pytest.raises(TypeError, match="BatchNorm2d"):
        RecomputedSequential(layers[0], nn.Identity(), layers[2], layers[3], chunk=2)
    with pytest.raises(TypeError, match="activation"):
        RecomputedSequential(layers[0], layers[1], nn.GELU(), layers[3], chunk=2)


@pytest.mark.parametrize("binarize", ["none", "full"])
def test_eeg_training_with_chunks_follows_the_plain_run(binarize):
    """Same seed, same batches, 3 SGD steps: the losses and the weights of the chunked
    network stay those of the plain one (losses within 1e-5, weights within 1e-4 relative).

    SGD, because Adam does not keep float32 rounding small: it scales every step to the
    learning rate, so the rounding noise in a zero gradient (the bias before a batch norm)
    becomes a full step, and a latent binary weight near 0 then flips its sign; that holds
    for two plain runs on different thread counts as much as for these two paths.
    """
    def run(chunk: int):
        torch.manual_seed(0)
        net = build_network("eeg", binarize=binarize, aug=1, chunk=chunk).train()
        opt = torch.optim.SGD(net.parameters(), lr=0.05)
        g = torch.Generator().manual_seed(1)
        losses = []
        for _ in range(3):
            x = torch.randn(4, 64, 960, generator=g)
            y = torch.randint(0, 2, (4,), generator=g)
            opt.zero_grad()
            loss = F.cross_entropy(net(x), y)
            loss.backward()
            opt.step()
            clip_binary_weights_(net)
            losses.append(loss.item())
        return losses, net.state_dict()

    losses, state = run(0)
    losses_c, state_c = run(3)
    assert losses_c == pytest.approx(losses, rel=1e-5)
    assert losses[-1] != losses[0]  # the steps changed the network
    assert state.keys() == state_c.keys()
    for k in state:
        a, b = state[k].double(), state_c[k].double()
        assert (a - b).abs().max() <= 1e-4 * max(1.0, float(a.abs().max())), k
