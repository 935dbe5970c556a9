"""Options and workflows end to end from the command line: .npz with labels and factors, each
--scaling fitted on the training split only, the README's disentanglement workflow on sprites32,
and a report page that escapes what the user named."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import FAST

import vaekit
from vaekit import datasets, report, runs


def test_npz_with_labels_and_factors(cli, tmp_path):
    """x, y and factors are read from the archive: the labels reach the probes, the factors the
    per-factor probes and the disentanglement metrics."""
    gen = np.random.default_rng(4)
    factors = np.stack([gen.integers(0, 4, 300), gen.integers(0, 5, 300)], axis=1)
    x = np.zeros((300, 1, 8, 8), np.float32)
    x[np.arange(300), 0, factors[:, 0] * 2, factors[:, 1]] = 1.0  # a lit pixel at (2 f0, f1)
    y = factors[:, 0]
    np.savez(tmp_path / "d.npz", x=x, y=y, factors=factors)
    run = tmp_path / "run"
    code, _, err = cli(
        "train", "--data", tmp_path / "d.npz", "--latent-dim", "2", "--epochs", "2", "--out", run, *FAST
    )
    assert code == 0, err
    data = runs.load_data(run)
    np.testing.assert_array_equal(data.x, x)
    np.testing.assert_array_equal(data.y, y)
    np.testing.assert_array_equal(data.factors, factors)
    summary = json.loads((run / "summary.json").read_text())
    assert set(summary["factor_probes"]) == {"factor_0", "factor_1"}
    chance = np.bincount(y[data.test_idx]).max() / len(data.test_idx)
    assert summary["factor_probes"]["factor_0"]["chance"] == pytest.approx(chance)
    assert 0 <= summary["knn_accuracy"] <= 1
    code, out, err = cli("evaluate", run, "--metrics", "mig", "--metric-preset", "quick", "--json")
    assert code == 0, err
    mi = np.asarray(json.loads(out)["disentanglement"]["matrices"]["mig_mutual_information"])
    assert mi.shape == (2, 2) and 0 <= json.loads(out)["mig"] <= 1


def test_signed_and_offset_integer_factors_are_values(cli, tmp_path):
    """Factors stored as -2..2 or 10..14 give the metrics of their copy shifted to 0..4, from the
    library and from `evaluate --metrics` (which once crashed on a negative factor)."""
    from vaekit import metrics

    gen = np.random.default_rng(5)
    base = np.stack([gen.integers(0, 5, 400), gen.integers(0, 3, 400)], axis=1)
    x = (base + gen.normal(scale=0.3, size=base.shape)).astype(np.float32)

    def represent(obs):
        return np.asarray(obs, np.float64)

    results = []
    for factors in (base, base - 2, base + np.array([10, -7])):
        data = metrics.ArrayFactorData(x, factors)
        results.append(metrics.compute_all(represent, data, seed=0, preset="quick"))
        np.testing.assert_array_equal(data.factor_values[0], np.arange(5) + factors[:, 0].min())
    for other in results[1:]:
        assert other.keys() == results[0].keys()
        for key, value in results[0].items():
            if key == "seconds":
                continue
            if key == "matrices":
                for name, matrix in value.items():
                    np.testing.assert_array_equal(other[key][name], matrix, err_msg=name)
            else:
                np.testing.assert_array_equal(np.asarray(other[key]), np.asarray(value), err_msg=key)
    assert 0 < results[0]["mig"] <= 1
    # the from-codes functions take indices (ranked once by ArrayFactorData, never per split)
    with pytest.raises(ValueError, match="factor indices must be >= 0"):
        metrics.sap_from_codes(x, base - 2, x, base - 2)

    images = np.zeros((400, 1, 8, 8), np.float32)
    images[np.arange(400), 0, base[:, 0], base[:, 1]] = 1.0
    np.savez(tmp_path / "d.npz", x=images, factors=base - 2)
    run = tmp_path / "run"
    code, _, err = cli(
        "train", "--data", tmp_path / "d.npz", "--latent-dim", "2", "--epochs", "1", "--out", run, *FAST
    )
    assert code == 0, err
    code, out, err = cli("evaluate", run, "--metrics", "mig,sap", "--metric-preset", "quick", "--json")
    assert code == 0 and "Traceback" not in err, err
    assert 0 <= json.loads(out)["mig"] <= 1


@pytest.mark.parametrize("scaling", ["unit", "standard", "none"])
def test_each_scaling_option(cli, tmp_path, scaling):
    """standard is fitted on the training split only (a test row far outside the training range
    changes nothing); unit maps each column's range over the whole data to [0, 1] (a range is a
    property of the data, not a learned statistic); none leaves the values alone."""
    gen = np.random.default_rng(5)
    x = gen.uniform(0.1, 3.0, size=(100, 6)).astype(np.float32)
    split = datasets.split_indices(100, 0.2)
    x[split[1][0]] = 50.0  # an outlier in the test split
    np.save(tmp_path / "x.npy", x)
    run = tmp_path / scaling
    args = ["--data", tmp_path / "x.npy", "--scaling", scaling, "--likelihood", "gaussian", "--epochs", "1"]
    assert cli("train", *args, "--out", run, *FAST)[0] == 0
    model = vaekit.load(run)
    train = x[split[0]].astype(np.float64)
    shift, scale = model.data_shift.numpy(), model.data_scale.numpy()
    if scaling == "unit":
        np.testing.assert_allclose(shift, x.min(0), rtol=1e-6)
        np.testing.assert_allclose(scale, np.ptp(x, axis=0), rtol=1e-5)
    elif scaling == "standard":
        np.testing.assert_allclose(shift, train.mean(0), rtol=1e-5)
        np.testing.assert_allclose(scale, train.std(0), rtol=1e-4)
    else:
        assert shift.tolist() == [0.0] and scale.tolist() == [1.0]
    data = runs.load_data(run)
    assert data.scaling.name == scaling
    np.testing.assert_allclose(data.x, (x - shift) / scale, rtol=1e-5, atol=1e-5)


def test_disentanglement_workflow_on_sprites32(cli, tmp_path):
    """The README's workflow: train on the built-in sprites32, `evaluate --metrics all`, and the
    report labels each traversal row with the factor its dimension shares most information with,
    and draws the metric matrices with latent dimensions as rows and factors as columns."""
    run = tmp_path / "sprites"
    # the MLP, a large batch and a small test split keep this test short; the steps are the README's
    small = ["--arch", "mlp", "--batch-size", "256", "--test-size", "1000"]
    code, _, err = cli(
        "train", "--data", "sprites32", "--latent-dim", "4", "--epochs", "1", *small, "--out", run, *FAST
    )
    assert code == 0, err
    quick = ["--metric-preset", "quick", "--dci-method", "lasso", "--nll-samples", "5"]
    code, out, err = cli("evaluate", run, "--metrics", "all", *quick, "--json")
    assert code == 0, err
    summary = json.loads(out)
    assert summary == json.loads((run / "summary.json").read_text())
    for key in ("mig", "dci_disentanglement", "dci_completeness", "sap", "modularity", "betavae_score"):
        assert 0.0 <= summary[key] <= 1.0, key
    names = summary["disentanglement"]["factor_names"]
    assert names == ["shape", "scale", "orientation", "pos_x", "pos_y"]
    mi = np.asarray(summary["disentanglement"]["matrices"]["mig_mutual_information"])
    assert mi.shape == (4, 5)
    assert summary["disentanglement"]["settings"]["preset"] == "quick"

    model, data = runs.load(run), runs.load_data(run)
    history = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    figures = report.run_figures(model, data, history, summary)
    active = [d for d in range(4) if summary["per_dim_kl"][d] > 0.01]
    expected_rows = sorted(active, key=lambda d: -mi[d].max())
    labels = [t.get_text() for t in figures["traversals"].axes[0].texts]
    assert labels == [f"z{d + 1} → {names[int(mi[d].argmax())]}" for d in expected_rows]
    heat = figures["mutual_information"].axes[0]
    np.testing.assert_allclose(heat.images[0].get_array(), mi)
    assert [t.get_text() for t in heat.get_xticklabels()] == names
    assert [t.get_text() for t in heat.get_yticklabels()] == ["z1", "z2", "z3", "z4"]
    dci = np.asarray(summary["disentanglement"]["matrices"]["dci_importance"])
    np.testing.assert_allclose(figures["dci_importance"].axes[0].images[0].get_array(), dci)
    page = (run / "report.html").read_text()
    assert page.count("data:image/png;base64,") == 9  # 7 run figures + the two heatmaps


def test_report_escapes_what_the_user_named(cli, tmp_path):
    """A run folder and labels named like markup appear as text in report.html, never as tags."""
    folder = tmp_path / "images"
    for label in ("<b>bold<b>", "plain"):
        (folder / label).mkdir(parents=True)
    from PIL import Image

    gen = np.random.default_rng(0)
    for i in range(12):
        label = "<b>bold<b>" if i % 2 else "plain"
        Image.fromarray(gen.integers(0, 255, (8, 8), dtype=np.uint8)).save(folder / label / f"{i}.png")
    run = tmp_path / "<script>alert(1)"
    code, _, err = cli("train", "--data", folder, "--epochs", "1", "--out", run, *FAST)
    assert code == 0, err
    assert runs.load_data(run).label_names == ["<b>bold<b>", "plain"]
    page = (run / "report.html").read_text()
    assert "<script>" not in page and "&lt;script&gt;alert(1)" in page
    assert "<b>bold" not in page


@pytest.mark.parametrize(
    "extra",
    [[], ["--prior", "mog"], ["--prior", "vamp", "--prior-components", "8"], ["--condition", "labels"]],
)
def test_gpu_smoke(cli, tmp_path, extra):
    """Where a CUDA device exists: a run (each prior, and the label-conditional model) trains on
    it, writes its summary and report, and gives finite numbers close to the CPU's (the
    CPU-determinism tests pin --device cpu)."""
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device on this machine")
    args = [
        "train",
        "--data",
        "digits",
        "--epochs",
        "2",
        "--hidden",
        "64",
        "--nll-samples",
        "10",
        "--quiet",
        *extra,
    ]
    assert cli(*args, "--device", "cuda", "--out", tmp_path / "gpu")[0] == 0
    assert cli(*args, "--device", "cpu", "--out", tmp_path / "cpu")[0] == 0
    gpu = json.loads((tmp_path / "gpu" / "summary.json").read_text())
    cpu = json.loads((tmp_path / "cpu" / "summary.json").read_text())
    assert np.isfinite(gpu["elbo"]) and gpu["elbo"] == pytest.approx(cpu["elbo"], rel=0.05)
    assert (tmp_path / "gpu" / "report.html").exists()


def test_the_guides_python_example_runs_as_written(tmp_path, monkeypatch):
    """The user guide's Python block (docs/guide/python.md), executed as written except for fewer
    epochs and a temporary run folder."""
    import re
    from pathlib import Path

    guide = (Path(__file__).parent.parent / "docs" / "guide" / "python.md").read_text()
    block, commands = re.findall(r"```python\n(.*?)```", guide, flags=re.S)
    assert "epochs=30" in block and '"runs/mnist"' in block
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(block.replace("epochs=30", "epochs=1"), "python.md", "exec"), namespace)
    run = namespace["run"]
    assert (tmp_path / "runs" / "mnist" / "model.safetensors").exists()
    assert [r["epoch"] for r in run.history] == [1]
    assert namespace["q"].mean.shape == (8, 2)
    # the block ends by reloading the run: the reloaded model encodes as the trained one did
    reloaded = namespace["model"].encode(namespace["x"])
    assert torch.equal(reloaded.mean, namespace["q"].mean)
    # the second block: the commands' library functions on the trained run and on a table
    np.save(tmp_path / "new.npy", namespace["data"].x_test[:20])
    visits = {"visit": [f"v{i}" for i in range(60)], "bmi": np.r_[np.linspace(18, 35, 55), [np.nan] * 5]}
    pd.DataFrame(visits).to_csv(tmp_path / "visits.csv", index=False)
    exec(compile(commands, "python.md", "exec"), namespace)
    written = pd.read_csv(tmp_path / "scores.csv")
    assert len(written) == 20 and np.isfinite(written["nll"]).all()
    assert namespace["record"]["samples"] == 100 and namespace["model"].prior.name == "mog"


def test_a_run_trained_from_python_records_its_data(cli, tmp_path):
    """vaekit.fit(out=...) on a data set from datasets.load writes the data's record, so the
    command line can evaluate and redraw the run on exactly the same split (here not the default
    one: test_size 0.3, split seed 4); resuming from the command line says to resume in Python."""
    data = datasets.load("digits", test_size=0.3, split_seed=4)
    model = vaekit.VAE.for_data(data, latent_dim=2, hidden=(32,))
    run = vaekit.fit(model, data, epochs=1, out=tmp_path / "r", progress=False, nll_samples=0)
    record = runs.read_config(tmp_path / "r")["data"]
    assert (record["source"], record["test_size"], record["split_seed"]) == ("digits", 0.3, 4)
    again = runs.load_data(tmp_path / "r")
    np.testing.assert_array_equal(again.test_idx, data.test_idx)
    np.testing.assert_array_equal(again.x, data.x)
    code, out, err = cli("evaluate", tmp_path / "r", "--nll-samples", "0", "--json")
    assert code == 0, err
    assert json.loads(out)["elbo"] == pytest.approx(run.summary["elbo"], rel=1e-6)
    code, _, err = cli("report", tmp_path / "r")
    assert code == 0 and (tmp_path / "r" / "report.html").stat().st_size > 10_000, err
    code, _, err = cli("train", "--resume", tmp_path / "r", "--epochs", "2")
    assert code == 2 and "trained from Python (vaekit.fit)" in err
    resumed = vaekit.fit(
        model, again, epochs=2, out=tmp_path / "r", resume=True, progress=False, nll_samples=0
    )
    assert [row["epoch"] for row in resumed.history] == [1, 2]


@pytest.mark.parametrize(
    ("option", "message"),
    [
        ({"epochs": 1.5}, "epochs must be a whole number of at least 1, not 1.5."),
        ({"batch_size": True}, "batch_size must be a whole number of at least 1, not True."),
        ({"lr": float("nan")}, "lr must be a positive number, not nan."),
        ({"seed": -1}, "seed must be a whole number of at least 0, not -1."),
        ({"nll_samples": -5}, "nll_samples must be a whole number of at least 0, not -5."),
        ({"warmup_epochs": -1.0}, "warmup_epochs must be a number of at least 0, not -1.0."),
        ({"clip_grad": 0.0}, "clip_grad must be a positive number (or not given), not 0.0."),
    ],
)
def test_fit_refuses_a_bad_training_setting_before_writing(tmp_path, option, message):
    from vaekit.errors import VaekitError

    data = datasets.load("digits")
    model = vaekit.VAE.for_data(data, latent_dim=2, hidden=(8,))
    with pytest.raises(VaekitError) as err:
        vaekit.fit(model, data, out=tmp_path / "r", progress=False, **option)
    assert str(err.value) == message
    assert not (tmp_path / "r").exists()


def test_factors_that_cannot_be_measured_are_said_not_tracebacks(cli, tmp_path):
    gen = np.random.default_rng(7)
    x = gen.normal(size=(200, 16)).astype(np.float32)
    f1, f2 = gen.integers(-3, 3, 200), gen.integers(10, 14, 200)
    nan = np.stack([f1, f2], 1).astype(float)
    nan[gen.random(200) < 0.05, 0] = np.nan
    cases = {
        "nan": (nan, 2, "the factor 'factor_0' has missing or infinite values"),
        "wide": (np.stack([f1 * 10**12, f2], 1), 0, None),  # huge spacing: ranked, not a 10^13-wide table
        "constant": (np.stack([f1, np.full(200, 7)], 1), 0, "'factor_1' never vary"),
    }
    for name, (factors, status, said) in cases.items():
        np.savez(tmp_path / f"{name}.npz", x=x, factors=factors)
        run = tmp_path / name
        code, _, err = cli("train", "--data", tmp_path / f"{name}.npz", "--epochs", "1", "--out", run, *FAST)
        assert code == 0, err
        code, out, err = cli("evaluate", run, "--metrics", "mig,sap", "--metric-preset", "quick", "--json")
        assert code == status and "Traceback" not in err, (name, err)
        if said:
            assert said in err, (name, err)


def test_twosample_of_one_repeated_row_is_one_sentence(cli, tmp_path):
    import pandas as pd

    pd.DataFrame({"a": [1.0] * 10, "b": [2.0] * 10}).to_csv(tmp_path / "c.csv", index=False)
    code, _, err = cli(
        "twosample", "--data", tmp_path / "c.csv", "--against", tmp_path / "c.csv", "--out", tmp_path / "t"
    )
    assert code == 2 and "hold only 1 distinct row between them" in err and "Traceback" not in err


def test_a_run_displays_its_numbers_and_figures_in_a_notebook(tmp_path):
    """Jupyter's rich display of a run: its folder, the summary's numbers (as summary_frame holds
    them, with their meanings) and the figures its folder holds; the text form is one line."""
    import vaekit

    data = vaekit.datasets.load("digits", test_size=0.2)
    model = vaekit.VAE.for_data(data, latent_dim=2, hidden=(32,), seed=0)
    run = vaekit.fit(model, data, epochs=2, out=tmp_path / "r", progress=False, device="cpu", nll_samples=5)
    page = run._repr_html_()
    frame = run.summary_frame()
    assert (
        frame.loc["elbo", "value"] == run.summary["elbo"]
        and "evidence lower bound" in frame.loc["elbo", "meaning"]
    )
    assert f"{run.summary['elbo']:.6g}" in page and f"{run.summary['rate']:.6g}" in page
    assert page.count("<figure") == 4 and "latent space" in page and str(tmp_path / "r") in page
    assert run.history_frame()["epoch"].tolist() == [1, 2]
    assert repr(run) == f"Run({tmp_path / 'r'}: 2 epochs, elbo {run.summary['elbo']:.6g} nats)"


def test_a_sweep_and_an_anomaly_result_display_themselves_in_a_notebook(tmp_path):
    """vaekit.sweep.run returns its rows as a list that Jupyter shows as the sweep's table and
    figures; analyses.anomaly returns its JSON as a dict shown as its report's table and figures."""
    import json

    import numpy as np
    import pandas as pd

    from vaekit import analyses, sweep

    rows = sweep.run(
        [0.5, 2],
        {"data": "digits", "epochs": 1, "hidden": "32", "nll_samples": 5, "device": "cpu"},
        tmp_path / "sweep",
        progress=False,
    )
    assert isinstance(rows, list) and [r["beta"] for r in rows] == [0.5, 2.0]
    page = rows._repr_html_()
    assert f"{rows[0]['elbo']:.4g}"[:5] in page and page.count("<figure") >= 2 and "rate distortion" in page

    gen = np.random.default_rng(0)
    pd.DataFrame({"a": gen.normal(0, 1, 300), "b": gen.normal(0, 1, 300)}).to_csv(
        tmp_path / "bkg.csv", index=False
    )
    pd.DataFrame({"a": gen.normal(4, 1, 40), "b": gen.normal(4, 1, 40)}).to_csv(
        tmp_path / "sig.csv", index=False
    )
    run = _run_on_table(tmp_path / "bkg.csv")
    result = analyses.anomaly(
        run,
        tmp_path / "anomaly",
        background=str(tmp_path / "bkg.csv"),
        signal=str(tmp_path / "sig.csv"),
        samples=3,
    )
    assert result == json.loads((tmp_path / "anomaly" / "anomaly.json").read_text())
    page = result._repr_html_()
    assert f"{result['scores']['nll']['auc']:.4f}" in page and page.count("<figure") == 2


def _run_on_table(path):
    """A run trained on the table at `path` (one epoch): its folder."""
    import vaekit

    data = vaekit.datasets.load(str(path))
    model = vaekit.VAE.for_data(data, latent_dim=2, hidden=(32,), seed=0)
    out = path.parent / "run"
    vaekit.fit(model, data, epochs=1, out=out, progress=False, device="cpu", nll_samples=5)
    return out
