"""Tests for bnn_edge.nn: sign quantizer, STE gradient, binary layers, clipping."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from bnn_edge.nn import (
    CLIP_VALUE,
    BinaryConv1d,
    BinaryConv2d,
    BinaryLayer,
    BinaryLinear,
    Conv2d,
    SignActivation,
    binary_layers,
    binary_sign,
    clip_binary_weights_,
    ste_sign,
)

# Values inside, on the boundary of, and outside the STE window [-1, 1], including 0.
EDGE_VALUES = [-3.0, -1.5, -1.0, -0.999, -0.5, -1e-7, 0.0, 1e-7, 0.25, 0.999, 1.0, 1.0001, 2.0, 7.5]


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _reference_sign(x: torch.Tensor) -> torch.Tensor:
    """torch.sign with the package convention sign(0) = +1."""
    s = torch.sign(x)
    return torch.where(s == 0, torch.ones_like(s), s)


# --------------------------------------------------------------------------- sign values


@pytest.mark.parametrize("fn", [binary_sign, ste_sign], ids=["binary_sign", "ste_sign"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16, torch.bfloat16])
def test_sign_values_are_plus_minus_one_and_keep_dtype(fn, dtype):
    """Outputs lie exactly in {-1, +1}, match torch.sign off zero, and keep the input dtype."""
    x = torch.cat([torch.tensor(EDGE_VALUES), torch.randn(1000, generator=_gen(1)) * 3]).to(dtype)
    y = fn(x)
    assert y.dtype == dtype
    assert y.shape == x.shape
    assert set(y.float().unique().tolist()) == {-1.0, 1.0}
    assert torch.equal(y, _reference_sign(x))


@pytest.mark.parametrize("fn", [binary_sign, ste_sign], ids=["binary_sign", "ste_sign"])
def test_sign_of_zero_is_plus_one(fn):
    """sign(0) = +1 (documented convention), also for negative zero."""
    x = torch.tensor([0.0, -0.0, 0.0], dtype=torch.float32)
    assert torch.equal(fn(x), torch.ones(3))


def test_binary_sign_has_no_gradient_path():
    """binary_sign gives no autograd path back to its input (it is not the STE)."""
    x = torch.tensor([-2.0, 0.5], requires_grad=True)
    y = binary_sign(x)
    assert not y.requires_grad


def test_sign_preserves_shape_multidim():
    """ste_sign works element-wise on multi-dimensional tensors."""
    x = torch.randn(2, 3, 4, 5, generator=_gen(2))
    y = ste_sign(x)
    assert y.shape == x.shape
    assert torch.equal(y, _reference_sign(x))


# --------------------------------------------------------------------------- STE gradient


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_ste_gradient_passes_inside_window_and_zero_outside(dtype):
    """x.grad equals the upstream gradient where |x| <= 1 (incl. +-1 and 0), exactly 0 outside."""
    g = _gen(3)
    x_vals = torch.cat([torch.tensor(EDGE_VALUES, dtype=dtype),
                        (torch.rand(500, generator=g, dtype=dtype) - 0.5) * 6])
    x = x_vals.clone().requires_grad_(True)
    w = torch.randn(x.shape, generator=g, dtype=dtype)
    (ste_sign(x) * w).sum().backward()
    inside = x_vals.abs() <= 1
    assert inside.any() and (~inside).any()
    assert x.grad.dtype == dtype
    assert torch.equal(x.grad[inside], w[inside])
    assert torch.equal(x.grad[~inside], torch.zeros_like(x.grad[~inside]))
    # The boundary points and zero pass the gradient explicitly.
    for v in (-1.0, 0.0, 1.0):
        idx = (x_vals == v).nonzero().flatten()
        assert len(idx) >= 1
        assert torch.equal(x.grad[idx], w[idx])


def test_ste_custom_clip_value():
    """With clip_value=0.5 the gradient window is |x| <= 0.5."""
    x_vals = torch.tensor([-1.0, -0.5, -0.4, 0.0, 0.4, 0.5, 0.6, 1.0])
    x = x_vals.clone().requires_grad_(True)
    w = torch.arange(1.0, 9.0)
    (ste_sign(x, clip_value=0.5) * w).sum().backward()
    expected = torch.where(x_vals.abs() <= 0.5, w, torch.zeros_like(w))
    assert torch.equal(x.grad, expected)


def test_default_gradient_window_is_the_hardtanh_one():
    """By default the gradient passes for |x| <= 1 and stops beyond, as hardtanh's does;
    the binary layers' quantizer uses the same window and reports 1 bit."""
    x = torch.tensor([-1.001, -1.0, -0.3, 0.0, 1.0, 1.001], requires_grad=True)
    ste_sign(x).sum().backward()
    assert x.grad.tolist() == [0.0, 1.0, 1.0, 1.0, 1.0, 0.0]
    layer = BinaryLinear(3, 2)
    assert layer.weight_quantizer.clip_value == CLIP_VALUE and layer.precision == 1


