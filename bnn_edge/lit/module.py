"""The one Lightning module: any registered network, cross-entropy, Adam or SGD, weight clipping."""

from __future__ import annotations

import inspect
import math

import lightning as L
import torch
from torch import nn
from torch.nn import functional as F
from torchmetrics import MaxMetric, MeanMetric
from torchmetrics.classification import MulticlassAccuracy

from bnn_edge.errors import ConfigError
from bnn_edge.nn import clip_binary_weights_, spread_thresholds_, threshold_norms
from bnn_edge.tasks import build_network, tasks
from bnn_edge.validation import (
    require_bool,
    require_choice,
    require_number,
)

OPTIMIZERS = ("adam", "sgd")
LR_SCHEDULES = ("none", "cosine")
#: the binary-network recipe (docs/eeg.md, the study): with ``binarize=full`` the thresholds
#: (batch-norm shifts before each sign) start spread over +-1 s.d. and learn 10x faster
FULL_THRESHOLD_INIT = 1.0
FULL_THRESHOLD_LR_FACTOR = 10.0


def module_options(model_cfg) -> dict:
    """The optional model.* training options (optimizer, schedule, network extras), checked.

    Configs without them (ECG, EEG) get Adam without a schedule. The network's extra options
    (``hidden`` for MobileNet) are those its registry entry declares. ConfigError names the
    option. A missing option takes :class:`BNNClassifier`'s default.
    """
    defaults = inspect.signature(BNNClassifier).parameters

    def get(key):
        return model_cfg.get(key, defaults[key].default)

    opts = {
        "optimizer": require_choice("model.optimizer", get("optimizer"), OPTIMIZERS),
        "momentum": require_number("model.momentum", get("momentum"), 0, 1, high_open=True),
        "nesterov": require_bool("model.nesterov", get("nesterov")),
        "lr_schedule": require_choice("model.lr_schedule", get("lr_schedule"), LR_SCHEDULES),
        "warmup_epochs": require_number("model.warmup_epochs", get("warmup_epochs"), 0),
        "threshold_init": require_number(
            "model.threshold_init", get("threshold_init"), 0, none_ok=True,
            allowed="a number >= 0, or null (1.0 with binarize=full, else 0)"),
        "threshold_lr": require_number(
            "model.threshold_lr", get("threshold_lr"), 0, low_open=True, none_ok=True,
            allowed="a number > 0, or null (10 x model.lr with binarize=full, else model.lr)"),
    }
    entry = tasks().get(model_cfg.get("name"))
    names = entry.options if entry is not None else ()
    net = {k: model_cfg[k] for k in names if model_cfg.get(k) is not None}
    if net:  # the builder checks its own options: build it where no weight is allocated
        with torch.device("meta"):
            entry.build()(**net)
    return {**opts, "net_options": net or None}


def recipe(binarize: str, lr: float, threshold_init: float | None,
           threshold_lr: float | None) -> tuple[float, float]:
    """(threshold spread, threshold learning rate) with nulls resolved for ``binarize``."""
    full = binarize == "full"
    init = threshold_init if threshold_init is not None else (FULL_THRESHOLD_INIT if full
                                                              else 0.0)
    rate = threshold_lr if threshold_lr is not None else (FULL_THRESHOLD_LR_FACTOR * lr if full
                                                          else lr)
    return float(init), float(rate)


