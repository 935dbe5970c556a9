"""Experiment trackers mirror metrics.jsonl: TensorBoard's event files (read back with
TensorBoard's own event reader) and the CSV logger's table hold the same per-epoch values, and
the final summary; a tracker that does not exist is one sentence."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from conftest import FAST


@pytest.fixture(scope="module")
def tracked(tmp_path_factory):
    from vaekit.cli import main

    out = tmp_path_factory.mktemp("trackers") / "run"
    main(
        [
            "train",
            "--data",
            "digits",
            "--epochs",
            "3",
            "--logger",
            "tensorboard,csv",
            "--out",
            str(out),
            *FAST,
        ]
    )
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    return out, rows, json.loads((out / "summary.json").read_text())


def _scalars(row: dict) -> dict:
    return {k: v for k, v in row.items() if isinstance(v, float) and k != "epoch"}


def test_tensorboard_events_hold_the_rows_of_metrics_jsonl(tracked):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out, rows, summary = tracked
    events = EventAccumulator(str(out / "logs" / "tensorboard" / "version_0"), size_guidance={"images": 0})
    events.Reload()
    tags = set(events.Tags()["scalars"])
    expected = _scalars(rows[0])
    assert {"train_loss", "test_loss", "test_rate", "lr", "kl_weight", "seconds"} <= set(expected)
    assert set(expected) <= tags
    for name in expected:
        logged = events.Scalars(name)
        assert [e.step for e in logged] == [r["epoch"] for r in rows], name
        np.testing.assert_allclose(
            [e.value for e in logged], [r[name] for r in rows], rtol=1e-6, err_msg=name
        )
    (nll,) = events.Scalars("summary/nll")
    assert nll.step == 3 and nll.value == pytest.approx(summary["nll"], rel=1e-6)
    figures = {t for t in events.Tags()["images"]}
    assert figures == {f"figures/{p.stem}" for p in (out / "figures").glob("*.png")} and len(figures) >= 4


def test_the_csv_logger_holds_the_rows_of_metrics_jsonl(tracked):
    out, rows, summary = tracked
    table = pd.read_csv(out / "logs" / "csv" / "version_0" / "metrics.csv")
    per_epoch = table[table["train_loss"].notna()].set_index("step")
    assert list(per_epoch.index) == [1, 2, 3]
    for row in rows:
        for name, value in _scalars(row).items():
            assert per_epoch.loc[row["epoch"], name] == pytest.approx(value, rel=1e-12), name
    final = table[table["summary/elbo"].notna()]
    assert len(final) == 1 and final["summary/elbo"].iloc[0] == pytest.approx(summary["elbo"], rel=1e-12)


def test_an_unknown_tracker_is_one_sentence(cli, tmp_path):
    code, _, err = cli(
        "train", "--data", "digits", "--logger", "tensorboard,neptune", "--out", tmp_path / "r", *FAST
    )
    assert code == 2 and "--logger 'neptune' is not a tracker; choose from tensorboard, csv" in err
    assert not (tmp_path / "r").exists()
