"""The one Lightning module: any registered network, cross-entropy, Adam, weight clipping."""

from __future__ import annotations

import lightning as L
import torch
from torch import nn
from torch.nn import functional as F
from torchmetrics import MaxMetric, MeanMetric
from torchmetrics.classification import MulticlassAccuracy

from bnn_edge.binarize import clip_binary_weights_
from bnn_edge.models import build_network


class BNNClassifier(L.LightningModule):
    """Trains a network of the registry (``network``, ``binarize``, ``aug``) as a classifier.

    Logs ``train/loss``, ``train/acc``, ``val/loss``, ``val/acc``, ``val/acc_best``,
    ``test/loss`` and ``test/acc``. After every optimizer step the latent weights of the
    binary layers are clipped to [-1, 1]. Hyperparameters are plain values, so a
    checkpoint rebuilds its network with ``load_from_checkpoint(..., weights_only=True)``.
    """

    def __init__(self, network: str = "ecg", binarize: str = "none", aug: int = 1,
                 num_classes: int = 2, lr: float = 1e-3, weight_decay: float = 0.0):
        super().__init__()
        self.save_hyperparameters()
        self.net: nn.Module = build_network(network, binarize=binarize, aug=aug,
                                            num_classes=num_classes)
        self.train_acc = MulticlassAccuracy(num_classes, average="micro")
        self.val_acc = MulticlassAccuracy(num_classes, average="micro")
        self.test_acc = MulticlassAccuracy(num_classes, average="micro")
        self.train_loss, self.val_loss, self.test_loss = MeanMetric(), MeanMetric(), MeanMetric()
        self.val_acc_best = MaxMetric()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def _step(self, batch, loss_metric: MeanMetric, acc_metric: MulticlassAccuracy):
        x, y = batch
        logits = self(x)
        loss = F.cross_entropy(logits, y)
        loss_metric.update(loss.detach(), weight=len(y))
        acc_metric.update(logits.detach(), y)
        return loss

    def on_train_start(self) -> None:
        self.val_acc_best.reset()  # sanity-check batches must not count as a best

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        loss = self._step(batch, self.train_loss, self.train_acc)
        self.log("train/loss", self.train_loss, on_step=False, on_epoch=True, prog_bar=True)
        self.log("train/acc", self.train_acc, on_step=False, on_epoch=True, prog_bar=True)
        return loss

    def optimizer_step(self, *args, **kwargs) -> None:
        super().optimizer_step(*args, **kwargs)
        clip_binary_weights_(self.net)

    def validation_step(self, batch, batch_idx: int) -> None:
        self._step(batch, self.val_loss, self.val_acc)
        self.log("val/loss", self.val_loss, on_step=False, on_epoch=True, prog_bar=True)
        self.log("val/acc", self.val_acc, on_step=False, on_epoch=True, prog_bar=True)

    def on_validation_epoch_end(self) -> None:
        self.val_acc_best.update(self.val_acc.compute())
        self.log("val/acc_best", self.val_acc_best.compute(), prog_bar=True)

    def test_step(self, batch, batch_idx: int) -> None:
        self._step(batch, self.test_loss, self.test_acc)
        self.log("test/loss", self.test_loss, on_step=False, on_epoch=True)
        self.log("test/acc", self.test_acc, on_step=False, on_epoch=True)

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=self.hparams.lr,
                                weight_decay=self.hparams.weight_decay)
