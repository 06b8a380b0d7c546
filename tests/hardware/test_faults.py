"""Fault injection: flip counts, exact restoration, rate 0 and 0.5, fp32/int8 bits, training."""

from __future__ import annotations

import math

import lightning as L
import numpy as np
import pytest
import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, TensorDataset

from bnn_edge.hardware.faults import (
    WeightFaults,
    accuracy,
    ber_sweep,
    fault_rng,
    flip_positions,
    real_weight_layers,
)
from bnn_edge.lit.callbacks import ErrorAwareTraining
from bnn_edge.lit.module import BNNClassifier
from bnn_edge.nn import BinaryLinear, SignActivation, binary_layers
from bnn_edge.tasks import build_network
from tests.helpers.bits import assert_bit_identical, raw_bits, snapshot


def binomial_ok(k: int, n: int, p: float, z: float = 5.0) -> bool:
    """``k`` is within ``z`` standard deviations (plus one count) of Binomial(n, p)'s mean."""
    return abs(k - n * p) <= z * math.sqrt(n * p * (1 - p)) + 1


def popcount(x: torch.Tensor) -> int:
    """Number of 1 bits in an integer tensor (any width)."""
    as_bytes = x.contiguous().reshape(-1).view(torch.uint8).to(torch.int64)
    table = torch.tensor([bin(i).count("1") for i in range(256)])
    return int(table[as_bytes].sum())


@pytest.fixture
def ecg_nets():
    torch.manual_seed(0)
    nets = {b: build_network("ecg", binarize=b, aug=1).eval()
            for b in ("none", "classifier", "full")}
    for net in nets.values():  # realistic latent weights: some exactly 0, some -0.0
        for _, layer in binary_layers(net):
            with torch.no_grad():
                layer.weight.view(-1)[:5] = 0.0
                layer.weight.view(-1)[5:10] = -0.0
    return nets


def test_flip_positions_are_distinct_and_binomial():
    rng = np.random.default_rng(0)
    for n, p in [(10, 0.0), (10, 1.0), (1_000_000, 1e-4), (200_000, 0.05), (1000, 0.5)]:
        pos = flip_positions(n, p, rng)
        assert len(np.unique(pos)) == len(pos)
        assert len(pos) == 0 or 0 <= pos.min() <= pos.max() < n
        assert binomial_ok(len(pos), n, p)
    counts = np.zeros(20)
    for _ in range(20_000):  # every position flips with probability p, independently of n
        pos = flip_positions(20, 0.3, rng)
        assert np.all(np.diff(pos) > 0)
        counts[pos] += 1
    assert all(binomial_ok(int(c), 20_000, 0.3) for c in counts)
    assert np.array_equal(flip_positions(5000, 0.1, fault_rng(3, 0.1, 2)),
                          flip_positions(5000, 0.1, fault_rng(3, 0.1, 2)))
    assert not np.array_equal(flip_positions(5000, 0.1, fault_rng(3, 0.1, 2)),
                              flip_positions(5000, 0.1, fault_rng(3, 0.1, 3)))


@pytest.mark.parametrize("rate", [1e-3, 1e-2, 0.3])
@pytest.mark.parametrize("binarize", ["classifier", "full"])
def test_binary_flip_fraction_matches_the_rate(ecg_nets, binarize, rate):
    net = ecg_nets[binarize]
    layers = binary_layers(net)
    signs = {name: torch.where(m.weight >= 0, 1.0, -1.0) for name, m in layers}
    with WeightFaults(net) as faults:
        count = faults.inject(rate, fault_rng(0, rate, 0))
        flipped = sum(int((m.binary_weight != signs[name]).sum()) for name, m in layers)
        for _, m in layers:
            assert set(m.weight.unique().tolist()) <= {-1.0, 1.0}
    n = sum(m.weight.numel() for _, m in layers)
    assert count.binary_bits == n and count.real_bits == 0
    assert flipped == count.flipped  # what the forward pass sees is what was counted
    assert binomial_ok(flipped, n, rate)


