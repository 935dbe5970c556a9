"""The science workflows: averaged scores and the IS-NLL per example, anomaly evaluation (ROC AUC,
efficiency at background-quantile cuts), the classifier two-sample test, rare and typical
examples, and the table commands, each checked against a known answer or a computation here."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import FAST
from scipy.stats import norm

import vaekit
from vaekit import evaluate, runs, science

COLUMNS = ["pt_j1", "pt_j2", "eta_j1", "mjj", "met", "charge"]


# ----------------------------------------------------------------------------- pure numbers
@pytest.mark.parametrize("separation", [0.5, 1.5])
def test_auc_of_two_gaussians_matches_the_closed_form(separation):
    """Background N(0, 1), signal N(d, 1): AUC = Phi(d / sqrt 2)."""
    gen = np.random.default_rng(3)
    b, s = gen.normal(size=4000), gen.normal(separation, size=3000)
    auc, se = science.auc(b, s)
    exact = norm.cdf(separation / math.sqrt(2))
    assert abs(auc - exact) < 4 * se
    assert 0.003 < se < 0.02  # Hanley-McNeil at these sizes
    flipped, _ = science.auc(s, b)  # signal scoring lower: the AUC says so
    assert flipped == pytest.approx(1 - auc)


def test_efficiency_at_a_quantile_cut_on_a_hand_made_case():
    background = np.arange(1, 101, dtype=float)  # 1..100: the 90% quantile is 90.1
    signal = np.array([5.0, 50, 91, 95, 99, 200])
    (row,) = science.efficiency_at_cuts(background, signal, [0.9])
    assert row["cut"] == pytest.approx(90.1)
    assert row["background_efficiency"] == pytest.approx(0.10)  # 91..100 pass
    assert row["background_events"] == 10
    assert row["signal_efficiency"] == pytest.approx(4 / 6)  # 91, 95, 99, 200


def test_roc_curve_runs_from_nothing_to_everything():
    gen = np.random.default_rng(0)
    curve = science.roc(gen.normal(size=500), gen.normal(1, size=500))
    fpr, tpr = np.array(curve["background_efficiency"]), np.array(curve["signal_efficiency"])
    assert fpr[0] == 0 and fpr[-1] == 1 and tpr[-1] == 1 and np.all(np.diff(fpr) >= 0)


def test_vectorised_balanced_accuracy_equals_scikit_learn():
    from sklearn.metrics import balanced_accuracy_score

    gen = np.random.default_rng(1)
    y, p = gen.integers(0, 2, size=(20, 37)), gen.integers(0, 2, size=37)
    ours = science.balanced_accuracy(y, p)
    np.testing.assert_allclose(ours, [balanced_accuracy_score(row, p) for row in y])


def test_real_vs_real_is_near_half_with_roughly_uniform_p_values():
    gen = np.random.default_rng(7)
    p_values, accuracies = [], []
    for seed in range(8):
        a, b = gen.normal(size=(300, 4)), gen.normal(size=(300, 4))
        r = science.two_sample_test(a, b, "logistic", permutations=300, seed=seed)
        p_values.append(r.p_value)
        accuracies.append(r.accuracy)
        assert abs(r.null.mean() - 0.5) < 0.01
    assert abs(np.mean(accuracies) - 0.5) < 0.03
    assert 0.2 < np.mean(p_values) < 0.8 and min(p_values) > 0.01  # not piled up at 0 or 1


def test_clearly_different_samples_give_a_small_p_value():
    gen = np.random.default_rng(2)
    a = gen.normal(size=(400, 3))
    b = gen.normal(size=(400, 3)) * [1, 1, 2.0]  # one column twice as wide
    r = science.two_sample_test(a, b, "gbt", permutations=500, seed=0)
    assert r.accuracy > 0.6 and r.p_value < 0.01
    assert r.p_value == pytest.approx(1 / 501)  # no permutation reached the observed accuracy
    summary = r.summary()
    assert summary["p_value_at_floor"] and summary["permutations"] == 500
    assert summary["p_value_text"] == "< 0.002 (500 permutations)"
    assert science.p_value_phrase(r.p_value, 500) == "p < 0.002 (500 permutations)"


def test_a_p_value_at_its_floor_is_printed_as_a_bound():
    assert science.p_value_text(1 / 1001, 1000) == "< 0.001 (1,000 permutations)"
    assert science.p_value_text(2 / 1001, 1000) == "0.002"
    assert science.p_value_phrase(0.0312, 1000) == "p = 0.0312"
    assert science.p_value_text(1 / 10001, 10000) == "< 0.0001 (10,000 permutations)"


def test_duplicated_rows_never_straddle_the_split():
    gen = np.random.default_rng(4)
    base = gen.normal(size=(60, 3))
    a = np.repeat(base, 5, axis=0)  # each event five times
    b = np.repeat(base[gen.permutation(60)], 5, axis=0)
    r = science.two_sample_test(a, b, "gbt", permutations=200, seed=0)
    x = np.concatenate([a, b])
    groups, dups = science.row_groups(x)
    assert dups == len(x)
    test = np.zeros(len(x), bool)
    test[r.test_index] = True
    for g in np.unique(groups):
        assert len(np.unique(test[groups == g])) == 1  # all copies on one side
    # the same rows in a and b: nothing to learn once copies stay together
    assert r.p_value > 0.01
    if r.summary()["null_sd"] == 0:  # a constant answer is said, not passed off as a test
        assert "found nothing to tell the samples apart" in r.extra["classifier_note"]


# ----------------------------------------------------------------------------- averaged scores
def test_one_draw_equals_the_loss_path_and_averages_shrink_the_spread(digits_run):
    model = vaekit.load(digits_run)
    x = runs.load_data(digits_run).x_test[:200]
    one = evaluate.per_example_terms(model, x, seed=5)
    for k in (1, 8):
        s = evaluate.sampled_scores(model, x, k, seed=5)
        for name in ("loss", "distortion", "rate", "squared_error"):
            np.testing.assert_allclose(s[name], one[name], rtol=1e-6)  # draw 1 is the loss path's draw
    k1 = evaluate.sampled_scores(model, x, 1, seed=5)
    np.testing.assert_allclose(k1["distortion_avg"], one["distortion"], rtol=1e-5)

    def spread(k):
        draws = np.stack([evaluate.sampled_scores(model, x, k, seed=s)["neg_elbo_avg"] for s in range(6)])
        return draws.std(0).mean()

    s1, s16 = spread(1), spread(16)
    assert s16 < 0.45 * s1  # 1/sqrt(16) = 0.25 in expectation


def test_is_nll_per_example_agrees_with_evaluate_nll(digits_run):
    model = vaekit.load(digits_run)
    x = runs.load_data(digits_run).x_test[:100]
    ours = evaluate.sampled_scores(model, x, 500, seed=1)["nll"]
    theirs = evaluate.nll(model, x, samples=500, seed=2).per_example
    diff = ours - theirs  # two independent K = 500 estimates of the same -log p(x) per example
    assert abs(diff.mean()) < 4 * diff.std(ddof=1) / math.sqrt(len(diff)) + 1e-3
    # they disagree no more than evaluate.nll disagrees with itself under another seed
    own = theirs - evaluate.nll(model, x, samples=500, seed=3).per_example
    assert np.abs(diff).mean() < 1.5 * np.abs(own).mean()
    assert ours.mean() < evaluate.sampled_scores(model, x, 500, seed=1)["neg_elbo_avg"].mean()


def test_an_autoencoder_has_no_averages_and_refuses_k(cli, tmp_path):
    out = tmp_path / "ae"
    assert (
        cli(
            "train",
            "--data",
            "digits",
            "--model",
            "ae",
            "--latent-dim",
            "3",
            "--epochs",
            "1",
            "--out",
            out,
            *FAST,
        )[0]
        == 0
    )
    code, _, err = cli("score", out, "--data", "digits", "--out", tmp_path / "s.csv")
    assert code == 0, err
    assert list(pd.read_csv(tmp_path / "s.csv").columns) == ["index", "label", "distortion", "squared_error"]
    code, _, err = cli("score", out, "--data", "digits", "--out", tmp_path / "t.csv", "--samples", "5")
    assert code == 2 and "one code per example" in err and not (tmp_path / "t.csv").exists()


# ----------------------------------------------------------------------------- a detector table
def _events(n: int, gen, signal: bool = False) -> pd.DataFrame:
    z = gen.normal(size=(n, 2))
    w = np.array([[1.0, 0.5, 0.0, 0.3, 0.6], [0.0, 1.0, 0.7, 0.5, 0.0]])
    x = z @ w + 0.2 * gen.normal(size=(n, 5))
    if signal:
        x[:, 0] += 2.5
        x[:, 3] *= 2.0
    frame = pd.DataFrame(x * [50, 30, 1, 100, 10] + [100, 40, 0, 300, 20], columns=COLUMNS[:5])
    frame["charge"] = gen.choice([-1, 1], size=n)
    frame.insert(0, "event_id", [f"{'s' if signal else 'b'}{i:05d}" for i in range(n)])
    frame["process"] = "ttbar" if signal else "qcd"
    return frame


@pytest.fixture(scope="module")
def collider(tmp_path_factory):
    """Background events to train on, held-out background, signal, and one mixed file; every
    file has a text event id (not a feature) and a text process label."""
    from vaekit.cli import main

    gen = np.random.default_rng(0)
    folder = tmp_path_factory.mktemp("collider")
    _events(1500, gen).to_csv(folder / "train.csv", index=False)
    held = _events(600, gen)
    sig = _events(400, gen, signal=True)
    held.to_csv(folder / "bkg.csv", index=False)
    sig.to_parquet(folder / "sig.parquet", index=False)
    pd.concat([held, sig]).to_csv(folder / "mixed.csv", index=False)
    run = folder / "run"
    # 8 epochs: a constant rate (the cosine default for tables anneals too soon in so short a run:
    # ROC AUC 0.86 against 0.91; at the default 30 epochs both reach 1.0)
    main(["train", "--data", folder / "train.csv", "--drop-columns", "event_id,process", "--latent-dim", "2",
          "--discrete-columns", "charge", "--lr-schedule", "constant",
          "--epochs", "8", "--out", str(run), *FAST])  # fmt: skip
    return folder, run, held, sig


def test_score_keeps_ids_and_labels_and_explains_its_columns(cli, collider, tmp_path):
    folder, run, _, sig = collider
    out = tmp_path / "scores.csv"
    code, _, err = cli("score", run, "--data", folder / "sig.parquet", "--samples", "20",
                       "--keep-columns", "event_id", "--label-column", "process", "--out", out)  # fmt: skip
    assert code == 0, err
    frame = pd.read_csv(out)
    assert list(frame.columns[:3]) == ["index", "label", "event_id"]
    assert list(frame["event_id"]) == list(sig["event_id"]) and set(frame["label"]) == {"ttbar"}
    assert {"neg_elbo_avg", "distortion_avg", "rate_avg", "nll"} <= set(frame.columns)
    np.testing.assert_allclose(frame["neg_elbo_avg"], frame["distortion_avg"] + frame["rate_avg"], rtol=1e-5)
    assert frame["nll"].mean() < frame["neg_elbo_avg"].mean()  # the IWAE bound is tighter
    sidecar = json.loads(out.with_suffix(".json").read_text())
    assert sidecar["samples"] == 20 and "nats" in sidecar["columns"]["nll"]
    assert set(sidecar["columns"]) == set(frame.columns)
    # the scores themselves: the model's own IS-NLL of the same rows
    model = vaekit.load(run)
    data = runs.load_data(run)
    x = data.scaling.apply(sig[data.column_names].to_numpy())
    again = evaluate.sampled_scores(model, x, 20, seed=0)
    np.testing.assert_allclose(frame["nll"], again["nll"], rtol=1e-5)


def test_anomaly_from_two_files_and_from_one_labelled_file(cli, collider, tmp_path):
    folder, run, _, _ = collider
    code, out, err = cli("anomaly", run, "--background", folder / "bkg.csv",
                         "--signal", folder / "sig.parquet",
                         "--samples", "10", "--out", tmp_path / "a")  # fmt: skip
    assert code == 0, err
    result = json.loads((tmp_path / "a" / "anomaly.json").read_text())
    assert set(result["scores"]) == {"neg_elbo_avg", "distortion_avg", "rate_avg", "nll", "squared_error"}
    assert result["n_background"] == 600 and result["n_signal"] == 400
    assert result["scores"]["nll"]["auc"] > 0.9  # the signal is far from the background
    cut = result["scores"]["nll"]["cuts"][1]
    assert cut["quantile"] == 0.99 and cut["background_events"] == 6
    for name in ("roc.png", "score_histograms.png"):
        assert (tmp_path / "a" / "figures" / name).stat().st_size > 5000
    assert "ROC AUC" in (tmp_path / "a" / "report.html").read_text() and "nll" in out
    # one file, told apart by its label column: the same rows give the same AUC up to the draws
    code, _, err = cli("anomaly", run, "--data", folder / "mixed.csv", "--label-column", "process",
                       "--signal-label", "ttbar", "--samples", "10", "--out", tmp_path / "b")  # fmt: skip
    assert code == 0, err
    one = json.loads((tmp_path / "b" / "anomaly.json").read_text())
    assert one["n_background"] == 600 and one["n_signal"] == 400
    assert abs(one["scores"]["nll"]["auc"] - result["scores"]["nll"]["auc"]) < 0.02
    # the training file as background: only its test split, and the user is told
    code, _, err = cli("anomaly", run, "--background", folder / "train.csv",
                       "--signal", folder / "sig.parquet",
                       "--samples", "2", "--out", tmp_path / "c")  # fmt: skip
    assert code == 0 and "test-split rows" in err
    assert json.loads((tmp_path / "c" / "anomaly.json").read_text())["n_background"] == 300
    # a file that holds some of the training rows: found by content and counted
    train = pd.read_csv(folder / "train.csv")
    reused = pd.concat([train.iloc[:50], pd.read_parquet(folder / "sig.parquet").iloc[:30]])
    reused.to_csv(tmp_path / "reused.csv", index=False)
    code, _, err = cli("anomaly", run, "--data", tmp_path / "reused.csv", "--label-column", "process",
                       "--signal-label", "ttbar", "--samples", "2", "--out", tmp_path / "d")  # fmt: skip
    in_training = int(np.isin(np.arange(50), runs.load_data(run).train_idx).sum())
    assert code == 0 and 30 < in_training < 50
    assert f"{in_training} of the 80 rows of reused.csv ({in_training} background, 0 signal)" in err
    # nothing overwritten without --overwrite
    code, _, err = cli("anomaly", run, "--data", folder / "mixed.csv", "--label-column", "process",
                       "--signal-label", "ttbar", "--out", tmp_path / "b")  # fmt: skip
    assert code == 2 and "--overwrite" in err


@pytest.mark.parametrize(
    "args, message",
    [
        (["--background", "{bkg}", "--signal", "{other}"], "lacks the column"),
        (["--background", "{bkg}", "--signal", "{empty}"], "empty"),
        (["--background", "{bkg}", "--signal", "{sig}", "--samples", "0"], "at least 1"),
        (["--data", "{mixed}", "--label-column", "process", "--signal-label", "wz"], "no value 'wz'"),
        (["--background", "{bkg}"], "--signal"),
        (["--background", "{bkg}", "--signal", "{sig}", "--quantiles", "0.9,99"], "between 0 and 1"),
    ],
)
def test_anomaly_bad_input_is_one_sentence(cli, collider, tmp_path, args, message):
    folder, run, _, _ = collider
    other = tmp_path / "other.csv"
    pd.DataFrame({"a": [1.0, 2.0], "b": [3.0, 4.0]}).to_csv(other, index=False)
    (tmp_path / "empty.csv").write_text("")
    paths = {"bkg": folder / "bkg.csv", "sig": folder / "sig.parquet", "mixed": folder / "mixed.csv",
             "other": other, "empty": tmp_path / "empty.csv"}  # fmt: skip
    code, _, err = cli("anomaly", run, *[a.format(**paths) for a in args], "--out", tmp_path / "x")
    assert code == 2 and message in err and "Traceback" not in err
    errors = [line for line in err.strip().splitlines() if not line.startswith("warning:")]
    assert len(errors) == 1 and errors[0].startswith("error: ")


def test_twosample_of_a_run_has_a_control_near_half(cli, collider, tmp_path):
    folder, run, _, _ = collider
    code, out, err = cli("twosample", run, "--permutations", "200", "--out", tmp_path / "t")
    assert code == 0, err
    r = json.loads((tmp_path / "t" / "twosample.json").read_text())
    assert r["model"].startswith("draws x ~ p(x|z)")
    assert r["samples"]["n_a"] == r["samples"]["n_b"] == 300  # the run's test split, and as many draws
    assert abs(r["control"]["balanced_accuracy"] - 0.5) < 0.1
    assert 0 < r["p_value"] <= 1 and r["permutations"] == 200
    shown = science.p_value_phrase(r["p_value"], 200)
    assert shown in out and ("0.00498" not in out or not r["p_value_at_floor"])
    extremes = pd.read_csv(tmp_path / "t" / "extremes.csv")
    # the real rows as read with their identifier, the model's rows in the user's units
    assert list(extremes.columns[2:]) == ["event_id", *COLUMNS] and len(extremes) == 24
    assert extremes["event_id"].notna().sum() == 8 and set(extremes["charge"]) <= {-1, 1}  # 8 real rows
    # two files: signal against background is told apart, background halves are not
    code, _, err = cli("twosample", "--data", folder / "bkg.csv", "--against", folder / "sig.parquet",
                       "--label-column", "process", "--drop-columns", "event_id", "--permutations", "200",
                       "--out", tmp_path / "u")  # fmt: skip
    assert code == 0, err
    assert json.loads((tmp_path / "u" / "twosample.json").read_text())["p_value"] < 0.01
    code, _, err = cli("twosample", "--data", folder / "bkg.csv", "--against", folder / "sig.parquet",
                       "--out", tmp_path / "v")  # fmt: skip
    assert code == 0 and "'event_id' holds row identifiers" in err  # said, and not a feature


def test_rare_evaluate_data_reconstruct_and_sample_a_table(cli, collider, tmp_path):
    folder, run, held, _ = collider
    code, out, err = cli("rare", run, "--data", folder / "bkg.csv", "-k", "3", "--samples", "10",
                         "--out", tmp_path / "r")  # fmt: skip
    assert code == 0, err and "atypical" in err
    table = pd.read_csv(tmp_path / "r" / "rare.csv")
    model = vaekit.load(run)
    data = runs.load_data(run)
    x = data.schema.to_model(held[COLUMNS]).astype(np.float32)
    nll = evaluate.sampled_scores(model, x, 10, seed=0)["nll"]
    rarest = table[table["group"] == "rarest"]
    assert list(rarest["index"]) == list(np.argsort(-nll)[:3])
    np.testing.assert_allclose(
        rarest[COLUMNS].to_numpy(), held[COLUMNS].to_numpy()[rarest["index"]], rtol=1e-5
    )
    assert "atypical" in (tmp_path / "r" / "report.html").read_text()

    code, out, err = cli("evaluate", run, "--data", folder / "bkg.csv", "--nll-samples", "10", "--json")
    assert code == 0, err
    figures = json.loads(out)
    assert figures["n"] == 600 and figures["nll"] == pytest.approx(nll.mean(), rel=1e-5)
    assert figures["elbo"] <= -figures["nll"] + 1e-6
    assert figures["nll_user_units"] == pytest.approx(figures["nll"] - model.log_jacobian())

    code, _, err = cli("reconstruct", run, "--data", folder / "bkg.csv", "--out", tmp_path / "rec.csv")
    assert code == 0, err
    rec = pd.read_csv(tmp_path / "rec.csv")
    assert list(rec.columns) == ["event_id", *COLUMNS]  # the row identifiers are carried through
    assert list(rec["event_id"]) == list(held["event_id"])
    rec = rec[COLUMNS]
    with torch.no_grad():
        expected = data.to_user_units(
            model.reconstruct(torch.as_tensor(data.scaling.apply(held[COLUMNS].to_numpy()))).numpy()
        )
    np.testing.assert_allclose(rec.to_numpy(), expected, rtol=1e-5, atol=1e-4)
    assert rec["mjj"].mean() > 200  # GeV stays GeV

    code, _, err = cli("sample", run, "-n", "50", "--draw", "--out", tmp_path / "x.csv")
    assert code == 0 and "draws of p(x|z)" in _
    assert list(pd.read_csv(tmp_path / "x.csv").columns) == COLUMNS
    code, _, err = cli("sample", run, "-n", "50", "--out", tmp_path / "x.csv")
    assert code == 2 and "--overwrite" in err
    assert cli("sample", run, "-n", "50", "--out", tmp_path / "x.csv", "--overwrite")[0] == 0


# ----------------------------------------------------------------------------- images
def test_anomaly_twosample_and_rare_on_images(cli, digits_run, tmp_path):
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = digits.images[:, None].astype(np.float32)
    np.save(tmp_path / "normal.npy", images[:300])
    np.save(tmp_path / "odd.npy", 16.0 - images[:200])  # inverted digits
    code, _, err = cli("anomaly", digits_run, "--background", tmp_path / "normal.npy", "--signal",
                       tmp_path / "odd.npy", "--samples", "5", "--out", tmp_path / "a")  # fmt: skip
    assert code == 0, err
    r = json.loads((tmp_path / "a" / "anomaly.json").read_text())
    assert r["scores"]["nll"]["auc"] > 0.95
    # one labelled file (an .npz with y) instead of two
    np.savez(
        tmp_path / "mixed.npz", x=np.r_[images[:300], 16.0 - images[:200]], y=np.r_[[0] * 300, [1] * 200]
    )
    code, _, err = cli("anomaly", digits_run, "--data", tmp_path / "mixed.npz", "--signal-label", "1",
                       "--samples", "5", "--out", tmp_path / "m")  # fmt: skip
    assert code == 0, err
    mixed = json.loads((tmp_path / "m" / "anomaly.json").read_text())
    assert (mixed["n_background"], mixed["n_signal"]) == (300, 200)
    assert mixed["scores"]["nll"]["auc"] == pytest.approx(r["scores"]["nll"]["auc"], abs=0.02)
    code, _, err = cli(
        "twosample", digits_run, "--decoder-mean", "--permutations", "100", "--out", tmp_path / "t"
    )
    assert code == 0, err
    assert (tmp_path / "t" / "figures" / "extremes.png").stat().st_size > 2000
    code, out, err = cli("rare", digits_run, "-k", "4", "--samples", "5", "--out", tmp_path / "r")
    assert code == 0, err
    assert (tmp_path / "r" / "figures" / "rare_and_typical.png").exists()
    table = pd.read_csv(tmp_path / "r" / "rare.csv")
    assert list(table["group"]) == ["rarest"] * 4 + ["most typical"] * 4 and "label" in table
    assert table["nll"][:4].min() >= table["nll"][4:].max()


def test_a_table_run_shows_its_marginals_in_its_units(cli, collider, tmp_path):
    folder, run, _, _ = collider
    assert runs.read_config(run)["data"]["discrete_columns"] == ["charge"]
    assert (run / "figures" / "marginals.png").stat().st_size > 10000
    fig = __import__("vaekit.report", fromlist=["x"]).table_marginals(vaekit.load(run), runs.load_data(run))
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    types = runs.load_data(run).schema.types
    assert types["charge"] == "binary"  # two values: drawn as bars over them
    assert titles == [f"{c} ({types[c]})" for c in COLUMNS]
    charge = fig.axes[COLUMNS.index("charge")]
    ticks = [t.get_text() for t in charge.get_xticklabels()]
    assert {"-1", "1"} <= set(ticks)  # bars over its (rounded) values, not a histogram
    data_bars = charge.containers[0]  # the data's shares of each value
    shares = dict(zip(ticks, [b.get_height() for b in data_bars], strict=True))
    assert shares["-1"] + shares["1"] == pytest.approx(1.0) and 0.35 < shares["1"] < 0.65
    mjj = fig.axes[COLUMNS.index("mjj")]
    assert 100 < np.mean(mjj.get_xlim()) < 600  # GeV stays GeV
    code, _, err = cli("train", "--data", folder / "train.csv", "--drop-columns", "event_id,process",
                       "--discrete-columns", "spin", "--epochs", "1",
                       "--out", tmp_path / "r", *FAST)  # fmt: skip
    assert code == 2 and "'spin'" in err and "not a feature column" in err


def test_neighbors_of_a_new_example_and_two_files_in_one_latent_figure(cli, collider, tmp_path):
    folder, run, held, sig = collider
    code, out, err = cli("neighbors", run, "--query", folder / "sig.parquet", "--index", "5", "-k", "4",
                         "--out", tmp_path / "n.csv")  # fmt: skip
    assert code == 0, err
    table = pd.read_csv(tmp_path / "n.csv")
    assert list(table["role"]) == ["query"] + ["neighbour"] * 4
    np.testing.assert_allclose(table[COLUMNS].to_numpy()[0], sig[COLUMNS].to_numpy()[5], rtol=1e-5)
    # brute force over the run's own data set
    model, data = vaekit.load(run), runs.load_data(run)
    codes = evaluate.encode_means(model, data.x)[0]
    query = evaluate.encode_means(model, data.scaling.apply(sig[COLUMNS].to_numpy()[5:6]))[0]
    expected = np.argsort(np.linalg.norm(codes - query, axis=1))[:4]
    assert list(table["index"][1:]) == list(expected)
    np.testing.assert_allclose(table[COLUMNS].to_numpy()[1:], data.to_user_units(data.x[expected]), rtol=1e-5)
    code, _, err = cli("neighbors", run, "--query", folder / "sig.parquet", "--index", "400")
    assert code == 2 and "between 0 and 399" in err

    code, out, err = cli("latent", run, "--data", folder / "bkg.csv", "--data", folder / "sig.parquet",
                         "--out", tmp_path / "l.png")  # fmt: skip
    assert code == 0, err and "sig.parquet: 400" in out
    assert (tmp_path / "l.png").stat().st_size > 10000
    code, _, err = cli("latent", run, "--data", folder / "bkg.csv", "--out", tmp_path / "l.png")
    assert code == 2 and "--overwrite" in err


def test_anomaly_on_a_sweep_reports_the_auc_per_beta(cli, collider, tmp_path):
    """Every run of a sweep over two betas and two seeds scored in its own folder; the AUC per
    run is that run's own result; each beta's mean and sd over its seeds in the record, the
    printed table and the report."""
    folder, _, _, _ = collider
    sweep = tmp_path / "sweep"
    code, _, err = cli("sweep", "--beta", "0.5", "4", "--seeds", "2", "--data", folder / "train.csv",
                       "--drop-columns", "event_id,process", "--latent-dim", "2", "--epochs", "2",
                       "--out", sweep, *FAST)  # fmt: skip
    assert code == 0, err
    code, out, err = cli("anomaly", sweep, "--background", folder / "bkg.csv",
                         "--signal", folder / "sig.parquet", "--samples", "4",
                         "--out", tmp_path / "a")  # fmt: skip
    assert code == 0, err
    record = json.loads((tmp_path / "a" / "anomaly_sweep.json").read_text())
    table = record["rows"]
    assert [(r["beta"], r["seed"]) for r in table] == [(0.5, 0), (0.5, 1), (4.0, 0), (4.0, 1)]
    for r in table:  # each run's AUC is its own anomaly result's, in the run's own folder
        one = json.loads(
            (tmp_path / "a" / f"beta-{r['beta']:g}-seed{r['seed']}" / "anomaly.json").read_text()
        )
        assert r["nll"] == one["scores"]["nll"]["auc"] and 0 <= r["nll"] <= 1
        assert one["run"] == str(sweep / f"beta-{r['beta']:g}-seed{r['seed']}")
    assert table[0]["nll"] != table[1]["nll"]  # two seeds, two models
    for entry, pair in zip(record["over_seeds"], (table[:2], table[2:]), strict=True):
        aucs = [r["nll"] for r in pair]
        assert entry["value"] == pair[0]["beta"] and entry["seeds"] == [0, 1]
        assert entry["nll"] == pytest.approx(np.mean(aucs)) and entry["nll_sd"] == pytest.approx(
            np.std(aucs, ddof=1)
        )
        mean_line = [line for line in out.splitlines() if line.split()[:2] == [f"{entry['value']:g}", "mean"]]
        assert f"{entry['nll']:.4f}+-{entry['nll_sd']:.4f}" in mean_line[0]
    page = (tmp_path / "a" / "report.html").read_text()
    assert "mean ± standard deviation over seeds (ROC AUC)" in page and "<th>seed</th>" in page
    assert (tmp_path / "a" / "figures" / "auc_vs_beta.png").stat().st_size > 5000
    assert "ROC AUC per beta" in out


def test_a_table_run_writes_its_traversals_as_a_table_in_its_units(collider):
    _, run, _, _ = collider
    table = pd.read_csv(run / "traversals.csv")
    assert list(table.columns) == ["latent", "z", *COLUMNS]
    assert set(table["latent"]) == {"z1", "z2"} and len(table) == 18
    model, data = vaekit.load(run), runs.load_data(run)
    first = table[table["latent"] == table["latent"][0]]
    np.testing.assert_allclose(first["z"], np.linspace(-2.5, 2.5, 9), atol=1e-6)
    # each row is the decoder's mean at the code of the preview example with one latent swept
    means = evaluate.encode_means(model, data.x[data.preview_index(500)][:1])[0]
    d = int(table["latent"][0][1:]) - 1
    z = torch.as_tensor(np.repeat(means, 9, 0))
    z[:, d] = torch.linspace(-2.5, 2.5, 9)
    with torch.no_grad():
        expected = data.to_user_units(model.decode(z).mean.numpy())
    np.testing.assert_allclose(first[COLUMNS].to_numpy(), expected, rtol=1e-4, atol=1e-3)
    assert "Traversals (decoder means" in (run / "report.html").read_text()


def test_small_halves_switch_classifier_and_a_constant_classifier_is_refused(monkeypatch):
    gen = np.random.default_rng(4)
    a, b = gen.normal(size=(30, 3)), gen.normal(size=(30, 3)) + 1.5
    result = science.two_sample_test(a, b, "gbt", permutations=200)
    # 30 training rows: gradient boosting could not split them (a constant answer, a fake 0.5)
    assert result.classifier == "logistic"
    assert "too few for gradient boosting" in result.extra["classifier_note"]
    assert result.accuracy > 0.7 and result.summary()["null_sd"] > 0
    from sklearn.dummy import DummyClassifier

    monkeypatch.setattr(science, "_classifier", lambda name, seed: DummyClassifier(strategy="prior"))
    with pytest.raises(vaekit.VaekitError, match="gave all 30 held-out examples the same answer"):
        science.two_sample_test(a, b, "logistic", permutations=200)


def test_too_few_permutations_to_resolve_p_is_refused():
    gen = np.random.default_rng(9)
    a, b = gen.normal(size=(60, 2)), gen.normal(size=(60, 2))
    with pytest.raises(
        vaekit.VaekitError, match="--permutations must be at least 19, not 1: P permutations cannot"
    ):
        science.two_sample_test(a, b, "logistic", permutations=1, seed=0)
    assert science.two_sample_test(a, b, "logistic", permutations=19, seed=0).p_value >= 1 / 20


def test_twosample_draws_no_more_than_the_real_rows(cli, digits_run, tmp_path):
    code, out, err = cli(
        "twosample", digits_run, "-n", "100000", "--permutations", "50", "--out", tmp_path / "t"
    )
    assert code == 0, err
    r = json.loads((tmp_path / "t" / "twosample.json").read_text())
    assert r["samples"]["n_a"] == r["samples"]["n_b"] == 359  # the digits test split
    assert "-n 100000 is more than the 359 real rows" in err
