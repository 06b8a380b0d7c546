"""The hardware parameter set: bad values named, presets sourced, physical relations."""

from __future__ import annotations

import math

import pytest
from omegaconf import OmegaConf

from bnn_edge.cli.app import CONF_DIR
from bnn_edge.errors import ConfigError
from bnn_edge.hardware.cost.params import HardwareParams
from tests.helpers.cost import preset


@pytest.mark.parametrize("key, value, expected", [
    ("pcsa_read_energy_j", -1e-15, "a number > 0"),
    ("read_time_s", math.nan, "a finite number"),
    ("array_size", 0, r"an integer in \[1, 9007199254740992\]"),
    ("mac_units", 2**60, r"an integer in \[1, 9007199254740992\]"),
    ("periphery_area_ratio", -0.5, "a number >= 0"),
    ("clock_hz", "fast", "a number"),
])
def test_bad_parameters_are_named(key, value, expected):
    with pytest.raises(ConfigError, match=expected) as info:
        HardwareParams.from_mapping(preset() | {key: value})
    assert info.value.option == f"hardware.{key}"
    with pytest.raises(ConfigError, match="one of the parameters"):
        HardwareParams.from_mapping(preset() | {"pcsa_energy": 1e-15})


def test_presets_are_valid_and_every_parameter_has_a_source():
    for path in (CONF_DIR / "hardware").glob("*.yaml"):
        values = OmegaConf.to_container(OmegaConf.load(path))
        HardwareParams.from_mapping(values)
        assert set(values["sources"]) == set(HardwareParams.names()[1:]), path.name
        assert values["name"] == path.stem


@pytest.mark.parametrize("low, high, value, strict", [
    ("r_on_ohm", "r_off_ohm", 900000.0, True),
    ("add8_energy_j", "add32_energy_j", 2e-13, False),
    ("sram_buffer_energy_per_64bit_j", "sram_weight_energy_per_64bit_j", 2e-10, False),
    ("sram_weight_energy_per_64bit_j", "dram_energy_per_64bit_j", 2e-9, False),
])
def test_parameters_must_be_physically_consistent(low, high, value, strict):
    """R_on < R_off; an 8-bit add costs no more than a 32-bit one; 8 KB buffer <= 1 MB SRAM
    <= DRAM per access. The error names both parameters."""
    base = preset()
    with pytest.raises(ConfigError, match=f"hardware.{high}={base[high]!r}") as info:
        HardwareParams.from_mapping(base | {low: value})
    assert info.value.option == f"hardware.{low}"
    equal = base | {low: base[high]}
    if strict:
        with pytest.raises(ConfigError):
            HardwareParams.from_mapping(equal)
    else:
        HardwareParams.from_mapping(equal)