# --------------------------------------------------------------------------- SignActivation


def test_sign_activation_matches_ste_sign_forward_and_backward():
    """SignActivation gives the same outputs and input gradients as ste_sign."""
    g = _gen(4)
    base = torch.randn(4, 7, 9, generator=g) * 1.5
    base[0, 0, 0] = 0.0
    base[0, 0, 1] = 1.0
    base[0, 0, 2] = -1.0
    w = torch.randn(base.shape, generator=g)

    x1 = base.clone().requires_grad_(True)
    y1 = SignActivation()(x1)
    (y1 * w).sum().backward()

    x2 = base.clone().requires_grad_(True)
    y2 = ste_sign(x2)
    (y2 * w).sum().backward()

    assert torch.equal(y1, y2)
    assert torch.equal(x1.grad, x2.grad)
    assert set(y1.unique().tolist()) == {-1.0, 1.0}
    assert torch.equal(x1.grad, torch.where(base.abs() <= 1, w, torch.zeros_like(w)))


def test_sign_activation_has_no_parameters():
    """SignActivation is parameter-free."""
    assert list(SignActivation().parameters()) == []


# --------------------------------------------------------------------------- binary layers


def _with_outliers(layer: nn.Module) -> nn.Module:
    """Push some latent weights outside [-1, 1] and set one to exactly 0."""
    with torch.no_grad():
        flat = layer.weight.view(-1)
        flat[0] = 2.5
        flat[1] = -3.0
        flat[2] = 0.0
        flat[3] = 1.0
        flat[4] = -1.0
    return layer


def _check_binary_layer_gradients(layer: nn.Module, x: torch.Tensor, g: torch.Generator):
    """The latent weight gradient equals the gradient w.r.t. the +-1 weights, masked by STE."""
    weight_b = _reference_sign(layer.weight.detach()).requires_grad_(True)
    out = layer(x)
    upstream = torch.randn(out.shape, generator=g, dtype=out.dtype)
    (out * upstream).sum().backward()

    if isinstance(layer, nn.Linear):
        ref = F.linear(x, weight_b, layer.bias)
    elif isinstance(layer, nn.Conv1d):
        ref = F.conv1d(x, weight_b, layer.bias, layer.stride, layer.padding,
                       layer.dilation, layer.groups)
    else:
        ref = F.conv2d(x, weight_b, layer.bias, layer.stride, layer.padding,
                       layer.dilation, layer.groups)
    (ref * upstream).sum().backward()

    inside = layer.weight.detach().abs() <= 1
    assert (~inside).any(), "test setup: some latent weights must be outside [-1, 1]"
    grad = layer.weight.grad
    assert grad is not None
    torch.testing.assert_close(grad[inside], weight_b.grad[inside], rtol=1e-12, atol=1e-12)
    assert torch.equal(grad[~inside], torch.zeros_like(grad[~inside]))
    # Not trivially zero: gradients really reach the latent weights.
    assert grad[inside].abs().sum() > 0
    if layer.bias is not None:
        assert layer.bias.grad is not None and layer.bias.grad.abs().sum() > 0


