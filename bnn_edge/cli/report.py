"""``python -m bnn_edge.report DIR [out=DIR] [claims=true] [wandb=true]``.

Finds the runs under DIR (a multirun directory or any folder of runs), prints the
Table III aggregate, writes ``table3.md``, ``table3.csv`` and ``fig7_<model>.png`` (into
``out``, by default DIR) and lists the runs that were not averaged (failed, incomplete).
``claims=true`` also writes ``claims.md``: the paper's claims with the numbers of these
runs (and of the ``ber_curve.csv`` files of evaluate under DIR) and computed verdicts.
"""

from __future__ import annotations

import sys
from pathlib import Path

from bnn_edge.errors import BnnEdgeError, ConfigError
from bnn_edge.validation import check_output_dir

USAGE = "usage: python -m bnn_edge.report DIR [out=DIR] [claims=true|false] [wandb=true|false]"


def parse_args(argv: list[str]) -> dict:
    """DIR and key=value options; ConfigError names a bad one."""
    options = {"dir": None, "out": None, "wandb": False, "claims": False}
    for arg in argv:
        key, sep, value = arg.partition("=")
        if not sep:
            if options["dir"] is not None:
                raise ConfigError("DIR", arg, "a single directory of runs")
            options["dir"] = arg
        elif key == "out":
            options["out"] = value
        elif key in ("wandb", "claims"):
            if value.lower() not in ("true", "false"):
                raise ConfigError(key, value, "true or false")
            options[key] = value.lower() == "true"
        else:
            raise ConfigError(key, value, "one of the options out=DIR, claims=true|false, "
                                          "wandb=true|false")
    if options["dir"] is None:
        raise ConfigError("DIR", None, "a directory of runs (" + USAGE + ")")
    if not Path(options["dir"]).is_dir():
        raise ConfigError("DIR", options["dir"], "an existing directory of runs")
    if options["out"] is not None:
        check_output_dir("out", options["out"])
    else:
        check_output_dir("DIR", options["dir"])
    return options


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if any(a in ("-h", "--help") for a in argv):
        print(__doc__.strip().splitlines()[0] + "\n" + USAGE)
        return 0
    try:
        options = parse_args(argv)
        from bnn_edge.experiment.tables import make_report

        report = make_report(Path(options["dir"]), options["out"] and Path(options["out"]))
        if options["claims"]:
            from bnn_edge.experiment.claims import claims, claims_markdown, read_curves

            text = claims_markdown(claims(report["groups"], read_curves(Path(options["dir"]))))
            path = Path(options["out"] or options["dir"]) / "claims.md"
            path.write_text(text)
            report["claims"] = path
        if options["wandb"]:
            from bnn_edge.lit.tracking import upload_report

            upload_report(report, Path(options["out"] or options["dir"]))
    except BnnEdgeError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    out = Path(options["out"] or options["dir"])
    print(report["markdown"], end="")
    done = sum(r.status == "done" for r in report["runs"])
    written = [out / "table3.md", out / "table3.csv", *report["figures"]]
    written += [report["claims"]] if "claims" in report else []
    print(f"\n{done} finished runs in {len(report['groups'])} groups; wrote "
          + ", ".join(map(str, written)))
    for run in report["not_averaged"]:
        reason = run.reason if run.status in ("failed", "unreadable") else ""
        print(f"not averaged ({run.status}): {run.path}" + (f" - {reason}" if reason else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
