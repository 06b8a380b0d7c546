"""The EEG binary-recipe study of docs/eeg.md: a plain loop over the entry point's pieces.

Same network (``build_network``, which has no recipe of its own), data module, Adam, weight
clipping and best-validation checkpoint as ``python -m bnn_edge.train model=eeg``; the
thresholds (batch-norm shifts before a sign) are set here, so every row of the table runs:

    python experiments/eeg_recipe_study.py --thr zero                        # A
    python experiments/eeg_recipe_study.py --thr spread:1 --bn_lr 1e-2       # B (the recipe)
    python experiments/eeg_recipe_study.py --thr first:1                     # E

``--bn_lr`` is given to every batch norm (the module gives it to those before a sign).
Prints one line per epoch and a final ``RESULT {json}``.
"""

import argparse
import json
import time

import torch
from torch import nn
from torch.nn import functional as F

from bnn_edge.data.eeg import EEGDataModule
from bnn_edge.nn import BinaryLayer, clip_binary_weights_, threshold_norms
from bnn_edge.tasks import build_network


def parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--binarize", default="full")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--bn_lr", type=float, default=None, help="rate of the batch norms")
    p.add_argument("--thr", default="zero", help="zero | spread:<s> | first:<s>")
    p.add_argument("--noise", type=float, default=0.1, help="data.noise_std")
    p.add_argument("--subjects", type=int, default=None)
    p.add_argument("--tag", default="")
    return p.parse_args()


def accuracy(net: nn.Module, loader) -> float:
    net.eval()
    right = total = 0
    with torch.no_grad():
        for x, y in loader:
            right += int((net(x).argmax(1) == y).sum())
            total += len(y)
    net.train()
    return right / total


def main() -> None:
    a = parse()
    torch.manual_seed(a.seed)
    dm = EEGDataModule(noise_std=a.noise, seed=a.seed, subjects=a.subjects)
    dm.prepare_data()
    dm.setup("fit")
    net = build_network("eeg", binarize=a.binarize, aug=1)
    pre_sign = threshold_norms(net)
    kind, _, value = a.thr.partition(":")
    gen = torch.Generator().manual_seed(a.seed)
    with torch.no_grad():
        for j, bn in enumerate(pre_sign):
            if kind == "spread" or (kind == "first" and j == 0):
                bn.bias.copy_((torch.rand(bn.bias.shape, generator=gen) * 2 - 1) * float(value))
    norms = [p for m in net.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)
             for p in m.parameters()]
    latent = [m.weight for m in net.modules() if isinstance(m, BinaryLayer)]
    special = {id(p) for p in norms + latent}
    other = [p for p in net.parameters() if id(p) not in special]
    opt = torch.optim.Adam([{"params": latent}, {"params": other},
                            {"params": norms, "lr": a.bn_lr or a.lr}], lr=a.lr)
    train, val = dm.train_dataloader(), dm.val_dataloader()
    dm.setup("test")
    test = dm.test_dataloader()
    best_acc, best_state, best_epoch = -1.0, None, -1
    t0, hist = time.time(), []
    for epoch in range(a.epochs):
        right = total = 0
        for x, y in train:
            out = net(x)
            loss = F.cross_entropy(out, y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            clip_binary_weights_(net)
            right += int((out.argmax(1) == y).sum())
            total += len(y)
        val_acc = accuracy(net, val)
        if val_acc > best_acc:
            best_acc, best_epoch = val_acc, epoch
            best_state = {k: v.clone() for k, v in net.state_dict().items()}
        shifts = [round(float(bn.bias.detach().abs().mean()), 3) for bn in pre_sign]
        hist.append((epoch, round(right / total, 3), round(val_acc, 3)))
        print(f"ep {epoch} train {right / total:.3f} val {val_acc:.3f} |bias| {shifts} "
              f"{time.time() - t0:.0f}s", flush=True)
    net.load_state_dict(best_state)
    result = dict(vars(a), best_val=best_acc, best_epoch=best_epoch,
                  test=accuracy(net, test), time=time.time() - t0, hist=hist)
    print("RESULT", json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