def _int_input(shape: tuple[int, ...], g: torch.Generator) -> torch.Tensor:
    """Integer-valued float64 input, so +-1 weight products and sums are exact."""
    return torch.randint(-5, 6, shape, generator=g).to(torch.float64)


def test_binary_linear_forward_equals_f_linear_with_sign_weights():
    """BinaryLinear(x) == F.linear(x, sign(W), b) exactly for integer inputs."""
    torch.manual_seed(10)
    layer = _with_outliers(BinaryLinear(16, 5).double())
    with torch.no_grad():
        layer.bias.copy_(torch.arange(5, dtype=torch.float64))
    x = _int_input((8, 16), _gen(10))
    out = layer(x)
    ref = F.linear(x, _reference_sign(layer.weight.detach()), layer.bias)
    assert torch.equal(out, ref)
    assert out.shape == (8, 5)


def test_binary_linear_without_bias():
    """BinaryLinear(bias=False) equals x @ sign(W).T exactly."""
    torch.manual_seed(11)
    layer = BinaryLinear(6, 3, bias=False).double()
    x = _int_input((4, 6), _gen(11))
    assert torch.equal(layer(x), x @ _reference_sign(layer.weight.detach()).T)


def test_binary_conv1d_forward_equals_f_conv1d_with_sign_weights():
    """BinaryConv1d(x) == F.conv1d(x, sign(W), b) exactly, with stride and padding."""
    torch.manual_seed(12)
    layer = _with_outliers(BinaryConv1d(3, 4, 5, stride=2, padding=1).double())
    x = _int_input((2, 3, 20), _gen(12))
    out = layer(x)
    ref = F.conv1d(x, _reference_sign(layer.weight.detach()), layer.bias, stride=2, padding=1)
    assert torch.equal(out, ref)


def test_binary_conv2d_forward_equals_f_conv2d_with_sign_weights():
    """BinaryConv2d(x) == F.conv2d(x, sign(W), b) exactly, with padding."""
    torch.manual_seed(13)
    layer = _with_outliers(BinaryConv2d(2, 3, (3, 2), padding=(1, 0)).double())
    x = _int_input((2, 2, 7, 6), _gen(13))
    out = layer(x)
    ref = F.conv2d(x, _reference_sign(layer.weight.detach()), layer.bias, padding=(1, 0))
    assert torch.equal(out, ref)


@pytest.mark.parametrize("binary", [False, True], ids=["Conv2d", "BinaryConv2d"])
def test_full_height_conv2d_matches_f_conv2d_forward_and_backward(binary):
    """A kernel spanning the input height takes the 1-D path with identical results and grads."""
    torch.manual_seed(15)
    cls = BinaryConv2d if binary else Conv2d
    layer = cls(3, 4, (5, 2), stride=(1, 2), padding=(0, 1)).double()
    x = _int_input((2, 3, 5, 9), _gen(15)).requires_grad_(True)
    out = layer(x)
    w = layer.weight.detach().clone().requires_grad_(True)
    x_ref = x.detach().clone().requires_grad_(True)
    ref = F.conv2d(x_ref, _reference_sign(w) if binary else w, layer.bias.detach(),
                   stride=(1, 2), padding=(0, 1))
    assert out.shape == ref.shape == (2, 4, 1, 5)
    assert torch.equal(out, ref)
    g = torch.randn(out.shape, dtype=torch.float64, generator=_gen(16))
    out.backward(g)
    ref.backward(g)
    assert torch.allclose(x.grad, x_ref.grad)
    if not binary:
        assert torch.allclose(layer.weight.grad, w.grad)
    # a shorter input (kernel smaller than the height) takes the ordinary 2-D path
    short = cls(3, 4, (2, 2)).double()
    assert short(x.detach()).shape == (2, 4, 4, 8)