@pytest.mark.parametrize("fmt", ["fp32", "int8"])
@pytest.mark.parametrize("rate", [1e-4, 1e-2, 0.5])
def test_real_bit_flips_are_xors_of_the_stored_words(ecg_nets, fmt, rate):
    net = ecg_nets["none"]
    params = [m.weight for _, m in real_weight_layers(net)]
    n_weights = sum(p.numel() for p in params)
    originals = [p.detach().clone() for p in params]
    with WeightFaults(net, real_format=fmt) as faults:
        count = faults.inject(rate, fault_rng(1, rate, 0))
        flipped = 0
        for p, orig in zip(params, originals, strict=True):
            if fmt == "fp32":
                flipped += popcount(orig.view(torch.int32) ^ p.detach().view(torch.int32))
            else:
                scale = orig.abs().max() / 127
                q_orig = torch.round(orig / scale).clamp(-127, 127).to(torch.int8)
                q_new = torch.round(p.detach() / scale).to(torch.int8)
                flipped += popcount(q_orig ^ q_new)
    bits = n_weights * (32 if fmt == "fp32" else 8)
    assert count.real_bits == bits and count.binary_bits == 0
    assert flipped == count.real_flipped
    assert binomial_ok(flipped, bits, rate)


def test_int8_at_rate_zero_is_the_quantized_model(ecg_nets):
    net = ecg_nets["classifier"]
    params = [m.weight for _, m in real_weight_layers(net)]
    originals = [p.detach().clone() for p in params]
    with WeightFaults(net, real_format="int8") as faults:
        assert faults.inject(0.0, fault_rng(0, 0.0, 0)).flipped == 0
        for p, orig in zip(params, originals, strict=True):
            scale = float(orig.abs().max()) / 127
            assert p.unique().numel() <= 255
            assert float((p.detach() - orig).abs().max()) <= scale / 2 + 1e-7
            assert torch.allclose(p / scale, torch.round(p / scale), atol=1e-4)


@pytest.mark.parametrize(("binarize", "fmt"), [("classifier", "none"), ("full", "none"),
                                               ("none", "fp32"), ("classifier", "fp32")])
def test_rate_zero_changes_nothing(ecg_nets, binarize, fmt):
    net = ecg_nets[binarize]
    x = torch.randn(16, 12, 750, generator=torch.Generator().manual_seed(0))
    before = snapshot(net)
    with torch.no_grad():
        clean = net(x)
        with WeightFaults(net, real_format=fmt) as faults:
            count = faults.inject(0.0, fault_rng(0, 0.0, 0))
            faulty = net(x)
    assert count.flipped == 0
    assert torch.equal(clean, faulty)
    assert_bit_identical(net, before)


def test_rate_one_flips_every_binary_weight_including_zero_latents(ecg_nets):
    net = ecg_nets["full"]
    layers = binary_layers(net)
    assert all(m.weight.view(-1)[:10].eq(0).all() for _, m in layers)  # 0.0 and -0.0 latents
    signs = [m.binary_weight.detach().clone() for _, m in layers]
    with WeightFaults(net) as faults:
        faults.inject(1.0, fault_rng(0, 1.0, 0))
        for (_, m), s in zip(layers, signs, strict=True):
            assert torch.equal(m.binary_weight, -s)
            assert (m.binary_weight.view(-1)[:10] == -1).all()  # sign(0) = +1 flips to -1


CUDA = pytest.param("cuda", marks=[pytest.mark.gpu, pytest.mark.skipif(
    not torch.cuda.is_available(), reason="needs a CUDA device")])


@pytest.mark.parametrize("device", ["cpu", CUDA])
@pytest.mark.parametrize("fmt", ["none", "fp32", "int8"])
def test_restoration_is_bit_exact_after_an_exception(ecg_nets, fmt, device):
    net = ecg_nets["classifier"].to(device)
    before = snapshot(net)
    x = torch.randn(4, 12, 750, device=device)
    with pytest.raises(RuntimeError, match="mid-evaluation"), WeightFaults(net, fmt) as faults:
        faults.inject(0.2, fault_rng(0, 0.2, 0))
        net(x)
        faults.inject(0.05, fault_rng(0, 0.05, 1))
        raise RuntimeError("mid-evaluation")
    assert_bit_identical(net, before)
    assert not faults.borrowed


def test_injections_do_not_accumulate(ecg_nets):
    net = ecg_nets["classifier"]
    layer = binary_layers(net)[0][1]
    with WeightFaults(net) as faults:
        faults.inject(0.3, fault_rng(0, 0.3, 0))
        first = layer.weight.detach().clone()
        faults.inject(0.3, fault_rng(0, 0.3, 1))
        faults.inject(0.3, fault_rng(0, 0.3, 0))
        assert torch.equal(layer.weight, first)


