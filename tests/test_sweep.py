import json
import os

import numpy as np
import pytest
import torch
from conftest import FAST

SUMMARY_KEYS = {"elbo", "rate", "distortion", "knn_accuracy", "active_units", "aggregate_posterior_kl"}


@pytest.fixture(scope="module")
def digits_sweep(tmp_path_factory):
    from vaekit.cli import main

    out = tmp_path_factory.mktemp("sweeps") / "s"
    main(["sweep", "--beta", "0", "1", "--data", "digits", "--epochs", "2", "--out", str(out), *FAST])
    return out


def test_sweep_writes_every_file(digits_sweep):
    for name in ("sweep.json", "report.html", "figures/latent_panels.png", "figures/rate_distortion.png"):
        assert (digits_sweep / name).stat().st_size > 0, name
    rows = json.loads((digits_sweep / "sweep.json").read_text())
    assert [r["beta"] for r in rows] == [0.0, 1.0]
    for r in rows:
        assert SUMMARY_KEYS <= set(r) and r["source"] == "separate"
        assert (digits_sweep / r["run"] / "model.safetensors").exists()
        assert r["settings"]["beta"] == r["beta"] and r["settings"]["epochs"] == 2
    page = (digits_sweep / "report.html").read_text()
    assert page.count("data:image/png;base64,") == 2
    # the table holds each run's numbers, in beta order
    cells = [f"<td>{r['rate']:.4g}</td>" for r in rows] + [f"<td>{r['elbo']:.4g}</td>" for r in rows]
    positions = [page.index(c) for c in cells]
    assert positions[0] < positions[1] and positions[2] < positions[3]
    # each row is its run folder's own summary
    for r in rows:
        own = json.loads((digits_sweep / r["run"] / "summary.json").read_text())
        assert (r["rate"], r["distortion"], r["elbo"]) == (own["rate"], own["distortion"], own["elbo"])


