"""What a W&B run shows: the whole configuration of a training run, and the project's figures
as W&B tables with line and bar plots, so a workspace shows them as panels without building
them (bit-error curves, accuracy per category, Table III, Fig. 7, the claims).

Every plot is a ``wandb.plot`` chart: W&B draws it as a panel of the run and stores its data
as the table ``<key>_table``.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict

from bnn_edge.hardware.faults.axes import axis_title

#: the columns of a bit-error curve table; log10_rate is the plot's x (rate 0 a decade left
#: of the smallest nonzero rate, as on ber_curve.png); a sweep of another fault-model
#: parameter names its columns after it (``fraction``, ``log10_fraction``) and has no
#: ``cell`` or ``cycles`` (only error rates come from a cell's cycles)
BER_COLUMNS = ("variant", "rate", "log10_rate", "accuracy", "spread", "cell", "cycles", "draws")
FIG7_COLUMNS = ("series", "source", "aug", "accuracy", "spread", "n")
CLAIM_COLUMNS = ("number", "kind", "text", "test", "n", "interval", "measured", "verdict")
_BY = re.compile(r"(val|test)_acc_by_(class|category)")


def run_config(config: dict, num_classes: int, net_options: dict | None = None) -> dict:
    """The W&B config of a training run from its resolved ``config``: ``model`` (the name),
    ``binarize``, ``aug``, ``fold`` and ``seed`` flat at the top with the other top-level
    options and the model's own (``lr``, ``num_classes`` as trained, ...), every group
    nested (``data``, ``trainer``, ``bit_errors``, ...; Hydra's own left out), and the
    network's parameter counts (``params``) and Table IV memory figures (``memory``)."""
    from bnn_edge.hardware.memory import memory_report

    model = dict(config["model"])
    name = model.pop("name")
    out = {"model": name, "binarize": config["binarize"], "aug": config["aug"],
           "fold": config["data"]["fold"], "seed": config["seed"]}
    for key, value in config.items():
        if key not in ("model", "hydra"):
            out.setdefault(key, value)
    for key, value in {**model, "num_classes": num_classes}.items():
        out.setdefault(key, value)
    mem = memory_report(name, config["binarize"], config["aug"], num_classes=num_classes,
                        **(net_options or {}))
    out["params"] = {"total": mem["configured_params"], "binary": mem["binary_params"],
                     "real": mem["configured_params"] - mem["binary_params"],
                     "classifier": mem["classifier_params"], "conv": mem["conv_params"]}
    out["memory"] = {key: mem[key] for key in (
        "bytes_fp32", "bytes_int8", "bytes_mixed_fp32", "bytes_mixed_int8",
        "saving_vs_fp32_pct", "saving_vs_int8_pct", "threshold_bytes")}
    out["memory"]["arrays"] = mem["arrays"]["total_arrays"]
    out["memory"]["devices"] = mem["arrays"]["total_devices"]
    return out


def ber_rows(variant: str, points, cell: str | None = None,
             cycles: tuple | None = None) -> list[dict]:
    """Rows of a bit-error curve table from sweep points (mean and s.d. over the draws;
    ``rate``: the swept value); ``cycles``: the programming cycles of each rate when
    ``cell`` set the rates."""
    return [{"variant": variant, "rate": float(p.ber), "accuracy": float(p.mean),
             "spread": float(p.std), "cell": cell or "",
             "cycles": float(cycles[i]) if cycles else None, "draws": int(p.draws)}
            for i, p in enumerate(points)]


def csv_ber_rows(rows: list[dict]) -> list[dict]:
    """Rows of a bit-error curve table from the rows of ``ber_curve.csv`` files."""
    def number(text):
        return float(text) if text not in (None, "") else None

    return [{"variant": r["variant"], "rate": float(r["ber"]), "accuracy": float(r["acc_mean"]),
             "spread": float(r["acc_std"]), "cell": r.get("cell") or "",
             "cycles": number(r.get("cycles")), "draws": int(float(r.get("draws") or 1))}
            for r in rows]


def _log10_rates(rows: list[dict]) -> list[float]:
    nonzero = [r["rate"] for r in rows if r["rate"] > 0]
    zero_at = math.floor(math.log10(min(nonzero))) - 1 if nonzero else 0.0
    return [math.log10(r["rate"]) if r["rate"] > 0 else zero_at for r in rows]


def ber_columns(parameter: str = "ber") -> tuple[str, ...]:
    """The columns of a curve table of a sweep of ``parameter`` (:data:`BER_COLUMNS` for the
    error rate)."""
    if parameter == "ber":
        return BER_COLUMNS
    return ("variant", parameter, f"log10_{parameter}", "accuracy", "spread", "draws")


def ber_table(rows: list[dict], parameter: str = "ber"):
    """A wandb.Table of :func:`ber_columns`, the rows' ``rate`` the value of ``parameter``."""
    import wandb

    columns = ber_columns(parameter)
    keys = ("variant", "rate", "log10_rate", *columns[3:])
    data = [[{**r, "log10_rate": x}[k] for k in keys]
            for r, x in zip(rows, _log10_rates(rows), strict=True)]
    return wandb.Table(columns=list(columns), data=data)


def log_ber_curve(runs: list, key: str, rows: list[dict], what: str,
                  parameter: str = "ber") -> None:
    """Log ``what`` (e.g. "test accuracy") against log10 of the swept ``parameter``, a line
    per variant, as ``key`` (its table: ``<key>_table``) to each W&B run of ``runs``."""
    import wandb

    if not runs or not rows:
        return
    x = ber_columns(parameter)[2]
    chart = wandb.plot.line(ber_table(rows, parameter), x, "accuracy", stroke="variant",
                            title=f"{what} against log10({axis_title(parameter)})")
    for run in runs:
        run.log({key: chart})


def log_categories(runs: list, results: dict) -> None:
    """Log each accuracy-by-class or -category breakdown of a run's ``results``
    (``val_acc_by_category``: the task's names, e.g. the ECG reversal types) as a table with
    a bar plot, ``acc_by_<kind>/<split>``."""
    import wandb

    for field in sorted(results):
        match = _BY.fullmatch(field)
        if not match or not results[field]:
            continue
        split, kind = match.groups()
        data = [[name, float(v["acc"]), int(v["n"])] for name, v in results[field].items()]
        table = wandb.Table(columns=[kind, "accuracy", "trials"], data=data)
        chart = wandb.plot.bar(table, kind, "accuracy", title=f"{split} accuracy by {kind}")
        for run in runs:
            run.log({f"acc_by_{kind}/{split}": chart})


def _table(columns, rows: list[dict]):
    import wandb

    return wandb.Table(columns=list(columns), data=[[r.get(c) for c in columns] for r in rows])


def log_report(run, report: dict, fig7: list[dict], items: list | None,
               curves: list[dict]) -> None:
    """The report's panels: Table III (``table3``); per model the Fig. 7 series (``fig7/<model>``:
    mean accuracy against aug per variant, ours and the paper's; ``fig7/<model>_spread``: our
    s.d.); the claims with their verdicts (``claims``, and the paper claims' tally in the
    summary); the bit-error curves of ``ber_curve.csv`` files (``ber/curves``)."""
    import wandb

    rows = report["rows"]
    if rows:
        run.log({"table3": _table(list(rows[0]), rows)})
    for model in sorted({r["model"] for r in fig7}):
        mine = [r for r in fig7 if r["model"] == model]
        ours = [r for r in mine if r["source"] == "ours"]
        run.log({f"fig7/{model}": wandb.plot.line(
            _table(FIG7_COLUMNS, mine), "aug", "accuracy", stroke="series",
            title=f"Fig. 7 ({model}): accuracy (%) against aug")})
        if ours:
            run.log({f"fig7/{model}_spread": wandb.plot.line(
                _table(FIG7_COLUMNS, ours), "aug", "spread", stroke="series",
                title=f"Fig. 7 ({model}): s.d. of the accuracy over runs (points)")})
    if items:
        claims = [{"number": i, **asdict(c)} for i, c in enumerate(items, 1)]
        run.log({"claims": _table(CLAIM_COLUMNS, claims)})
        verdicts = [c["verdict"] for c in claims if c["kind"] == "paper claim"]
        run.summary.update({f"claims/{v}": verdicts.count(v) for v in set(verdicts)})
    log_ber_curve([run], "ber/curves", curves, "accuracy")