class BNNClassifier(L.LightningModule):
    """Trains a network of the registry (``network``, ``binarize``, ``aug``) as a classifier.

    Logs ``train/loss``, ``train/acc``, ``val/loss``, ``val/acc``, ``val/acc_best``,
    ``test/loss`` and ``test/acc``, and with more than five classes ``val/acc_top5`` and
    ``test/acc_top5``. ``optimizer`` is Adam (default) or SGD with ``momentum``;
    ``lr_schedule=cosine`` decays the rate per step to 0 after a linear warm-up of
    ``warmup_epochs``. The batch norms that feed a sign (the binary neurons' thresholds)
    start with their shifts drawn from U(-threshold_init, threshold_init) and learn at
    ``threshold_lr``; null picks the recipe of :func:`recipe`. After every optimizer step
    the latent weights of the binary layers are clipped to [-1, 1]. Hyperparameters are
    plain values, so a checkpoint rebuilds its network with
    ``load_from_checkpoint(..., weights_only=True)``.
    """

    def __init__(self, network: str = "ecg", binarize: str = "none", aug: int = 1,
                 num_classes: int = 2, lr: float = 1e-3, weight_decay: float = 0.0,
                 optimizer: str = "adam", momentum: float = 0.9, nesterov: bool = False,
                 lr_schedule: str = "none", warmup_epochs: float = 0,
                 net_options: dict | None = None, threshold_init: float | None = None,
                 threshold_lr: float | None = None):
        super().__init__()
        self.save_hyperparameters()
        self.net: nn.Module = build_network(network, binarize=binarize, aug=aug,
                                            num_classes=num_classes, **(net_options or {}))
        self.threshold_spread, self.threshold_rate = recipe(binarize, lr, threshold_init,
                                                            threshold_lr)
        spread_thresholds_(threshold_norms(self.net), self.threshold_spread)
        self.train_acc = MulticlassAccuracy(num_classes, average="micro")
        self.val_acc = MulticlassAccuracy(num_classes, average="micro")
        self.test_acc = MulticlassAccuracy(num_classes, average="micro")
        self.train_loss, self.val_loss, self.test_loss = MeanMetric(), MeanMetric(), MeanMetric()
        self.val_acc_best = MaxMetric()
        self._resumed_best: float | None = None  # from the checkpoint a run resumes from
        self.top5 = num_classes > 5
        if self.top5:
            self.val_acc_top5 = MulticlassAccuracy(num_classes, top_k=5, average="micro")
            self.test_acc_top5 = MulticlassAccuracy(num_classes, top_k=5, average="micro")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def _step(self, batch, loss_metric: MeanMetric, acc_metric: MulticlassAccuracy,
              top5_metric: MulticlassAccuracy | None = None):
        x, y = batch
        logits = self(x)
        loss = F.cross_entropy(logits, y)
        loss_metric.update(loss.detach(), weight=len(y))
        acc_metric.update(logits.detach(), y)
        if top5_metric is not None:
            top5_metric.update(logits.detach(), y)
        return loss

    def on_train_start(self) -> None:
        self.val_acc_best.reset()  # sanity-check batches must not count as a best
        if self._resumed_best is not None:  # a resumed run's best so far
            self.val_acc_best.update(self._resumed_best)

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        """The best validation accuracy so far goes into the checkpoint (torchmetrics keeps
        a metric's state out of the state_dict), so a resumed run's val/acc_best goes on."""
        if self.val_acc_best.update_called:
            checkpoint["val_acc_best"] = float(self.val_acc_best.compute())

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        best = checkpoint.get("val_acc_best")
        self._resumed_best = float(best) if isinstance(best, float | int) else None

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        loss = self._step(batch, self.train_loss, self.train_acc)
        self.log("train/loss", self.train_loss, on_step=False, on_epoch=True, prog_bar=True)
        self.log("train/acc", self.train_acc, on_step=False, on_epoch=True, prog_bar=True)
        return loss

    def optimizer_step(self, *args, **kwargs) -> None:
        super().optimizer_step(*args, **kwargs)
        clip_binary_weights_(self.net)

    def validation_step(self, batch, batch_idx: int) -> None:
        self._step(batch, self.val_loss, self.val_acc,
                   self.val_acc_top5 if self.top5 else None)
        self.log("val/loss", self.val_loss, on_step=False, on_epoch=True, prog_bar=True)
        self.log("val/acc", self.val_acc, on_step=False, on_epoch=True, prog_bar=True)
        if self.top5:
            self.log("val/acc_top5", self.val_acc_top5, on_step=False, on_epoch=True)

    def on_validation_epoch_end(self) -> None:
        self.val_acc_best.update(self.val_acc.compute())
        self.log("val/acc_best", self.val_acc_best.compute(), prog_bar=True)

    def test_step(self, batch, batch_idx: int) -> None:
        self._step(batch, self.test_loss, self.test_acc,
                   self.test_acc_top5 if self.top5 else None)
        self.log("test/loss", self.test_loss, on_step=False, on_epoch=True)
        self.log("test/acc", self.test_acc, on_step=False, on_epoch=True)
        if self.top5:
            self.log("test/acc_top5", self.test_acc_top5, on_step=False, on_epoch=True)

    def configure_optimizers(self):
        hp = self.hparams
        thresholds = [p for bn in threshold_norms(self.net) for p in bn.parameters()]
        ids = {id(p) for p in thresholds}
        groups = [{"params": [p for p in self.parameters() if id(p) not in ids]}]
        if thresholds:
            groups.append({"params": thresholds, "lr": self.threshold_rate})
        if hp.optimizer == "sgd":
            opt = torch.optim.SGD(groups, lr=hp.lr, momentum=hp.momentum,
                                  nesterov=hp.nesterov, weight_decay=hp.weight_decay)
        else:
            opt = torch.optim.Adam(groups, lr=hp.lr, weight_decay=hp.weight_decay)
        if hp.lr_schedule == "none":
            return opt
        total = self.trainer.estimated_stepping_batches
        if not math.isfinite(total):
            raise ConfigError("model.lr_schedule", hp.lr_schedule,
                              "none when the number of steps is unbounded (trainer.max_epochs=-1)")
        warmup = round(hp.warmup_epochs * total / max(self.trainer.max_epochs, 1))
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: cosine_factor(step, total,
                                                                                  warmup))
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}


def cosine_factor(step: int, total: int, warmup: int) -> float:
    """LR factor at ``step``: linear warm-up to 1, then cosine decay to 0 at ``total``."""
    if step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return 0.5 * (1.0 + math.cos(math.pi * progress))
