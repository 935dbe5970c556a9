"""The summary keys are one registry: every key a run's summary.json holds has a row (or is an
objective's own term, a disentanglement score, or a structured entry), and the report, the sweep
rows and the printed lines read that registry."""

from __future__ import annotations

import json

from vaekit import report, summary_keys, sweep
from vaekit.cli import summary_line

STRUCTURED = {"versions", "notes", "per_dim_kl", "objective_terms", "factor_probes", "disentanglement"}


def test_every_summary_key_of_a_run_is_registered(digits_run):
    summary = json.loads((digits_run / "summary.json").read_text())
    own_terms = set(summary.get("objective_terms", []))
    unregistered = [
        key
        for key, value in summary.items()
        if key not in summary_keys.SUMMARY_KEYS
        and key not in own_terms
        and not (key in STRUCTURED and isinstance(value, (dict, list)))
    ]
    assert not unregistered, f"add these to vaekit/summary_keys.py: {unregistered}"


def test_the_report_sweep_and_terminal_read_the_registry():
    for name, key in summary_keys.SUMMARY_KEYS.items():
        assert report.EXPLAIN[name].startswith(key.meaning)
        assert key.unit in report.EXPLAIN[name]
        assert set(key.shown) <= {"line", "sweep", "sweep_print"}
    assert sweep.ROW_KEYS == summary_keys.shown_in("sweep")
    line = summary_line({"elbo": -1.5, "rate": 2.0, "nll": 3.25, "mse": 0.1}, 1.0)
    assert line == "elbo -1.5, rate 2, nll 3.25 (1.0 s)"  # mse is not a "line" key
    assert summary_keys.meaning("not-a-key") == ""
