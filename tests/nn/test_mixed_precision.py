"""bf16 autocast (trainer.precision=bf16-mixed): the sign and its STE stay exact.

Under autocast the convolutions and matrix products run in bfloat16 and hand bfloat16
tensors to the signs. What must hold: every binary value is exactly +-1, the straight-through
mask of a bfloat16 input is the float32 mask of the same values, and a binary layer's
pre-activation is its exact integer popcount rounded once to bfloat16 (on the CPU; cuBLAS
may reduce in bfloat16, so on CUDA only the signs and masks are checked). The CUDA cases are
marked ``gpu`` and skipped without a device.
"""

from __future__ import annotations

import pytest
import torch

from bnn_edge.nn import (
    BinaryConv1d,
    BinaryLinear,
    SignActivation,
    binary_layers,
    binary_sign,
    ste_sign,
)
from bnn_edge.tasks import build_network

BF16 = torch.bfloat16
DEVICES = ["cpu", pytest.param("cuda", marks=[
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")])]
# bfloat16 values on and next to the STE window's edges (1 + 2**-7 is the next one above 1)
EDGES = [-2.0, -1.0078125, -1.0, -0.99609375, -0.5, -1e-30, -0.0, 0.0, 1e-30, 0.5,
         0.99609375, 1.0, 1.0078125, 3.0]


def bf16_values(n: int = 2000, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.cat([torch.tensor(EDGES), (torch.rand(n, generator=g) - 0.5) * 5]).to(BF16)


def sign_and_grad(x: torch.Tensor, upstream: torch.Tensor):
    x = x.clone().requires_grad_(True)
    y = ste_sign(x)
    y.backward(upstream)
    return y, x.grad


@pytest.mark.parametrize("device", DEVICES)
def test_ste_on_bf16_is_the_float32_ste_of_the_same_values(device):
    x = bf16_values()
    upstream = torch.randn(x.shape, generator=torch.Generator().manual_seed(1)).to(BF16)
    y16, g16 = (t.cpu() for t in sign_and_grad(x.to(device), upstream.to(device)))
    y32, g32 = sign_and_grad(x.float(), upstream.float())  # the reference: float32 on the CPU
    assert y16.dtype == BF16 and g16.dtype == BF16
    assert set(y16.float().unique().tolist()) == {-1.0, 1.0}
    assert torch.equal(y16.float(), y32)
    assert torch.equal(g16.float(), g32)  # the same mask: passed exactly where |x| <= 1
    passes = (g32 != 0) | (upstream.float() == 0)
    assert torch.equal(passes, x.float().abs() <= 1)
    edges = dict(zip(EDGES, (g16[:len(EDGES)] != 0).tolist(), strict=True))
    assert edges[1.0] and edges[-1.0] and not edges[1.0078125] and not edges[-1.0078125]
    assert y16[EDGES.index(-0.0)] == 1 and y16[EDGES.index(-1e-30)] == -1


def test_binary_layers_under_autocast_see_plus_minus_one_and_round_popcounts_once():
    torch.manual_seed(0)
    lin = BinaryLinear(601, 40, bias=False)
    w = lin.binary_weight.detach()
    # inputs close to the weight rows give odd popcounts near 600, past bf16's exact 256
    x = w[:8].repeat(4, 1)
    x[:, ::7] *= -1
    x = torch.cat([x, binary_sign(torch.randn(32, 601))])
    exact = x @ w.T
    with torch.autocast("cpu", dtype=BF16):
        y = lin(x)
    assert y.dtype == BF16
    assert torch.equal(y, exact.to(BF16))  # one rounding of the exact integer sum
    assert (exact.to(BF16).float() != exact).any()  # rounding is real above 256
    conv = BinaryConv1d(64, 16, 5, bias=False)
    xc = binary_sign(torch.randn(4, 64, 30))
    exact = torch.nn.functional.conv1d(xc, conv.binary_weight.detach())
    with torch.autocast("cpu", dtype=BF16):
        yc = conv(xc)
    assert torch.equal(yc, exact.to(BF16))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("binarize", ["classifier", "full"])
def test_a_network_under_autocast_keeps_signs_and_masks_exact(binarize, device):
    torch.manual_seed(0)
    net = build_network("ecg", binarize=binarize, aug=1).train().to(device)
    layers = binary_layers(net)
    with torch.no_grad():  # latent weights beyond the clip: their gradient must be 0
        for _, layer in layers:
            layer.weight.view(-1)[:50] = 1.5
    seen = []

    def keep(module, args, output):
        if torch.is_grad_enabled():
            args[0].retain_grad()
            output.retain_grad()
            seen.append((args[0], output))

    hooks = [m.register_forward_hook(keep) for m in net.modules()
             if isinstance(m, SignActivation)]
    inputs = {}

    def keep_input(name):
        def hook(module, args, output):
            inputs[name] = args[0]
        return hook

    hooks += [m.register_forward_hook(keep_input(name)) for name, m in layers]
    x = torch.randn(6, 12, 750, generator=torch.Generator().manual_seed(2)).to(device)
    with torch.autocast(device, dtype=BF16):
        loss = torch.nn.functional.cross_entropy(net(x), torch.tensor([0, 1] * 3, device=device))
    loss.backward()
    net.eval()  # without dropout's 1/keep scaling a binary layer's input is its +-1 signs
    with torch.no_grad(), torch.autocast(device, dtype=BF16):
        net(x)
    for h in hooks:
        h.remove()
    assert len(seen) == {"classifier": 2, "full": 6}[binarize]
    for pre, out in seen:
        assert out.dtype == pre.dtype and (device == "cuda" or pre.dtype == BF16)
        assert set(out.float().unique().tolist()) <= {-1.0, 1.0}
        assert torch.equal(out, binary_sign(pre.float()).to(BF16))
        expected = torch.where(pre.float().abs() <= 1, out.grad.float(), 0.0)
        assert torch.equal(pre.grad.float(), expected)
    first = layers[0][0]
    for name, layer in layers:
        assert layer.weight.dtype == torch.float32  # master weights stay float32
        assert set(layer.binary_weight.unique().tolist()) == {-1.0, 1.0}
        if name != first or binarize == "classifier":  # the full BNN's first layer sees the ECG
            assert set(inputs[name].float().unique().tolist()) <= {-1.0, 1.0}
        assert torch.equal(layer.weight.grad.view(-1)[:50].cpu(), torch.zeros(50))
        assert layer.weight.grad.abs().sum() > 0
