"""metrics.csv in a run folder: a resumed run's rows replace the earlier run's rows of the
same epoch and stage, so the finished file holds each once."""

from __future__ import annotations

from bnn_edge.lit.loggers import ResumableCSVLogger
from tests.helpers.runs import read_metrics


def test_a_resumed_runs_rows_replace_the_earlier_runs_rows_of_that_epoch(tmp_path):
    first = ResumableCSVLogger(tmp_path, name="", version="")
    for epoch, step, acc in ((0, 5, 0.5), (1, 11, 0.6)):
        first.log_metrics({"val/acc": acc, "epoch": epoch}, step)
        first.log_metrics({"train/loss": 1.0 / (epoch + 1), "epoch": epoch}, step)
    first.log_metrics({"val/acc": 0.7, "epoch": 2}, 17)  # killed before epoch 2's train row
    first.save()
    resumed = ResumableCSVLogger(tmp_path, name="", version="", append=True)  # from epoch 1
    resumed.log_metrics({"val/acc": 0.65, "epoch": 2}, 17)
    resumed.log_metrics({"train/loss": 0.3, "epoch": 2, "train/acc": 0.9}, 17)  # a new column
    resumed.log_metrics({"test/acc": 0.6, "epoch": 3}, 18)
    resumed.save()
    rows = [(r["epoch"], r["val/acc"], r["train/loss"], r["train/acc"], r["test/acc"])
            for r in read_metrics(tmp_path)]
    assert rows == [("0", "0.5", "", "", ""), ("0", "", "1.0", "", ""),
                    ("1", "0.6", "", "", ""), ("1", "", "0.5", "", ""),
                    ("2", "0.65", "", "", ""), ("2", "", "0.3", "0.9", ""),
                    ("3", "", "", "", "0.6")]
