"""Experiment trackers mirror metrics.jsonl: TensorBoard's event files (read back with
TensorBoard's own event reader), the CSV logger's table, the offline W&B run (read back with
wandb's own log reader) and the MLflow run (read back with MLflow's client) hold the same
per-epoch values, and the final summary; a tracker that does not exist, or whose package is
missing, is one sentence."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import FAST

import vaekit


@pytest.fixture(scope="module")
def tracked(tmp_path_factory):
    from vaekit.cli import main

    home = tmp_path_factory.mktemp("trackers")
    out = home / "run"
    with pytest.MonkeyPatch.context() as env:
        for name in ("WANDB_MODE", "WANDB_PROJECT", "MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_NAME"):
            env.delenv(name, raising=False)  # the defaults: offline, in the run folder
        for name in ("WANDB_CONFIG_DIR", "WANDB_CACHE_DIR", "WANDB_DATA_DIR"):
            env.setenv(name, str(home / name.lower()))  # the user's own W&B folders left alone
        main(
            [
                "train",
                "--data",
                "digits",
                "--epochs",
                "3",
                "--logger",
                "tensorboard,csv,wandb,mlflow",
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
    assert "hp_metric" not in tags  # the settings are not a score
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


def _wandb_records(run_folder: Path) -> list[dict]:
    """The records of an offline W&B run's log (run-ID.wandb), as wandb's own reader prints them."""
    wandb = Path(sys.executable).parent / "wandb"
    text = subprocess.run(
        [str(wandb), "leet", "inspect", "--json", str(run_folder)], capture_output=True, text=True, check=True
    ).stdout
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def test_an_offline_wandb_run_holds_the_rows_of_metrics_jsonl(tracked):
    out, rows, summary = tracked
    (folder,) = (out / "logs" / "wandb").glob("offline-run-*")  # offline: nothing was sent
    records = _wandb_records(folder)
    (run,) = [r["run"] for r in records if r["type"] == "run"]
    assert run["project"] == "vaekit" and run["display_name"] == "run"
    assert run["telemetry"]["feature"]["offline"] is True
    settings = {}
    for r in records:
        settings.update(r["config"]["update"] if r["type"] == "config" else {})
    assert settings["epochs"] == 3 and settings["logger"] == "tensorboard,csv,wandb,mlflow"
    assert settings["objective"] == "beta-elbo" and settings["beta"] == 1.0 and settings["latent_dim"] == 2
    assert (settings["data"], settings["hidden"], settings["prior"]) == ("digits", "64", "normal")
    history = [r["history"] for r in records if r["type"] == "history"]
    by_step = {}
    for h in history:
        by_step.setdefault(h["step"]["num"], {}).update(h["item"])
    for row in rows:
        for name, value in _scalars(row).items():
            assert by_step[row["epoch"]][name] == pytest.approx(value, rel=1e-12), name
    assert by_step[3]["summary/nll"] == pytest.approx(summary["nll"], rel=1e-12)
    # each image's entry, as wandb's reader flattens it: NAME._type, NAME.path, ...
    figures = {k.removesuffix("._type") for k, v in by_step[3].items() if v == "image-file"}
    assert figures == {f"figures/{p.stem}" for p in (out / "figures").glob("*.png")} and len(figures) >= 4
    assert len(list(folder.glob("files/media/images/figures/*.png"))) == len(figures)


def test_the_mlflow_run_holds_the_rows_of_metrics_jsonl(tracked):
    from mlflow.tracking import MlflowClient

    out, rows, summary = tracked
    database = out / "logs" / "mlflow" / "mlflow.db"
    client = MlflowClient(tracking_uri=f"sqlite:///{database}")
    (experiment,) = [e for e in client.search_experiments() if e.name == "vaekit"]
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.info.run_name == "run" and run.info.status == "FINISHED"
    params = run.data.params
    assert params["epochs"] == "3" and params["beta"] == "1.0" and params["objective"] == "beta-elbo"
    assert (params["data"], params["hidden"], params["prior"]) == ("digits", "64", "normal")
    for name in _scalars(rows[0]):
        history = sorted(client.get_metric_history(run.info.run_id, name), key=lambda m: m.step)
        assert [m.step for m in history] == [r["epoch"] for r in rows], name
        np.testing.assert_allclose([m.value for m in history], [r[name] for r in rows], rtol=1e-12)
    assert run.data.metrics["summary/nll"] == pytest.approx(summary["nll"], rel=1e-12)
    figures = {Path(f.path).stem for f in client.list_artifacts(run.info.run_id, "figures")}
    assert figures == {p.stem for p in (out / "figures").glob("*.png")}
    assert all(p.stat().st_size > 1000 for p in (out / "logs" / "mlflow" / "artifacts").rglob("*.png"))


def test_a_labs_mlflow_server_is_the_trackers_own_switch(tmp_path, monkeypatch):
    """MLFLOW_TRACKING_URI and MLFLOW_EXPERIMENT_NAME, as a lab sets them, take the run there (a
    database file standing in for the server): nothing is written in the run folder's default."""
    from mlflow.tracking import MlflowClient

    from vaekit.trackers import MLflowLogger

    uri = f"sqlite:///{tmp_path / 'lab.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", "our-vaes")
    logger = MLflowLogger(tmp_path / "run" / "logs", run_name="beta-4")
    logger.log_metrics({"test_elbo": -90.5}, step=2)
    logger.finalize("success")
    client = MlflowClient(tracking_uri=uri)
    (run,) = client.search_runs([client.get_experiment_by_name("our-vaes").experiment_id])
    assert run.info.run_name == "beta-4" and run.data.metrics == {"test_elbo": -90.5}
    assert not (tmp_path / "run" / "logs" / "mlflow" / "mlflow.db").exists()


