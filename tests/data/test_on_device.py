"""data.on_device: splits kept as tensors on the trainer's device, batches sliced there."""

from __future__ import annotations

import json

import lightning as L
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from bnn_edge.data.base import ArrayDataModule, Arrays, DeviceBatches, EpochOrder
from bnn_edge.errors import ConfigError
from bnn_edge.experiment.rundir import RunDir
from tests.conftest import run_cli, stderr_lines
from tests.helpers.runs import train_tiny_run


class Numbered(ArrayDataModule):
    """Trials whose first value is their index, so every batch says which trials it holds."""

    trial_shape = (3, 5)

    def __init__(self, n: int = 101, **options):
        super().__init__(**options)
        self.n = n

    def load(self) -> Arrays:
        x = np.random.default_rng(0).normal(size=(self.n, *self.trial_shape))
        x[:, 0, 0] = np.arange(self.n)
        return Arrays(x.astype(np.float32), np.arange(self.n) % 2, {"source": "numbered"})

    def describe_source(self) -> str:
        return f"{self.n} numbered trials"


def ids(loader) -> list[list[int]]:
    """The trial indices of every batch of one pass over ``loader``."""
    return [x[:, 0, 0].round().long().tolist() for x, _ in loader]


def data(**options) -> Numbered:
    dm = Numbered(**{"batch_size": 8, "seed": 3, **options})
    dm.setup("fit")
    return dm