def test_interrupted_sweep_resumes_finished_and_partial_runs(cli, digits_sweep, tmp_path):
    """A finished run is kept as it is; a run stopped after epoch 1 of 2 continues from its
    checkpoint (epoch 1 is not retrained) and ends bit-identical to the uninterrupted run."""
    import shutil

    copy = tmp_path / "s"
    copy.mkdir()
    shutil.copytree(digits_sweep / "beta-0", copy / "beta-0")
    done = copy / "beta-0" / "model.safetensors"
    before = done.stat().st_mtime_ns
    # beta = 1 stopped after its first epoch: a checkpoint at epoch 1, no summary
    partial = copy / "beta-1"
    code, _, err = cli("train", "--data", "digits", "--beta", "1", "--epochs", "1", "--out", partial, *FAST)
    assert code == 0, err
    (partial / "summary.json").unlink()
    first_epoch = (partial / "metrics.jsonl").read_text().splitlines()
    assert torch.load(partial / "checkpoint.pt", weights_only=True)["epoch"] == 1
    code, out, err = cli(
        "sweep", "--beta", "0", "1", "--data", "digits", "--epochs", "2", "--out", copy, *FAST
    )
    assert code == 0, err
    assert "1 of 2 runs already done" in out
    assert done.stat().st_mtime_ns == before
    lines = (partial / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 2 and lines[0] == first_epoch[0]  # epoch 1's row (and its seconds) kept
    reference = (digits_sweep / "beta-1" / "model.safetensors").read_bytes()
    assert (partial / "model.safetensors").read_bytes() == reference
    original = json.loads((digits_sweep / "sweep.json").read_text())
    again = json.loads((copy / "sweep.json").read_text())
    assert [r["elbo"] for r in again] == [r["elbo"] for r in original]
    # the same sweep asked with other learning settings: refused, naming the first difference
    listing = sorted((p.name, p.stat().st_mtime_ns) for p in copy.rglob("*"))
    args = ("sweep", "--beta", "0", "1", "--data", "digits", "--epochs", "2", *FAST)
    for option, said in ((("--hidden", "32"), "hidden 64, not 32"), (("--epochs", "3"), "epochs 2, not 3")):
        code, _, err = cli(*args, *option, "--out", copy)
        assert code == 2 and f"{copy / 'beta-0'} was trained with {said}; sweep into another --out" in err
    assert sorted((p.name, p.stat().st_mtime_ns) for p in copy.rglob("*")) == listing


def test_sweep_with_two_jobs_gives_the_same_numbers(cli, digits_sweep, tmp_path):
    """--jobs 2 trains the runs in two spawned processes; the numbers are those of one process."""
    code, out, err = cli(
        "sweep", "--beta", "0", "1", "--data", "digits", "--epochs", "2", "--jobs", "2",
        "--out", tmp_path / "s", *FAST,
    )  # fmt: skip
    assert code == 0, err
    one = json.loads((digits_sweep / "sweep.json").read_text())
    two = json.loads((tmp_path / "s" / "sweep.json").read_text())
    for key in ("rate", "distortion", "elbo", "nll"):
        assert [r[key] for r in two] == pytest.approx([r[key] for r in one], rel=1e-5), key


def test_figures_draw_the_numbers_of_sweep_json(digits_sweep):
    """The rate-distortion points are sweep.json's, the dashed line passes through the best-ELBO
    run, and the latent panels are titled by beta in order with the regimes named."""
    from vaekit import plots
    from vaekit import sweep as sw

    rows = json.loads((digits_sweep / "sweep.json").read_text())
    fig = plots.rate_distortion(rows, sw.setting_of(rows), [sw.value_of(r) for r in rows])
    ax = fig.axes[0]
    points = np.concatenate([c.get_offsets() for c in ax.collections])
    np.testing.assert_allclose(points, [[r["rate"], r["distortion"]] for r in rows])
    best = max(rows, key=lambda r: r["elbo"])
    (line,) = [line for line in ax.lines if line.get_linestyle() == "--"]
    xs, ys = line.get_data()
    np.testing.assert_allclose(xs + ys, best["rate"] + best["distortion"])
    assert f"beta = {best['beta']:g}" in line.get_label()
    assert ax.get_xlabel().startswith("rate") and ax.get_ylabel().startswith("distortion")

    entries, data = sw._models(digits_sweep, rows)
    panels = plots.latent_panels(entries, data)
    titles = [a.get_title() for a in panels.axes if a.get_title().startswith("beta")]
    assert titles == ["beta = 0\npure reconstruction", "beta = 1\nmore latent regularisation"]


def test_bad_betas(cli, tmp_path):
    code, _, err = cli("sweep", "--beta", "0", "-1", "--data", "digits", "--out", tmp_path / "x")
    assert code == 2 and "beta must be a number of at least 0" in err
    code, _, err = cli("sweep", "--data", "digits", "--out", tmp_path / "x")
    assert code == 2 and "Give the betas" in err


def test_sweep_over_an_objective_setting(cli, tmp_path):
    """--over tc-weight trains one beta-TCVAE per value: each run's loss is its own objective's
    (distortion + rate + (tc_weight - 1) tc at alpha = gamma = 1), the rows name the setting, the
    report's table has the objective's terms, and the CLI prints the swept value."""
    out = tmp_path / "s"
    code, text, err = cli(
        "sweep", "--over", "tc-weight", "1", "8", "--objective", "beta-tcvae", "--data", "digits",
        "--epochs", "2", "--out", out, *FAST,
    )  # fmt: skip
    assert code == 0, err
    rows = json.loads((out / "sweep.json").read_text())
    assert [(r["setting"], r["value"], r["beta"], r["run"]) for r in rows] == [
        ("tc_weight", 1.0, 1.0, "tc-weight-1"),
        ("tc_weight", 8.0, 1.0, "tc-weight-8"),
    ]
    for r in rows:
        assert r["settings"]["tc_weight"] == r["value"] and r["settings"]["objective"] == "beta-tcvae"
        assert r["objective_terms"] == ["mi", "tc", "dimwise_kl"]
        # the loss path's own terms (one draw, the last epoch's test pass): loss = d + r + (w - 1) tc
        last = json.loads((out / r["run"] / "metrics.jsonl").read_text().splitlines()[-1])
        expected = last["test_distortion"] + last["test_rate"] + (r["value"] - 1.0) * last["test_tc"]
        assert last["test_loss"] == pytest.approx(expected, rel=1e-5, abs=1e-4)
    last = json.loads((out / rows[1]["run"] / "metrics.jsonl").read_text().splitlines()[-1])
    assert abs(last["test_loss"] - last["test_distortion"] - last["test_rate"]) > 1e-3  # the weight acted
    page = (out / "report.html").read_text()
    assert "<th>tc_weight</th>" in page and "<th>tc</th>" in page and f"<td>{rows[1]['tc']:.4g}</td>" in page
    assert "tc_weight" in text.splitlines()[1] and text.splitlines()[3].split()[0] == "8"
    # the same folder cannot take a sweep over another setting
    code, _, err = cli("sweep", "--beta", "0", "--data", "digits", "--out", out, *FAST)
    assert code == 2 and "holds a sweep over tc_weight, not beta" in err
    # anomaly on the sweep: one result per run, the AUC against the swept value
    from sklearn.datasets import load_digits

    images = load_digits().images[:, None].astype(np.float32)
    np.save(tmp_path / "normal.npy", images[:200])
    np.save(tmp_path / "odd.npy", 16.0 - images[:100])
    code, text, err = cli("anomaly", out, "--background", tmp_path / "normal.npy", "--signal",
                          tmp_path / "odd.npy", "--samples", "3", "--out", tmp_path / "a")  # fmt: skip
    assert code == 0, err
    table = json.loads((tmp_path / "a" / "anomaly_sweep.json").read_text())
    assert table["setting"] == "tc_weight" and [r["value"] for r in table["rows"]] == [1.0, 8.0]
    for r in table["rows"]:
        own = json.loads((tmp_path / "a" / f"tc-weight-{r['value']:g}" / "anomaly.json").read_text())
        assert r["nll"] == own["scores"]["nll"]["auc"]
    assert (tmp_path / "a" / "figures" / "auc_vs_tc_weight.png").stat().st_size > 5000
    assert text.split()[0] == "tc_weight" and "ROC AUC per tc_weight" in text


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--over", "hidden", "8", "16"], "--over hidden: not a numeric setting to sweep"),
        (["--over", "devices", "1", "2"], "--over devices: not a numeric setting to sweep"),
        (["--over", "lr", "0.001", "--beta", "2"], "Give either --beta values or --over lr values"),
        (
            ["--over", "tc-weight", "1", "--tc-weight", "3", "--objective", "beta-tcvae"],
            "is the swept setting",
        ),
        (["--over", "tc-weight", "1", "2"], "--tc-weight applies to the beta-tcvae objective, not beta-elbo"),
        (["--over", "lr", "0.001", "-1"], "lr must be a positive number, not -1.0."),
        (["--over", "latent-dim", "2", "2.5"], "latent_dim must be a whole number, not '2.5'"),
        (["--over", "seed", "1", "1"], "repeat a value"),
        (["--over", "gamma", "40", "nan", "--objective", "factorvae"], "must be a finite number"),
        (["--over", "lr"], "Give the values to sweep after --over lr"),
    ],
)
def test_bad_sweeps_over_a_setting_write_nothing(cli, tmp_path, args, message):
    code, _, err = cli("sweep", *args, "--data", "digits", "--epochs", "1", "--out", tmp_path / "x", *FAST)
    assert code == 2 and message in err, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "x").exists()