def test_a_tracker_that_cannot_start_is_one_sentence(cli, tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "nosuchscheme://lab")  # a lab's server, mistyped
    code, _, err = cli("train", "--data", "digits", "--logger", "mlflow", "--out", tmp_path / "r", *FAST)
    assert code == 2 and "--logger mlflow could not start its run (" in err and "Traceback" not in err
    assert "MLFLOW_TRACKING_URI" in err and not (tmp_path / "r" / "model.safetensors").exists()


def test_training_that_stops_ends_the_trackers_run_as_failed(tmp_path, monkeypatch):
    from mlflow.tracking import MlflowClient

    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_NAME"):
        monkeypatch.delenv(name, raising=False)

    class Stop:
        def on_epoch_end(self, run, row):
            if row["epoch"] == 3:  # before the trackers hear of epoch 3
                raise KeyboardInterrupt  # as Ctrl-C in the middle of training

    data = vaekit.datasets.load("digits")
    model = vaekit.VAE.for_data(data, latent_dim=2, hidden=[32], seed=0)
    with pytest.raises(KeyboardInterrupt):
        vaekit.fit(
            model, data, out=tmp_path / "r", epochs=4, logger="mlflow", callbacks=[Stop()], progress=False
        )
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'r' / 'logs' / 'mlflow' / 'mlflow.db'}")
    (run,) = client.search_runs([client.get_experiment_by_name("vaekit").experiment_id])
    assert run.info.status == "FAILED"
    assert [m.step for m in client.get_metric_history(run.info.run_id, "train_loss")] == [1, 2]


def test_a_tracker_without_its_package_is_one_sentence(cli, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "wandb", None)  # as if wandb were not installed
    code, _, err = cli("train", "--data", "digits", "--logger", "csv,wandb", "--out", tmp_path / "r", *FAST)
    assert code == 2 and 'needs the wandb package; pip install "vaekit[wandb]".' in err
    assert "Traceback" not in err and not (tmp_path / "r").exists()


def test_no_tracker_is_said_as_none_or_nothing():
    from vaekit import trackers

    assert trackers.parse("none") == trackers.parse("") == trackers.parse(None) == ()
    assert trackers.parse("csv, tensorboard,csv") == ("csv", "tensorboard")


def test_an_unknown_tracker_is_one_sentence(cli, tmp_path):
    code, _, err = cli(
        "train", "--data", "digits", "--logger", "tensorboard,neptune", "--out", tmp_path / "r", *FAST
    )
    assert (
        code == 2
        and "--logger 'neptune' is not a tracker; choose from tensorboard, csv, wandb, mlflow" in err
    )
    assert not (tmp_path / "r").exists()
