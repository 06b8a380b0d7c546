"""Fault injection on a CUDA device: the CPU's flips, weights given back bit for bit."""

from __future__ import annotations

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from bnn_edge.hardware.faults import WeightFaults, ber_sweep, fault_rng, real_weight_layers
from bnn_edge.nn import binary_layers
from bnn_edge.tasks import build_network
from tests.helpers.bits import assert_bit_identical, raw_bits, snapshot

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]


def nets(binarize: str):
    """The same ECG network on the CPU and on cuda:0 (zero latents included)."""
    torch.manual_seed(0)
    cpu = build_network("ecg", binarize=binarize, aug=1).eval()
    for _, layer in binary_layers(cpu):
        with torch.no_grad():
            layer.weight.view(-1)[:5] = 0.0
            layer.weight.view(-1)[5:10] = -0.0
    gpu = build_network("ecg", binarize=binarize, aug=1).eval()
    gpu.load_state_dict(cpu.state_dict())
    return cpu, gpu.cuda()


@pytest.mark.parametrize(("binarize", "fmt"), [("full", "none"), ("classifier", "fp32"),
                                               ("classifier", "int8"), ("none", "fp32")])
def test_cuda_flips_are_the_cpu_flips_and_the_weights_come_back(binarize, fmt):
    cpu, gpu = nets(binarize)
    before = snapshot(gpu)
    assert before.keys() == snapshot(cpu).keys()
    with WeightFaults(cpu, fmt) as on_cpu, WeightFaults(gpu, fmt) as on_gpu:
        for rate, draw in [(1e-3, 0), (0.05, 1), (0.5, 2)]:
            a = on_cpu.inject(rate, fault_rng(7, rate, draw))
            b = on_gpu.inject(rate, fault_rng(7, rate, draw))
            assert (a.flipped, a.bits) == (b.flipped, b.bits) and a.flipped > 0
            for (name, p_cpu), (_, p_gpu) in zip(cpu.named_parameters(),
                                                 gpu.named_parameters(), strict=True):
                assert p_gpu.is_cuda
                if fmt == "int8" and any(name == f"{n}.weight" for n, _ in
                                         real_weight_layers(cpu)):
                    # w / scale may round the other way at a tie on the GPU: one step at most
                    step = float(p_cpu.detach().abs().max()) / 127 + 1e-12
                    assert (p_gpu.detach().cpu() - p_cpu.detach()).abs().max() <= step
                else:
                    assert torch.equal(raw_bits(p_gpu), raw_bits(p_cpu)), name
    assert_bit_identical(gpu, before)


def test_a_cuda_sweep_gives_the_cpu_points():
    cpu, gpu = nets("full")
    g = torch.Generator().manual_seed(3)
    data = TensorDataset(torch.randn(64, 12, 750, generator=g), torch.randint(0, 2, (64,),
                                                                               generator=g))
    loader = DataLoader(data, batch_size=16)
    before, tf32 = snapshot(gpu), torch.backends.cudnn.allow_tf32
    rates = [0.0, 1e-3, 0.02, 0.5]
    on_cpu = ber_sweep(cpu, loader, rates, draws=3, seed=5, device="cpu")
    on_gpu = ber_sweep(gpu, loader, rates, draws=3, seed=5, device=torch.device("cuda"))
    assert [(p.ber, p.accuracies, p.flipped, p.bits) for p in on_gpu] == [
        (p.ber, p.accuracies, p.flipped, p.bits) for p in on_cpu]
    assert_bit_identical(gpu, before)
    assert torch.backends.cudnn.allow_tf32 == tf32  # the sweep's IEEE float32 ended with it


@pytest.mark.parametrize("fmt", ["none", "fp32"])
@pytest.mark.parametrize(("spec", "level"), [({"name": "stuck"}, 0.05),
                                             ({"name": "array", "rows": 1.0}, 2.0),
                                             ({"name": "sec"}, 0.05)])
def test_fault_models_that_read_the_stored_values_flip_on_cuda_what_they_flip_on_the_cpu(
        spec, level, fmt):
    from bnn_edge.hardware.faults.models import parse_fault_model

    model, _, _ = parse_fault_model(spec)
    cpu, gpu = nets("classifier")
    before = snapshot(gpu)
    with WeightFaults(cpu, fmt, model) as on_cpu, WeightFaults(gpu, fmt, model) as on_gpu:
        a = on_cpu.draw(level, fault_rng(7, level, 0))
        b = on_gpu.draw(level, fault_rng(7, level, 0))
        assert [p.tolist() for p in a] == [p.tolist() for p in b] and sum(map(len, a)) > 0
        on_gpu.inject(level, fault_rng(7, level, 0))
    assert_bit_identical(gpu, before)