def test_device_batches_serve_what_the_dataloader_serves():
    plain, device = data(), data(on_device=True)
    for split in ("train", "val", "test"):
        a = getattr(plain, f"{split}_dataloader")()
        b = getattr(device, f"{split}_dataloader")()
        assert isinstance(a, DataLoader) and isinstance(b, DeviceBatches)
        assert len(a) == len(b) == -(-len(plain.datasets[split]) // 8)
        assert len(b.dataset) == len(a.dataset)
        sizes = [len(x) for x, _ in b]
        assert sizes == [len(x) for x, _ in a] and sum(sizes) == len(a.dataset)
    for split in ("val", "test"):  # unshuffled: the same batches, bit for bit
        for (xa, ya), (xb, yb) in zip(getattr(plain, f"{split}_dataloader")(),
                                      getattr(device, f"{split}_dataloader")(), strict=True):
            assert torch.equal(xa, xb) and torch.equal(ya, yb)
    # training: every trial once per epoch, a new order each epoch
    train = device.train_dataloader()
    first, second = ids(train), ids(train)
    expected = sorted(plain.split.train.tolist())
    assert sorted(sum(first, [])) == expected and sorted(sum(second, [])) == expected
    assert first != second
    # labels travel with their trials
    x, y = next(iter(device.train_dataloader()))
    assert torch.equal(y, x[:, 0, 0].round().long() % 2)
    assert device.summary()["on_device"] is True and plain.summary()["on_device"] is False


def test_the_order_is_seeded_and_set_by_epoch():
    one, two = data(on_device=True).train_dataloader(), data(on_device=True).train_dataloader()
    assert [ids(one) for _ in range(3)] == [ids(two) for _ in range(3)]
    other = data(on_device=True, seed=4).train_dataloader()
    fresh = data(on_device=True).train_dataloader()
    assert ids(other) != ids(fresh)
    # Lightning calls set_epoch on the loader's sampler: epoch 2 is epoch 2, however reached
    replay = data(on_device=True).train_dataloader()
    passes = [ids(replay) for _ in range(3)]
    jump = data(on_device=True).train_dataloader()
    jump.sampler.set_epoch(2)
    assert ids(jump) == passes[2] and passes[0] != passes[2]


def test_noise_is_added_to_training_batches_only_and_repeats_with_the_seed():
    clean, noisy = data(n=400, on_device=True), data(n=400, on_device=True, noise_std=0.5)
    noisy_train, clean_train = noisy.train_dataloader(), clean.train_dataloader()

    def noise() -> torch.Tensor:
        """One epoch's noise: the same seed gives the same order, so it is the difference."""
        return torch.cat([(x - xc).reshape(-1) for (x, _), (xc, _) in
                          zip(noisy_train, clean_train, strict=True)])

    diff, second = noise(), noise()
    assert len(diff) == len(clean.split.train) * 15
    assert diff.std().item() == pytest.approx(0.5, rel=0.05)
    assert abs(diff.mean().item()) < 0.02
    batches = list(data(n=400, on_device=True, noise_std=0.5).train_dataloader())
    assert not torch.equal(diff, second)  # fresh noise every epoch
    again = list(data(n=400, on_device=True, noise_std=0.5).train_dataloader())
    assert all(torch.equal(a[0], b[0]) for a, b in zip(batches, again, strict=True))
    for split in ("val", "test"):
        for (xa, _), (xb, _) in zip(getattr(clean, f"{split}_dataloader")(),
                                    getattr(noisy, f"{split}_dataloader")(), strict=True):
            assert torch.equal(xa, xb)


def test_ranks_share_the_training_split_like_a_distributed_sampler():
    orders = [EpochOrder(11, shuffle=True, seed=5, num_replicas=3, rank=r) for r in range(3)]
    shares = [o.indices().tolist() for o in orders]
    assert [len(s) for s in shares] == [4, 4, 4] == [len(o) for o in orders]
    assert set(sum(shares, [])) == set(range(11))
    whole = EpochOrder(11, shuffle=True, seed=5).indices().tolist()
    padded = whole + whole[:1]
    assert shares == [padded[r::3] for r in range(3)]


def test_a_trainer_gets_batches_on_its_device_and_every_step_runs():
    """A Lightning fit over on-device batches: the steps of a DataLoader epoch, set_epoch used."""

    class Probe(L.LightningModule):
        def __init__(self):
            super().__init__()
            self.layer = torch.nn.Linear(15, 2)
            self.seen: list[tuple[int, list[int]]] = []

        def training_step(self, batch, batch_idx):
            x, y = batch
            self.seen.append((self.current_epoch, x[:, 0, 0].round().long().tolist()))
            return torch.nn.functional.cross_entropy(self.layer(x.flatten(1)), y)

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1)

    dm = Numbered(batch_size=8, seed=3, on_device=True)
    probe = Probe()
    L.Trainer(accelerator="cpu", max_epochs=2, logger=False, enable_checkpointing=False,
              enable_progress_bar=False, enable_model_summary=False,
              limit_val_batches=0).fit(probe, datamodule=dm)
    steps = -(-len(dm.split.train) // 8)
    assert [e for e, _ in probe.seen] == [0] * steps + [1] * steps
    reference = data(on_device=True).train_dataloader()
    expected = [ids(reference) for _ in range(2)]
    assert [b for e, b in probe.seen if e == 0] == expected[0]
    assert [b for e, b in probe.seen if e == 1] == expected[1]


def test_a_tiny_run_trains_on_device_and_readers_load_from_host(tmp_path):
    results = train_tiny_run(tmp_path / "run", "data.on_device=true", "binarize=full")
    assert results["epochs"] == 1 and 0 <= results["test_acc"] <= 1
    data_json = json.loads((tmp_path / "run" / "data.json").read_text())
    assert data_json["on_device"] is True
    # evaluate/export rebuild the data module from the run folder with host loaders
    reader = RunDir(tmp_path / "run").datamodule()
    assert reader.on_device is False


@pytest.mark.parametrize(("args", "message"), [
    (["data.on_device=yes"], "error: data.on_device='yes' is not allowed: expected true or false"),
    (["data.on_device=true", "data.num_workers=2"],
     "error: data.num_workers=2 is not allowed: expected 0 with data.on_device=true"),
    (["model=eeg", "data.on_device=1"], "error: data.on_device=1 is not allowed"),
])
def test_bad_on_device_options_are_one_line(args, message, tmp_path):
    empty_cache = tmp_path / "cache"
    empty_cache.mkdir()
    proc = run_cli("bnn_edge.train", *args, f"hydra.run.dir={tmp_path / 'run'}",
                   env={"BNN_EDGE_CACHE": str(empty_cache)})
    assert proc.returncode == 2
    err = stderr_lines(proc)
    assert len(err) == 1 and err[0].startswith(message), proc.stderr
    assert list(empty_cache.iterdir()) == [] and not (tmp_path / "run").exists()


def test_bad_on_device_values_are_config_errors():
    for options, option in [({"on_device": "true"}, "data.on_device"),
                            ({"on_device": True, "num_workers": 1}, "data.num_workers")]:
        with pytest.raises(ConfigError, match=rf"^{option}="):
            Numbered(**options)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_on_cuda_the_splits_move_once_and_batches_stay_there():
    dm = data(on_device=True, noise_std=0.1)

    class OnCuda:  # what Lightning attaches: a trainer whose strategy runs on cuda:0
        world_size, global_rank = 1, 0
        strategy = type("S", (), {"root_device": torch.device("cuda", 0)})()

    dm.trainer = OnCuda()
    loaders = [dm.train_dataloader(), dm.val_dataloader(), dm.test_dataloader()]
    stored = {k: v[0].data_ptr() for k, v in dm._device_splits.items()}
    assert set(stored) == {(s, "cuda:0") for s in ("train", "val", "test")}
    for loader in loaders:
        for x, y in loader:
            assert x.is_cuda and y.is_cuda
    dm.train_dataloader()  # asked again: the tensors already there are reused
    assert {k: v[0].data_ptr() for k, v in dm._device_splits.items()} == stored
    # the order is drawn on the CPU: the same trials in the same batches on both devices
    assert ids(data(on_device=True).train_dataloader()) == ids(
        DeviceBatches(*dm._device_splits[("train", "cuda:0")], 8, shuffle=True, seed=3))


def test_a_data_module_must_say_how_it_loads_and_what_it_is():
    """ArrayDataModule's abstract methods are enforced: a task's data module that forgets
    describe_source fails when built, not when data.json is written after loading."""
    class Silent(ArrayDataModule):
        def load(self) -> Arrays:
            return Numbered(n=4).load()

    with pytest.raises(TypeError, match="describe_source"):
        Silent()


@pytest.mark.parametrize("on_device", [False, True])
def test_a_last_training_batch_of_one_trial_is_left_out(on_device):
    """64 training trials in batches of 9: seven full batches, the single 64th trial (which
    would stop every batch norm) left out, another one each shuffled epoch; validation and
    test keep all their trials."""
    dm = data(batch_size=9, on_device=on_device)
    assert len(dm.split.train) == 64
    train = dm.train_dataloader()
    epochs = [ids(train) for _ in range(3)]
    assert len(train) == 7 and all([len(b) for b in e] == [9] * 7 for e in epochs)
    everything = set(dm.split.train.tolist())
    left_out = [everything - set(sum(e, [])) for e in epochs]
    assert all(len(s) == 1 for s in left_out) and len({min(s) for s in left_out}) > 1
    norm = torch.nn.BatchNorm1d(15).train()
    for x, _ in dm.train_dataloader():
        norm(x.flatten(1))  # a batch of one would raise here
    for split, n in (("val", 17), ("test", 20)):
        assert sum(len(b) for b in ids(getattr(dm, f"{split}_dataloader")())) == n