def test_misuse_is_refused(ecg_nets):
    faults = WeightFaults(ecg_nets["full"])
    with pytest.raises(RuntimeError, match="borrowed"):
        faults.inject(0.1, np.random.default_rng(0))
    with pytest.raises(ValueError, match="real_format='fp16'"):
        WeightFaults(ecg_nets["full"], real_format="fp16")
    with faults, pytest.raises(ValueError, match="ber=1.5"):
        faults.inject(1.5, np.random.default_rng(0))
    assert WeightFaults(ecg_nets["none"]).targets == []


# A small learnable task: a binary two-layer network on a linearly separable problem.

def toy_net(binarize: str = "full", aug: int = 1, num_classes: int = 2) -> nn.Module:
    return nn.Sequential(nn.BatchNorm1d(16), BinaryLinear(16, 32, bias=False),
                         nn.BatchNorm1d(32), SignActivation(),
                         BinaryLinear(32, num_classes, bias=False))


def toy_data(n: int, seed: int) -> TensorDataset:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 16, generator=g)
    teacher = torch.randn(16, generator=torch.Generator().manual_seed(100))
    return TensorDataset(x, (x @ teacher > 0).long())


def fit_toy(monkeypatch, train_ber: float, n: int = 1000, epochs: int = 10,
            fault_model="bitflip") -> tuple[nn.Module, ErrorAwareTraining]:
    monkeypatch.setattr("bnn_edge.lit.module.build_network",
                        lambda name, **options: toy_net(**options))
    L.seed_everything(0, verbose=False)
    module = BNNClassifier("toy", binarize="full", lr=0.01)
    callback = ErrorAwareTraining(ber=train_ber, seed=0, fault_model=fault_model)
    trainer = L.Trainer(max_epochs=epochs, accelerator="cpu", logger=False,
                        enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, callbacks=[callback])
    loader = DataLoader(toy_data(n, 1), batch_size=100, shuffle=True,
                        generator=torch.Generator().manual_seed(0))
    trainer.fit(module, loader)
    return module, callback

@pytest.fixture(scope="module")
def toy_models() -> dict[float, tuple[nn.Module, ErrorAwareTraining]]:
    """The toy network trained by Lightning without and with error-aware training."""
    with pytest.MonkeyPatch.context() as mp:
        return {train_ber: fit_toy(mp, train_ber) for train_ber in (0.0, 0.05)}


def test_sweep_rate_half_gives_chance_accuracy(toy_models):
    """At rate 0.5 every binary weight is a fair coin whatever was trained: chance (0.5).

    The last layer has no bias and no batch norm, so the score difference is symmetric
    around 0 for every input and the expected accuracy on balanced classes is 0.5 exactly;
    the mean over 60 draws must lie within 4 standard errors of it.
    """
    net, _ = toy_models[0.0]
    test = toy_data(1000, 2)
    loader = DataLoader(test, batch_size=500)
    assert abs(float(test.tensors[1].float().mean()) - 0.5) < 0.05
    before, modes = snapshot(net), [m.training for m in net.modules()]
    clean, half = ber_sweep(net, loader, [0.0, 0.5], draws=60, seed=0)
    assert clean.draws == 1 and half.draws == 60
    assert clean.mean == accuracy(net, loader) and clean.mean > 0.85
    assert abs(half.mean - 0.5) <= 4 * half.std / math.sqrt(half.draws)
    assert binomial_ok(half.flipped, half.bits, 0.5)
    assert_bit_identical(net, before)
    assert [m.training for m in net.modules()] == modes


def test_sweep_restores_weights_and_modes_when_a_batch_fails():
    net = toy_net().train()
    before = snapshot(net)

    def failing_loader():
        yield toy_data(50, 3).tensors
        raise OSError("disk gone mid-evaluation")

    with pytest.raises(OSError, match="mid-evaluation"):
        ber_sweep(net, failing_loader(), [0.1], draws=3)
    assert_bit_identical(net, before)
    assert net.training and all(m.training for m in net.modules())