def test_beta_conditioned_model_orders_rates(cli, tmp_path):
    run = tmp_path / "cond"
    code, _, err = cli(
        "train",
        "--data",
        "digits",
        "--beta-range",
        "0.01",
        "100",
        "--latent-dim",
        "4",
        "--epochs",
        "4",
        "--out",
        run,
        *FAST,
    )
    assert code == 0, err
    code, out, err = cli(
        "sweep", "--from", run, "--beta", "0.1", "10", "--out", tmp_path / "sw", "--nll-samples", "5"
    )
    assert code == 0, err
    rows = json.loads((tmp_path / "sw" / "sweep.json").read_text())
    assert [r["source"] for r in rows] == ["conditioned", "conditioned"]
    low, high = rows
    assert low["beta"] == 0.1 and high["beta"] == 10
    assert low["rate"] > high["rate"] + 0.5
    assert low["distortion"] < high["distortion"]
    for row in rows:  # the beta-ELBO at the row's beta, comparable with separately trained runs
        # loss is one draw per example (the loss path); distortion and rate average the IS-NLL's
        # K draws: equal up to the one draw's Monte-Carlo noise
        spread = 4 * (row["distortion_stderr"] + row["beta"] * row["rate_stderr"])
        assert row["loss"] == pytest.approx(row["distortion"] + row["beta"] * row["rate"], abs=spread)
        assert row["elbo"] <= -row["nll"]
    code, _, err = cli("sweep", "--from", run, "--beta", "1000", "--out", tmp_path / "sw2")
    assert code == 2 and "outside the run's range" in err


