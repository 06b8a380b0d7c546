"""The hardware parameter set of the cost model (conf/hardware/*.yaml): validation, the
physical relations between parameters, the derived quantities and what each result is
computed from (docs/cost.md, "Parameters")."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

from bnn_edge.errors import ConfigError
from bnn_edge.validation import require_int

#: integer parameters up to 2**53 stay exact in the float arithmetic of the costs
INT_MAX = 2**53
#: physical relations between parameters, (lower, upper, strict, why): docs/cost.md
RELATIONS = (
    ("r_on_ohm", "r_off_ohm", True, "the on state is the low-resistance state"),
    ("add8_energy_j", "add32_energy_j", False, "an 8-bit adder is a part of a 32-bit adder"),
    ("sram_buffer_energy_per_64bit_j", "sram_weight_energy_per_64bit_j", False,
     "a read of the 8 KB buffer costs no more than one of the 1 MB SRAM"),
    ("sram_weight_energy_per_64bit_j", "dram_energy_per_64bit_j", False,
     "a read of the on-chip 1 MB SRAM costs no more than one of the off-chip DRAM"),
)


@dataclass(frozen=True)
class HardwareParams:
    """One parameter set (conf/hardware/*.yaml); None marks a value derived from others."""

    name: str
    array_size: int
    array_feature_size_m: float
    cell_area_f2: float
    periphery_area_ratio: float
    read_voltage_v: float
    read_time_s: float
    r_on_ohm: float
    r_off_ohm: float
    pcsa_read_energy_j: float | None
    popcount_energy_per_bit_j: float | None
    moved_bit_energy_j: float | None
    digital_feature_size_m: float
    add8_energy_j: float
    mult8_energy_j: float
    add32_energy_j: float
    fadd32_energy_j: float
    fmult32_energy_j: float
    sram_buffer_energy_per_64bit_j: float
    sram_weight_energy_per_64bit_j: float
    dram_energy_per_64bit_j: float
    sram_cell_area_f2: float
    clock_hz: float
    mac_units: int

    # values that may be zero (no periphery)
    _MAY_BE_ZERO = ("periphery_area_ratio",)
    _INTEGERS = ("array_size", "mac_units")
    DERIVED = ("pcsa_read_energy_j", "popcount_energy_per_bit_j", "moved_bit_energy_j")

    @classmethod
    def names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))

    @classmethod
    def from_mapping(cls, values: dict, prefix: str = "hardware") -> HardwareParams:
        """Validated parameters; ConfigError names the first bad key (unknown, missing,
        not a number, NaN or infinite, negative, zero where it must be positive, an integer
        above 2**53) or the first broken relation of :data:`RELATIONS` (naming both)."""
        values = {k: v for k, v in values.items() if k != "sources"}
        for key in values:
            if key not in cls.names():
                raise ConfigError(f"{prefix}.{key}", values[key],
                                  f"one of the parameters {', '.join(cls.names())}")
        for key in cls.names():
            if key not in values:
                raise ConfigError(f"{prefix}.{key}", None, "a value (the parameter is missing)")
        name = values["name"]
        if not isinstance(name, str) or not name:
            raise ConfigError(f"{prefix}.name", name, "a non-empty name")
        for key in cls.names()[1:]:
            value = values[key]
            if value is None and key in cls.DERIVED:
                continue
            option = f"{prefix}.{key}"
            if key in cls._INTEGERS:
                require_int(option, value, 1, INT_MAX)
                continue
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ConfigError(option, value, "a number" + (" or null (derived)"
                                                               if key in cls.DERIVED else ""))
            if not math.isfinite(value):
                raise ConfigError(option, value, "a finite number")
            if key in cls._MAY_BE_ZERO:
                if value < 0:
                    raise ConfigError(option, value, "a number >= 0")
            elif value <= 0:
                raise ConfigError(option, value, "a number > 0")
        for low, high, strict, why in RELATIONS:
            if values[low] > values[high] or (strict and values[low] == values[high]):
                raise ConfigError(f"{prefix}.{low}", values[low],
                                  f"a value {'below' if strict else 'at most'} "
                                  f"{prefix}.{high}={values[high]!r} ({why})")
        return cls(**{k: (float(v) if isinstance(v, int) and k not in cls._INTEGERS
                          and k != "name" else v) for k, v in values.items()})

    def inputs(self) -> dict[str, tuple[str, ...]]:
        """The parameters each result (a LayerCost field, a total, a derived quantity) is
        computed from, to name those that make it overflow."""
        def own_or(key: str, *formula: str) -> tuple[str, ...]:
            return (key,) if getattr(self, key) is not None else formula

        pcsa = own_or("pcsa_read_energy_j", "read_voltage_v", "r_on_ohm", "r_off_ohm",
                      "read_time_s")
        popcount = own_or("popcount_energy_per_bit_j", "add8_energy_j")
        moves = own_or("moved_bit_energy_j", "sram_buffer_energy_per_64bit_j")
        fp32, int8 = ("fmult32_energy_j", "fadd32_energy_j"), ("mult8_energy_j", "add32_energy_j")
        real = fp32 + int8 + ("add8_energy_j",)
        weights = ("sram_weight_energy_per_64bit_j", "dram_energy_per_64bit_j")
        buffer = ("sram_buffer_energy_per_64bit_j",)
        binary = pcsa + popcount + moves + real
        cell = ("cell_area_f2", "array_feature_size_m")
        arrays = ("array_size", *cell, "periphery_area_ratio")
        sram = ("sram_cell_area_f2", "digital_feature_size_m")
        return {
            "energy_pcsa_j": pcsa, "energy_popcount_j": popcount, "energy_moves_j": moves,
            "energy_real_j": real, "energy_weights_j": weights, "energy_activations_j": buffer,
            "energy_binary_j": binary, "energy_j": binary + weights + buffer,
            "latency_s": ("read_time_s", "clock_hz", "mac_units"),
            "area_arrays_m2": arrays, "area_sram_m2": sram, "area_m2": arrays + sram,
            "pcsa_read_energy_j": pcsa, "popcount_energy_per_bit_j": popcount,
            "moved_bit_energy_j": moves, "cell_area_m2": cell,
            "array_area_m2": (*cell, "array_size"), "mac_energy_fp32_j": fp32,
            "mac_energy_int8_j": int8,
            "sram_weight_bit_energy_j": weights[:1], "dram_bit_energy_j": weights[1:],
            "buffer_bit_energy_j": buffer, "sram_bit_area_m2": sram,
        }

    # --- derived quantities (docs/cost.md, "Parameters") ---
    @property
    def pcsa_energy(self) -> float:
        if self.pcsa_read_energy_j is not None:
            return self.pcsa_read_energy_j
        v = self.read_voltage_v
        return v * v * (1 / self.r_on_ohm + 1 / self.r_off_ohm) * self.read_time_s

    @property
    def popcount_bit_energy(self) -> float:
        if self.popcount_energy_per_bit_j is not None:
            return self.popcount_energy_per_bit_j
        return self.add8_energy_j / 8

    @property
    def moved_bit_energy(self) -> float:
        if self.moved_bit_energy_j is not None:
            return self.moved_bit_energy_j
        return self.sram_buffer_energy_per_64bit_j / 64

    @property
    def cell_area_m2(self) -> float:
        return self.cell_area_f2 * self.array_feature_size_m ** 2

    @property
    def sram_bit_area_m2(self) -> float:
        return self.sram_cell_area_f2 * self.digital_feature_size_m ** 2

    def mac_energy(self, precision: str) -> float:
        """fp32: float multiply + float add; int8: 8-bit multiply + 32-bit accumulate."""
        if precision == "fp32":
            return self.fmult32_energy_j + self.fadd32_energy_j
        return self.mult8_energy_j + self.add32_energy_j

    def add_energy(self, precision: str) -> float:
        return self.fadd32_energy_j if precision == "fp32" else self.add8_energy_j

    def weight_bit_energy(self, memory: str) -> float:
        per_64 = self.sram_weight_energy_per_64bit_j if memory == "sram" \
            else self.dram_energy_per_64bit_j
        return per_64 / 64

    @property
    def buffer_bit_energy(self) -> float:
        return self.sram_buffer_energy_per_64bit_j / 64

    def derived(self) -> dict[str, tuple[float, str]]:
        """The derived quantities with their formula (for the report)."""
        given = "set in the parameter set or on the command line, not derived"

        def rule(key: str, formula: str) -> str:
            return given if getattr(self, key) is not None else formula

        return {
            "pcsa_read_energy_j": (self.pcsa_energy, rule(
                "pcsa_read_energy_j", "read_voltage_v^2 * (1/r_on_ohm + 1/r_off_ohm) * "
                "read_time_s")),
            "popcount_energy_per_bit_j": (self.popcount_bit_energy, rule(
                "popcount_energy_per_bit_j", "add8_energy_j / 8")),
            "moved_bit_energy_j": (self.moved_bit_energy, rule(
                "moved_bit_energy_j", "sram_buffer_energy_per_64bit_j / 64")),
            "cell_area_m2": (self.cell_area_m2, "cell_area_f2 * array_feature_size_m^2"),
            "array_area_m2": (self.cell_area_m2 * self.array_size ** 2,
                              "array_size^2 * cell_area_m2 (cells only)"),
            "mac_energy_fp32_j": (self.mac_energy("fp32"), "fmult32_energy_j + fadd32_energy_j"),
            "mac_energy_int8_j": (self.mac_energy("int8"), "mult8_energy_j + add32_energy_j"),
            "sram_weight_bit_energy_j": (self.weight_bit_energy("sram"),
                                         "sram_weight_energy_per_64bit_j / 64"),
            "dram_bit_energy_j": (self.weight_bit_energy("dram"), "dram_energy_per_64bit_j / 64"),
            "buffer_bit_energy_j": (self.buffer_bit_energy, "sram_buffer_energy_per_64bit_j / 64"),
            "sram_bit_area_m2": (self.sram_bit_area_m2,
                                 "sram_cell_area_f2 * digital_feature_size_m^2"),
        }