def test_binary_layers_float32_forward_close():
    """In float32 with real inputs the three layers agree with the functional reference."""
    torch.manual_seed(14)
    g = _gen(14)
    lin, c1, c2 = BinaryLinear(10, 4), BinaryConv1d(2, 3, 3), BinaryConv2d(2, 3, 3)
    x_l = torch.randn(5, 10, generator=g)
    x_1 = torch.randn(5, 2, 12, generator=g)
    x_2 = torch.randn(5, 2, 6, 6, generator=g)
    torch.testing.assert_close(lin(x_l), F.linear(x_l, _reference_sign(lin.weight), lin.bias))
    torch.testing.assert_close(c1(x_1), F.conv1d(x_1, _reference_sign(c1.weight), c1.bias))
    torch.testing.assert_close(c2(x_2), F.conv2d(x_2, _reference_sign(c2.weight), c2.bias))


@pytest.mark.parametrize(
    "make",
    [lambda: BinaryLinear(7, 3), lambda: BinaryConv1d(2, 3, 3), lambda: BinaryConv2d(2, 3, 2)],
    ids=["linear", "conv1d", "conv2d"],
)
def test_binary_weight_is_plus_minus_one_and_latent_stays_real(make):
    """binary_weight is exactly +-1 (sign of latent, sign(0)=+1); the latent weight is untouched."""
    torch.manual_seed(15)
    layer = _with_outliers(make())
    latent_before = layer.weight.detach().clone()
    bw = layer.binary_weight
    assert bw.shape == layer.weight.shape
    assert bw.dtype == layer.weight.dtype
    assert set(bw.detach().unique().tolist()) == {-1.0, 1.0}
    assert torch.equal(bw.detach(), _reference_sign(latent_before))
    assert bw.detach().view(-1)[2] == 1.0  # latent weight exactly 0 -> +1
    # Latent weights remain real-valued (not binarized in place).
    assert torch.equal(layer.weight.detach(), latent_before)
    non_binary = ~torch.isin(layer.weight.detach(), torch.tensor([-1.0, 1.0]))
    assert non_binary.sum() > 0
    assert isinstance(layer.weight, nn.Parameter)
    assert isinstance(layer, BinaryLayer)


def test_binary_linear_gradient_reaches_latent_weight_through_ste():
    """BinaryLinear: latent grad == grad w.r.t. sign(W) where |W| <= 1, 0 where |W| > 1."""
    torch.manual_seed(16)
    layer = _with_outliers(BinaryLinear(9, 4).double())
    _check_binary_layer_gradients(layer, torch.randn(6, 9, generator=_gen(16),
                                                      dtype=torch.float64), _gen(17))


def test_binary_conv1d_gradient_reaches_latent_weight_through_ste():
    """BinaryConv1d: latent grad == grad w.r.t. sign(W) where |W| <= 1, 0 where |W| > 1."""
    torch.manual_seed(18)
    layer = _with_outliers(BinaryConv1d(3, 4, 3, padding=1).double())
    _check_binary_layer_gradients(layer, torch.randn(2, 3, 11, generator=_gen(18),
                                                      dtype=torch.float64), _gen(19))


def test_binary_conv2d_gradient_reaches_latent_weight_through_ste():
    """BinaryConv2d: latent grad == grad w.r.t. sign(W) where |W| <= 1, 0 where |W| > 1."""
    torch.manual_seed(20)
    layer = _with_outliers(BinaryConv2d(2, 3, 3).double())
    _check_binary_layer_gradients(layer, torch.randn(2, 2, 6, 5, generator=_gen(20),
                                                      dtype=torch.float64), _gen(21))


# --------------------------------------------------------------------------- clipping


class _Mixed(nn.Module):
    """Binary conv, binary linear and a plain linear head, with sign activations."""

    def __init__(self):
        super().__init__()
        self.conv = BinaryConv1d(2, 4, 3)
        self.act = SignActivation()
        self.flat = nn.Flatten()
        self.fc = BinaryLinear(4 * 6, 5)
        self.head = nn.Linear(5, 3)

    def forward(self, x):
        return self.head(self.fc(self.flat(self.act(self.conv(x)))))