def test_neighbors(cli, tmp_path):
    run = tmp_path / "r"
    assert cli("train", "--data", "digits", "--latent-dim", "4", "--epochs", "2", "--out", run, *FAST)[0] == 0
    code, out, err = cli("neighbors", run, "--index", "3", "-k", "4")
    assert code == 0, err
    lines = out.strip().splitlines()
    assert lines[0] == "index,distance,label" and len(lines) == 5
    distances = [float(line.split(",")[1]) for line in lines[1:]]
    assert distances == sorted(distances) and "3," not in [line[:2] for line in lines[1:]]
    assert (run / "figures" / "neighbors-3.png").stat().st_size > 1000
    assert cli("neighbors", run, "--index", "99999")[0] == 2


@pytest.mark.parametrize("bad", ["missing", "nan", "inf"])
def test_a_sweep_over_data_it_cannot_train_on_says_so_before_any_folder(cli, tmp_path, bad):
    """A missing file, or data with NaN or Inf values, is one sentence before the first run:
    no sweep folder is made."""
    path = tmp_path / ("missing.npy" if bad == "missing" else "x.npy")
    if bad != "missing":
        x = np.random.default_rng(0).normal(size=(120, 4)).astype(np.float32)
        x[7, 1] = np.nan if bad == "nan" else np.inf
        np.save(path, x)
    code, _, err = cli("sweep", "--over", "lr", "0.001", "0.002", "--data", path, "--epochs", "1",
                       "--out", tmp_path / "s", *FAST)  # fmt: skip
    assert code == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert ("No file or folder" if bad == "missing" else "example 7") in err
    assert not (tmp_path / "s").exists()


def test_a_sweep_over_seeds_gives_mean_and_spread_per_value(cli, tmp_path):
    """--seeds 2 with --seed 5: two runs per beta with seeds 5 and 6 (the seed changes the
    numbers), each value's mean and sample sd over them in the table, the printed lines and the
    rate-distortion figure; the seed-5 runs are the plain sweep's runs with --seed 5; a rerun
    trains nothing."""
    from vaekit import plots
    from vaekit import sweep as sw

    out = tmp_path / "seeds"
    args = ("sweep", "--beta", "0", "1", "--seeds", "2", "--seed", "5", "--data", "digits", "--epochs", "1")
    code, printed, err = cli(*args, "--out", out, *FAST)
    assert code == 0, err
    rows = sw.read_rows(out)
    assert [(r["beta"], r["seed"], r["run"]) for r in rows] == [
        (0.0, 5, "beta-0-seed5"),
        (0.0, 6, "beta-0-seed6"),
        (1.0, 5, "beta-1-seed5"),
        (1.0, 6, "beta-1-seed6"),
    ]
    assert rows[0]["elbo"] != rows[1]["elbo"]
    entries = sw.over_seeds(rows)
    assert [e["value"] for e in entries] == [0.0, 1.0] and entries[0]["seeds"] == [5, 6]
    for entry, pair in zip(entries, (rows[:2], rows[2:]), strict=True):
        for key in ("elbo", "rate", "distortion"):
            values = [r[key] for r in pair]
            assert entry[key] == pytest.approx(np.mean(values)) and entry[f"{key}_sd"] == pytest.approx(
                np.std(values, ddof=1)
            )
    page = (out / "report.html").read_text()
    assert "mean ± standard deviation over seeds" in page
    assert f"{entries[1]['rate']:.4g} ± {entries[1]['rate_sd']:.2g}" in page
    assert f"{entries[0]['elbo']:.4g}+-{entries[0]['elbo_sd']:.2g}" in printed
    fig = plots.rate_distortion(
        rows, "beta", [r["beta"] for r in rows], sw.over_seeds(rows, ("rate", "distortion"))
    )
    crosses = [c for c in fig.axes[0].containers if hasattr(c, "lines")]
    drawn = sorted(tuple(np.ravel(c.lines[0].get_xydata())) for c in crosses)
    np.testing.assert_allclose(drawn, sorted((e["rate"], e["distortion"]) for e in entries))
    code, printed, _ = cli(*args, "--out", out, *FAST)
    assert code == 0 and "4 of 4 runs already done, training 0" in printed
    single = tmp_path / "one"
    code, _, err = cli(
        "train", "--data", "digits", "--beta", "1", "--seed", "5", "--epochs", "1", "--out", single, *FAST
    )
    assert code == 0, err
    assert json.loads((single / "summary.json").read_text())["elbo"] == rows[2]["elbo"]
    # the explorer's slider: one view per run, each named by its value and its seed
    from vaekit import explore

    views, _ = explore._runs(out)
    assert [v[3] for v in views] == [
        "beta = 0, seed 5",
        "beta = 0, seed 6",
        "beta = 1, seed 5",
        "beta = 1, seed 6",
    ]
    assert [v[2].name for v in views] == [r["run"] for r in rows]