def test_sweeps_on_cuda_compute_in_ieee_float32_and_restore_the_flags():
    """TF32 is switched off for a CUDA sweep (settable without a GPU), restored after."""
    from bnn_edge.hardware.faults.sweep import ieee_float32

    flags = torch.backends.cuda.matmul, torch.backends.cudnn
    saved = [f.allow_tf32 for f in flags]
    try:
        for f in flags:
            f.allow_tf32 = True
        with ieee_float32("cpu"):
            assert all(f.allow_tf32 for f in flags)
        with pytest.raises(RuntimeError, match="inside"), ieee_float32("cuda:0"):
            assert not any(f.allow_tf32 for f in flags)
            raise RuntimeError("inside")
        assert all(f.allow_tf32 for f in flags)
    finally:
        for f, value in zip(flags, saved, strict=True):
            f.allow_tf32 = value


def test_error_aware_training_hooks_flip_then_restore():
    """Forward/backward see flipped +-1 weights; the optimizer step sees the latent ones."""
    module = nn.Module()  # the callback only needs the module's binary layers
    module.net = toy_net()
    trainer = type("T", (), {"global_step": 0})()
    callback = ErrorAwareTraining(ber=0.2, seed=0)
    callback.on_fit_start(trainer, module)
    layers = binary_layers(module.net)
    with torch.no_grad():
        for _, m in layers:
            m.weight.uniform_(-0.5, 0.5)
    before = {k: raw_bits(v) for k, v in module.net.named_parameters()}
    signs = [m.binary_weight.detach().clone() for _, m in layers]
    callback.on_train_batch_start(trainer, module, None, 0)
    flipped = sum(int((m.binary_weight != s).sum())
                  for (_, m), s in zip(layers, signs, strict=True))
    n = sum(m.weight.numel() for _, m in layers)
    assert all(set(m.weight.unique().tolist()) <= {-1.0, 1.0} for _, m in layers)
    assert flipped == callback.flipped and binomial_ok(flipped, n, 0.2)
    x, y = toy_data(64, 4).tensors
    F.cross_entropy(module.net(x), y).backward()
    callback.on_before_optimizer_step(trainer, module, None)
    assert {k: raw_bits(v) for k, v in module.net.named_parameters()}.keys() == before.keys()
    for k, v in module.net.named_parameters():
        assert torch.equal(raw_bits(v), before[k]), k
    assert all(m.weight.grad is not None and m.weight.grad.abs().sum() > 0 for _, m in layers)
    callback.on_train_batch_end(trainer, module, None, None, 0)  # a second restore is a no-op
    for k, v in module.net.named_parameters():
        assert torch.equal(raw_bits(v), before[k]), k


def test_error_aware_training_refuses_real_models():
    from bnn_edge.errors import ConfigError

    with pytest.raises(ConfigError, match=r"bit_errors.train_ber=0.01 is not allowed"):
        ErrorAwareTraining(ber=0.01, binarize="none")
    with pytest.raises(ConfigError, match=r"bit_errors.train_ber=0.9"):
        ErrorAwareTraining(ber=0.9)


def test_error_aware_training_is_not_worse_at_1e_2(toy_models):
    """Training with 5% flips gives at least the plain accuracy at rate 1e-2 (30 draws).

    Measured (torch 2.14, CPU): at 1e-2 plain 90.97%, error-aware 91.42% over these 30
    draws (over 200 other draws 90.98% and 91.49%, standard errors 0.07 and 0.06 points);
    at rate 0 91.9% and 91.8%; at 1e-1 84.0% and 86.2%. The draws are the same for both
    models (same seed, same number of bits), so the comparison is paired.
    """
    loader = DataLoader(toy_data(1000, 2), batch_size=500)
    (plain,) = ber_sweep(toy_models[0.0][0], loader, [1e-2], draws=30, seed=1)
    (aware,) = ber_sweep(toy_models[0.05][0], loader, [1e-2], draws=30, seed=1)
    assert aware.mean >= plain.mean
    callback = toy_models[0.05][1]
    assert callback.bits == 10 * 10 * (16 * 32 + 32 * 2)  # every step of 10 epochs x 10 batches
    assert binomial_ok(callback.flipped, callback.bits, 0.05)
    assert toy_models[0.0][1].flipped == 0


def _sharded_sweep(rank: int, world: int, init_file: str, out: str) -> None:
    """One DDP-like process: sweep its shard of the data, pooling counts with all_reduce."""
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank,
                            world_size=world)
    try:
        net, data = _pooling_case()
        shard = TensorDataset(*(t[rank::world] for t in data.tensors))

        def reduce(counts):
            dist.all_reduce(counts)
            return counts

        points = ber_sweep(net, DataLoader(shard, batch_size=16), [0.0, 0.2], draws=4,
                           seed=3, reduce=reduce)
        torch.save([p.accuracies for p in points], f"{out}.{rank}")
    finally:
        dist.destroy_process_group()


