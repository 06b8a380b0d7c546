"""``python -m bnn_edge.report DIR [option=value ...]``: :data:`ABOUT`."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

from bnn_edge.cli.app import closed_pipe_ends_quietly
from bnn_edge.errors import BnnEdgeError, ConfigError
from bnn_edge.validation import check_output_dir, require_number

ABOUT = """\
Table III and Fig. 7 of the paper from a folder of training runs (a sweep's folder or any
folder holding run folders). It prints the Table III aggregate (mean and spread per task,
variant and aug) and writes table3.md, table3.csv, runs.csv, fig7_<model>.png, the
learning curves (curves.csv, curves_<model>.png) and per_class.md, each file opening with
what it was computed from, and lists the runs it did not average (failed, incomplete,
duplicates). Runs of one task whose settings differ are refused unless pool=true."""

#: option: (default as written, what it does); DIR is the one positional argument
OPTIONS = {
    "DIR": ("(required)", "the folder of runs"),
    "out": ("DIR", "the folder to write into"),
    "claims": ("false", "also write claims.md (each checkable claim of the paper with the "
                        "numbers of these runs, its test, n, interval and verdict) and "
                        "fig4_device.png (the device model's bit error rates against cycles)"),
    "margin": ("1", "accuracy points: the region of practical equivalence of the claims' "
                    "tests"),
    "pool": ("false", "average runs of one task whose settings differ"),
    "wandb": ("false", "upload the tables and figures to Weights & Biases (offline without "
                       "an API key)"),
}
#: the whole command line, for the error without DIR
SYNTAX = ("DIR [out=DIR] [claims=true|false] [margin=POINTS] [pool=true|false] "
          "[wandb=true|false]")
FLAGS = ("wandb", "claims", "pool")


def help_text() -> str:
    """The ``--help`` of the report command."""
    from bnn_edge.cli.app import usage
    from bnn_edge.cli.help import WIDTH, option_lines

    lines = [usage("report", "DIR [option=value ...]"), "",
             textwrap.fill(" ".join(ABOUT.split()), WIDTH), "",
             "Options (option=default; give any as option=value):"]
    for name, (default, text) in OPTIONS.items():
        lines += option_lines(name if name == "DIR" else f"{name}={default}", text)
    return "\n".join(lines) + "\n"


def parse_args(argv: list[str]) -> dict:
    """DIR and key=value options; ConfigError names a bad one."""
    from bnn_edge.experiment.claims import MARGIN

    options = {"dir": None, "out": None, "wandb": False, "claims": False, "pool": False,
               "margin": MARGIN}
    for arg in argv:
        key, sep, value = arg.partition("=")
        if not sep:
            if options["dir"] is not None:
                raise ConfigError("DIR", arg, "a single directory of runs")
            options["dir"] = arg
        elif key == "out":
            options["out"] = value
        elif key in FLAGS:
            if value.lower() not in ("true", "false"):
                raise ConfigError(key, value, "true or false")
            options[key] = value.lower() == "true"
        elif key == "margin":
            try:
                number = float(value)
            except ValueError:
                number = value
            allowed = "a number of accuracy points in (0, 50): the region of practical " \
                      "equivalence"
            require_number("margin", number, 0, 50, low_open=True, high_open=True,
                           allowed=allowed)
            options["margin"] = number
        else:
            raise ConfigError(key, value, "one of the options out=DIR, claims=true|false, "
                                          "margin=POINTS, pool=true|false, wandb=true|false")
    if options["dir"] is None:
        raise ConfigError("DIR", None, f"a directory of runs (usage: python -m "
                                       f"bnn_edge.report {SYNTAX})")
    if not Path(options["dir"]).is_dir():
        raise ConfigError("DIR", options["dir"], "an existing directory of runs")
    if options["out"] is not None:
        check_output_dir("out", options["out"])
    else:
        check_output_dir("DIR", options["dir"])
    return options


@closed_pipe_ends_quietly
def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if any(a in ("-h", "--help") for a in argv):
        print(help_text(), end="")
        return 0
    try:
        options = parse_args(argv)
        from bnn_edge.experiment.report import make_report

        root = Path(options["dir"])
        out = Path(options["out"] or options["dir"])
        report = make_report(root, out, pool=options["pool"])
        items, where = None, None
        if options["claims"]:
            from bnn_edge.experiment.claims import claims, claims_markdown, read_curves
            from bnn_edge.experiment.figures import plot_fig4

            items = claims(report["groups"], read_curves(root), options["margin"])
            (out / "claims.md").write_text(claims_markdown(
                items, report["groups"], root, options["margin"], report["pooled"]))
            plot_fig4(out / "fig4_device.png")
            report["written"] += [out / "claims.md", out / "fig4_device.png"]
        if options["wandb"]:
            from bnn_edge.experiment.claims import read_curves
            from bnn_edge.experiment.figures import fig7_series
            from bnn_edge.lit.tracking import upload_report

            where = upload_report(report, out, root, fig7_series(report["groups"]), items,
                                  read_curves(root))
    except BnnEdgeError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(report["markdown"], end="")
    done = sum(len(g.runs) for g in report["groups"])
    print(f"\n{done} finished runs in {len(report['groups'])} groups; wrote "
          + ", ".join(map(str, report["written"])))
    for run in report["not_averaged"]:
        reason = run.reason if run.status in ("failed", "unreadable", "duplicate") else ""
        print(f"not averaged ({run.status}): {run.path}" + (f" - {reason}" if reason else ""))
    if where:
        print(where)
    return 0


if __name__ == "__main__":
    sys.exit(main())