def test_a_sweep_through_the_local_launcher(cli, digits_sweep, tmp_path):
    """--launcher local (submitit's local executor, the code path a Slurm sweep takes): the same
    numbers as the in-process sweep; resubmission trains nothing; a run whose job fails is one
    sentence with the path to its log, which holds the job's error."""
    from vaekit import sweep as sw

    out = tmp_path / "local"
    args = (
        "sweep",
        "--beta",
        "0",
        "1",
        "--data",
        "digits",
        "--epochs",
        "2",
        "--launcher",
        "local",
        "--jobs",
        "2",
    )
    code, printed, err = cli(*args, "--out", out, *FAST)
    assert code == 0, err
    assert len(list((out / "jobs").glob("*_log.err"))) == 2  # one job per run
    for here, there in zip(sw.read_rows(out), sw.read_rows(digits_sweep), strict=True):
        assert (here["elbo"], here["rate"], here["nll"]) == (there["elbo"], there["rate"], there["nll"])
    code, printed, _ = cli(*args, "--out", out, *FAST)
    assert code == 0 and "2 of 2 runs already done, training 0" in printed
    assert len(list((out / "jobs").glob("*_log.err"))) == 2  # no job was submitted
    broken = tmp_path / "broken"
    (broken / "beta-1").mkdir(parents=True)
    (broken / "beta-1" / "checkpoint.pt").write_bytes(b"not a checkpoint")
    code, _, err = cli(*args, "--out", broken, *FAST)
    assert code == 2 and f"The run {broken / 'beta-1'} failed in its local job" in err
    log = err.split("its log: ")[1].split(" (run the same")[0]
    assert "cannot be loaded safely" in open(log).read()
    assert (broken / "beta-0" / "summary.json").exists()  # the other run finished and is kept


def test_a_slurm_sweeps_job_description(cli, tmp_path):
    """The sbatch script a Slurm sweep submits, checked without a cluster: one array task per
    run, and the resources asked for; on a machine without Slurm, --launcher slurm is one
    sentence before anything is written."""
    import shutil

    from vaekit import launch

    if not shutil.which("sbatch"):
        code, _, err = cli(
            "sweep", "--beta", "0", "--data", "digits", "--launcher", "slurm", "--out", tmp_path / "s"
        )
        assert code == 2 and "--launcher slurm needs Slurm's sbatch and srun" in err
        assert not (tmp_path / "s").exists()
        code, _, err = cli("demo", "disentanglement", "--launcher", "slurm", "--out", tmp_path / "d")
        assert code == 2 and "--launcher slurm needs Slurm's sbatch and srun" in err
        assert not (tmp_path / "d").exists()

    code, _, err = cli("sweep", "--beta", "0", "--data", "digits", "--gpus", "1", "--out", tmp_path / "g")
    assert code == 2 and "--gpus is a job's resource; give --launcher slurm (or local) with it." in err
    assert not (tmp_path / "g").exists()
    for given, said in (
        (
            ("--launcher", "local", "--partition", "gpu"),
            "--partition is a Slurm job's resource; --launcher local",
        ),
        (("--launcher", "slurm", "--time-min", "0"), "--time-min must be at least 1, not 0."),
        (("--launcher", "local", "--time-min", "-3"), "--time-min must be at least 1, not -3."),
    ):
        code, _, err = cli("sweep", "--beta", "0", "--data", "digits", *given, "--out", tmp_path / "g")
        assert code == 2 and said in err and not (tmp_path / "g").exists(), err
    resources = {"partition": "gpu", "time_min": 90, "gpus": 1, "mem_gb": 16}
    script = launch.slurm_script(6, resources, "/scratch/s/jobs", job_name="vaekit-sweep")
    lines = set(script.splitlines())
    expected = {"--array=0-5%6", "--partition=gpu", "--time=90", "--gpus-per-node=1", "--mem=16GB"}
    expected.add("--job-name=vaekit-sweep")
    assert {f"#SBATCH {e}" for e in expected} <= lines
    assert "#SBATCH --error=/scratch/s/jobs/%A_%a_0_log.err" in lines