def _pooling_case():
    torch.manual_seed(5)
    net = nn.Sequential(BinaryLinear(16, 16), nn.BatchNorm1d(16), SignActivation(),
                        BinaryLinear(16, 2)).eval()
    return net, toy_data(101, 8)  # an odd count: the shards differ in size


def test_sweep_pools_counts_over_processes_exactly(tmp_path):
    """Two gloo processes on uneven shards report the accuracy of the whole set, draw by draw.

    The callback passes the trainer's sum-reduce under DDP; averaging the per-shard
    accuracies instead would be off for shards of 51 and 50 samples.
    """
    out = str(tmp_path / "acc")
    torch.multiprocessing.spawn(_sharded_sweep, args=(2, str(tmp_path / "init"), out),
                                nprocs=2)
    net, data = _pooling_case()
    whole = ber_sweep(net, DataLoader(data, batch_size=16), [0.0, 0.2], draws=4, seed=3)
    expected = [p.accuracies for p in whole]
    assert torch.load(f"{out}.0", weights_only=True) == expected
    assert torch.load(f"{out}.1", weights_only=True) == expected
    assert len(set(expected[1])) > 1  # the draws differ, so the comparison is per draw


@pytest.mark.parametrize(("spec", "level", "rate"), [
    ("bitflip", 0.05, 0.05),
    ({"name": "stuck", "fraction": [0, 0.1]}, 0.05, 0.025),  # 2T2R: f/4 per device, 2 devices
    ({"name": "retention", "cell": "1T1R", "hours": 1}, 87600, 6.6e-3),
    ({"name": "sec", "data_bits": 3}, 0.05, 0.0156),  # sec_ber(0.05, 3)
    ({"name": "asymmetric", "ratio": 3.0}, 0.05, None),
    ({"name": "array", "rows": 1.0}, 2.0, None),
])
def test_error_aware_training_runs_with_each_fault_model(monkeypatch, spec, level, rate):
    """Training injects the configured model with its level (the swept parameter, a list in
    the config, is replaced) at ``train_ber``; latent weights come back after each step."""
    module, callback = fit_toy(monkeypatch, level, n=200, epochs=2, fault_model=spec)
    assert callback.bits == 4 * (16 * 32 + 32 * 2)  # 4 steps over both binary layers
    assert callback.flipped > 0
    if rate is not None:
        assert binomial_ok(callback.flipped, callback.bits, rate)
    assert not callback.faults.borrowed
    weights = [m.weight for _, m in binary_layers(module)]
    assert all(torch.isfinite(w).all() and w.abs().max() <= 1 for w in weights)
    assert any(len(w.unique()) > 2 for w in weights)  # latent, not the injected +-1


def test_the_config_wires_the_fault_model_into_error_aware_training(tmp_path):
    """``fault_model=stuck bit_errors.train_ber=0.02``: the training callback draws stuck
    devices (fraction 0.02) with the device mapping of bit_errors; a bad value stops it."""
    from hydra.utils import instantiate

    from bnn_edge.errors import ConfigError
    from bnn_edge.hardware.faults.models import Retention, Stuck
    from tests.helpers.runs import compose_app

    cfg = compose_app("train", "fault_model=stuck", "bit_errors.train_ber=0.02",
                      f"paths.output_dir={tmp_path}")
    assert instantiate(cfg.callbacks.error_aware_training).fault_model == Stuck(fraction=0.02)
    cfg = compose_app("train", "fault_model=retention", "bit_errors.train_ber=24",
                      "bit_errors.device.sigma=0.2", f"paths.output_dir={tmp_path}")
    model = instantiate(cfg.callbacks.error_aware_training).fault_model
    assert isinstance(model, Retention) and model.hours == 24 and model.device.sigma == 0.2
    cfg = compose_app("train", "fault_model=stuck", "bit_errors.fault_model.lrs_share=2",
                      f"paths.output_dir={tmp_path}")
    with pytest.raises(Exception, match="bit_errors.fault_model.lrs_share=2 is not allowed") \
            as info:
        instantiate(cfg.callbacks.error_aware_training)
    assert isinstance(info.value, ConfigError) or isinstance(info.value.__cause__, ConfigError)
