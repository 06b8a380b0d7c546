"""What a run's settings are: the fault model counts only where error-aware training used it."""

from __future__ import annotations

from bnn_edge.experiment.provenance import differing, settings


def run_config(train_ber: float, fault_model) -> dict:
    return {"model": {"name": "ecg"}, "trainer": {"max_epochs": 10},
            "bit_errors": {"ber": [0, 0.01], "draws": 20, "train_ber": train_ber,
                           "fault_model": fault_model}}


def test_the_fault_model_is_a_setting_only_under_error_aware_training():
    stuck = {"name": "stuck", "fraction": [0, 0.01], "cell": "2T2R"}
    plain = [settings(run_config(0.0, m), {}, {}) for m in ("bitflip", stuck)]
    assert differing(plain) == {}  # evaluated-only options: the same setting
    aware = [settings(run_config(0.05, m), {}, {}) for m in ("bitflip", {"name": "bitflip"},
                                                              stuck)]
    assert differing(aware[:2]) == {}  # stored by name (older runs) or by the group: the same
    assert differing(aware) == {"bit_errors.fault_model.name": ["bitflip", "stuck"],
                                "bit_errors.fault_model.fraction": ["<absent>", (0, 0.01)],
                                "bit_errors.fault_model.cell": ["<absent>", "2T2R"]}
    assert aware[0]["bit_errors.train_ber"] == 0.05
    assert "bit_errors.ber" not in aware[0] and "bit_errors.draws" not in aware[0]