def test_local_jobs_run_at_most_so_many_at_once(tmp_path):
    """run_jobs with at_once=2: four jobs in two waves, the second started after the first ended;
    each job is told its share of the CPUs; a failing job is reported after its wave ends, with
    the other job of the wave finished."""
    import os
    import time

    from vaekit import launch
    from vaekit.errors import VaekitError

    def job(name, folder, threads):
        started = time.time()
        time.sleep(0.3)
        (folder / f"{name}.txt").write_text(f"{started} {time.time()} {threads}")

    todo = [((name, tmp_path), str(tmp_path / name)) for name in "abcd"]
    launch.run_jobs(job, todo, tmp_path / "jobs", "local", progress=False, at_once=2)
    spans = {n: [float(v) for v in (tmp_path / f"{n}.txt").read_text().split()] for n in "abcd"}
    assert min(spans["c"][0], spans["d"][0]) >= max(spans["a"][1], spans["b"][1])
    assert {s[2] for s in spans.values()} == {max(1, (os.cpu_count() or 1) // 2)}

    def fails(name, folder, threads):
        if name == "x":
            raise RuntimeError("no such file")
        time.sleep(0.5)
        (folder / f"{name}.txt").write_text("done")

    todo = [((name, tmp_path), str(tmp_path / name)) for name in "xyz"]
    with pytest.raises(VaekitError, match=r"The run .*/x failed in its local job .*; its log: ") as caught:
        launch.run_jobs(fails, todo, tmp_path / "jobs2", "local", progress=False, at_once=2)
    assert (tmp_path / "y.txt").read_text() == "done" and not (tmp_path / "z.txt").exists()
    log = str(caught.value).split("its log: ")[1].split(" (run the same")[0]
    assert "no such file" in open(log).read()


def test_a_slurm_scheduler_that_refuses_the_jobs_is_one_sentence(tmp_path, monkeypatch):
    """sbatch refusing the job array (here a stand-in sbatch that says what a cluster says of a
    partition it does not have) is one sentence with the scheduler's reason, not a traceback."""
    from vaekit import launch
    from vaekit.errors import VaekitError

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, text in (
        ("sbatch", "echo 'sbatch: error: invalid partition specified: gpu-big' >&2; exit 1"),
        ("srun", "exit 0"),
    ):
        (bin_dir / name).write_text(f"#!/bin/sh\n{text}\n")
        (bin_dir / name).chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    todo = [((1,), str(tmp_path / "run"))]
    with pytest.raises(VaekitError) as caught:
        launch.run_jobs(print, todo, tmp_path / "jobs", "slurm", {"partition": "gpu-big"}, progress=False)
    message = str(caught.value)
    assert message.startswith("The slurm scheduler refused the jobs (")
    assert "invalid partition specified: gpu-big" in message and "check --partition" in message


def test_stopping_a_local_launch_stops_its_jobs(tmp_path):
    """A kill's SIGTERM (or Ctrl-C) to the process that waits on local jobs stops the jobs too:
    none is left training on its own."""
    import signal
    import subprocess
    import sys
    import time

    script = f"""
import os, time
from pathlib import Path
from vaekit import launch

def job(name, threads):
    Path({str(tmp_path)!r}, name + ".pid").write_text(str(os.getpid()))
    time.sleep(120)

todo = [(("a",), "a"), (("b",), "b")]
launch.run_jobs(job, todo, Path({str(tmp_path)!r}) / "jobs", "local", progress=False)
"""
    waiting = subprocess.Popen([sys.executable, "-c", script], stderr=subprocess.DEVNULL)
    pids = []
    for _ in range(600):  # the two jobs started
        pids = [int(p.read_text()) for p in tmp_path.glob("*.pid") if p.read_text()]
        if len(pids) == 2:
            break
        time.sleep(0.1)
    assert len(pids) == 2
    waiting.send_signal(signal.SIGTERM)
    assert waiting.wait(timeout=60) != 0

    def alive(pid: int) -> bool:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return not open(f"/proc/{pid}/stat").read().split()[2] == "Z"  # a zombie is gone

    for _ in range(100):
        if not any(alive(pid) for pid in pids):
            break
        time.sleep(0.1)
    assert not any(alive(pid) for pid in pids)