def test_clip_binary_weights_after_large_adam_step():
    """After Adam(lr=10) + clip_binary_weights_, binary latents are in [-1, 1] (some exactly +-1);
    the plain nn.Linear is not clipped."""
    torch.manual_seed(30)
    model = _Mixed()
    for _, m in binary_layers(model):
        assert m.weight.detach().abs().max() <= 1  # default init is inside the STE window
    opt = torch.optim.Adam(model.parameters(), lr=10.0)
    x = torch.randn(8, 2, 8, generator=_gen(30))
    target = torch.randn(8, 3, generator=_gen(31))
    loss = F.mse_loss(model(x), target)
    loss.backward()
    for _, m in binary_layers(model):
        assert m.weight.grad.abs().sum() > 0
    opt.step()
    # Before clipping, the step pushed latent weights far outside the window.
    assert model.conv.weight.detach().abs().max() > 1
    assert model.fc.weight.detach().abs().max() > 1

    head_before = model.head.weight.detach().clone()
    clip_binary_weights_(model)

    for name, m in binary_layers(model):
        w = m.weight.detach()
        assert w.min() >= -1.0 and w.max() <= 1.0, name
        assert (w.abs() == 1.0).any(), name
    # The plain linear layer is left alone.
    assert torch.equal(model.head.weight.detach(), head_before)
    assert model.head.weight.detach().abs().max() > 1


def test_clip_binary_weights_custom_value_and_bias_untouched():
    """clip_binary_weights_(model, 0.3) clamps latents to [-0.3, 0.3] and leaves biases alone."""
    torch.manual_seed(31)
    layer = BinaryLinear(4, 3)
    with torch.no_grad():
        layer.weight.copy_(torch.linspace(-5, 5, 12).view(3, 4))
        layer.bias.copy_(torch.tensor([-7.0, 0.0, 9.0]))
    expected = torch.linspace(-5, 5, 12).view(3, 4).clamp(-0.3, 0.3)
    clip_binary_weights_(nn.Sequential(layer), 0.3)
    assert torch.equal(layer.weight.detach(), expected)
    assert torch.equal(layer.bias.detach(), torch.tensor([-7.0, 0.0, 9.0]))


def test_clip_weights_method_in_place():
    """BinaryLayer.clip_weights_ clamps in place and keeps the same Parameter object."""
    layer = BinaryConv1d(1, 1, 4, bias=False)
    param = layer.weight
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[[-2.0, -0.5, 0.5, 2.0]]]))
    layer.clip_weights_()
    assert layer.weight is param
    assert torch.equal(layer.weight.detach(), torch.tensor([[[-1.0, -0.5, 0.5, 1.0]]]))


# --------------------------------------------------------------------------- binary_layers


def test_binary_layers_returns_exactly_binary_layers_in_registration_order():
    """binary_layers gives (qualified name, module) of the binary layers only, in order."""
    torch.manual_seed(40)
    inner = nn.Sequential(nn.Linear(3, 3), BinaryConv2d(1, 1, 1), SignActivation())
    model = nn.Module()
    model.b = BinaryLinear(2, 2)
    model.a = nn.Conv1d(1, 1, 1)
    model.block = inner
    model.z = BinaryConv1d(1, 1, 1)
    model.head = nn.Linear(2, 2)
    model.y = BinaryLinear(3, 3)

    found = binary_layers(model)
    assert [name for name, _ in found] == ["b", "block.1", "z", "y"]
    assert [m for _, m in found] == [model.b, inner[1], model.z, model.y]
    assert all(isinstance(m, BinaryLayer) for _, m in found)


def test_binary_layers_empty_for_plain_model():
    """A model without binary layers yields an empty list (SignActivation is not a layer)."""
    model = nn.Sequential(nn.Linear(2, 2), SignActivation(), nn.Conv1d(1, 1, 1))
    assert binary_layers(model) == []


def test_binary_layers_on_a_binary_layer_itself():
    """A binary layer passed directly is returned with the empty name."""
    layer = BinaryLinear(2, 2)
    assert binary_layers(layer) == [("", layer)]
