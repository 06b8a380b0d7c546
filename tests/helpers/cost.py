"""The cost model's inputs as the tests use them: a hardware preset and the ECG report."""

from __future__ import annotations

from omegaconf import OmegaConf

from bnn_edge.cli.app import CONF_DIR
from bnn_edge.hardware.cost.model import build_from, cost_report
from bnn_edge.hardware.cost.params import HardwareParams


def preset(name: str = "rram_2t2r_130nm") -> dict:
    """The parameter set ``conf/hardware/<name>.yaml`` as a dict (its sources included)."""
    return OmegaConf.to_container(OmegaConf.load(CONF_DIR / "hardware" / f"{name}.yaml"))


def ecg_report(hw: HardwareParams) -> dict:
    """The cost report of ECG binarize=classifier aug=1 (fp32 real layers in SRAM)."""
    return cost_report(build_from("ecg", {"aug": 1}), "classifier",
                       {"model": "ecg", "binarize": "classifier", "aug": 1}, hw, "fp32", "sram")
