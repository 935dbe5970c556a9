"""Sweeps: one run folder per value of one setting (beta, or any numeric training or objective
setting such as beta-TCVAE's tc_weight; the same data, seed and net otherwise), then the
trade-off figures.

A sweep folder holds `SETTING-V/` run folders (`beta-4`, `tc-weight-6`), `sweep.json` (a list:
one row per run: `setting`, `value`, `beta`, its settings and its summary),
`figures/latent_panels.png`, `figures/rate_distortion.png` and `report.html`. An interrupted sweep
resumes: finished runs (with summary.json) are kept, partial runs continue from their checkpoint.
`from_conditioned` adds rows from one beta-conditioned model (beta sweeps only).
"""

from __future__ import annotations

import concurrent.futures as cf
import html
import json
import multiprocessing
import os
from pathlib import Path

import numpy as np
import torch

from vaekit import config, evaluate, io, launch, objectives, plots, report, runs, summary_keys
from vaekit.errors import VaekitError, check
from vaekit.model import check_beta

ROW_KEYS = summary_keys.shown_in("sweep")  # each run's summary keys in a sweep row


def run_name(value: float, setting: str = "beta") -> str:
    """The run folder's name for `value` of `setting` in a sweep: the setting's option name and the
    value in %g form (beta-0.5, beta-4, tc-weight-6)."""
    return f"{setting.replace('_', '-')}-{value:g}"


def value_of(row: dict) -> float:
    """The swept setting's value in a sweep.json row (rows written before sweeps took any setting
    have only `beta`)."""
    return row.get("value", row["beta"])


def has_seeds(rows: list[dict]) -> bool:
    """Whether a sweep's separately trained rows (sweep.json's, or an anomaly sweep's) hold more
    than one seed: the tables then show each row's seed."""
    return len({r.get("seed") for r in rows if r.get("source", "separate") == "separate"}) > 1


def setting_of(rows: list[dict]) -> str:
    """The setting a sweep's rows vary: `beta` unless they name another."""
    return rows[0].get("setting", "beta") if rows else "beta"


def check_values(values, setting: str = "beta") -> list[float]:
    """The values of `setting` as sorted numbers: `check_betas` for beta; else finite, each given
    once (whether a value is in the setting's range is checked when its run is built). Raises
    `VaekitError` naming the problem."""
    if setting == "beta":
        return check_betas(values)
    flag = "--" + setting.replace("_", "-")
    check(len(values) >= 1, f"Give at least one value of {flag} to sweep.")
    for v in values:
        check(
            isinstance(v, (int, float)) and not isinstance(v, bool) and np.isfinite(v),
            f"{flag} must be a finite number, not {v!r}.",
        )
    check(len(set(values)) == len(values), f"The values {list(values)} repeat a value; give each once.")
    return sorted(values)


def check_betas(betas) -> list[float]:
    """The betas as sorted floats. Raises `VaekitError` for none, a beta that is not a finite
    number >= 0, or a repeated value."""
    check(len(betas) >= 1, "Give at least one beta, e.g. --beta 0 1 4.")
    for b in betas:
        check_beta(b)
    check(len(set(betas)) == len(betas), f"The betas {list(betas)} repeat a value; give each once.")
    return sorted(float(b) for b in betas)


def _train_one(settings: dict, out: str, threads: int) -> None:
    from vaekit.workflow import build_and_fit

    if threads:
        torch.set_num_threads(threads)
    out_path = Path(out)
    resume = (out_path / "checkpoint.pt").exists()
    build_and_fit(settings, out_path, overwrite=not resume, progress=False, resume=resume)


def run(
    values,
    settings: dict,
    out: str | os.PathLike,
    jobs: int = 1,
    progress: bool = True,
    setting: str = "beta",
    seeds: int = 1,
    launcher: str | None = None,
    resources: dict | None = None,
) -> list[dict]:
    """Train (or resume) one run per value of `setting` (a key of `settings`: beta, or e.g.
    tc_weight with settings["objective"] = "beta-tcvae") and per seed under `out`, then write
    sweep.json, the figures and report.html. `seeds` N > 1: every value with the seeds
    settings["seed"] + 0 ... N - 1, in folders SETTING-V-seedS; the table and the rate-distortion
    figure then give each value's mean and standard deviation over its seeds. `launcher` "local"
    or "slurm": each run is a job of submitit's executor of that kind (`jobs` local processes at
    a time, or a Slurm job array; `resources`: partition, time_min, gpus, mem_gb, cpus;
    `vaekit.launch.slurm_parameters`), its log under out/jobs; finished folders are skipped on
    resubmission. `settings` are `vaekit train`'s settings by name (e.g. {"data": "mnist5k",
    "latent_dim": 2, "epochs": 30}); those not given take their defaults
    (`vaekit.config.defaults`). Returns the rows, one dict per run (summary.json's numbers with
    the value). Raises `VaekitError` for bad values, an `out` that is a file, an `out` that holds
    a sweep over another setting, or a finished run trained with other learning settings."""
    settings = {**config.defaults(), **settings}
    values = check_values(values, setting)
    check(jobs >= 1, f"--jobs must be at least 1, not {jobs}.")
    check(
        isinstance(seeds, int) and not isinstance(seeds, bool) and seeds >= 1,
        f"--seeds must be a whole number of at least 1, not {seeds!r}.",
    )
    if launcher is not None:
        launch.check_launcher(launcher)
    first = int(settings.get("seed") or 0)
    # (value, seed, folder name): one run each; one seed keeps the folder names of a plain sweep
    plan = [
        (v, first + i, run_name(v, setting) + (f"-seed{first + i}" if seeds > 1 else ""))
        for v in values
        for i in range(seeds)
    ]
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise VaekitError(f"{out} is a file, not a folder; choose another --out.")
    before = read_rows(out)
    check(
        not before or setting_of(before) == setting,
        f"{out} holds a sweep over {setting_of(before)}, not {setting}; choose another --out.",
    )
    from vaekit.workflow import check_settings, load_data

    for value in values:  # every run's settings, before anything is written or trained
        check_settings(dict(settings, **{setting: value}))
    if not all((out / name / "summary.json").exists() for _, _, name in plan):
        load_data(settings)  # a missing file or bad data: said once, before any folder is made
    out.mkdir(parents=True, exist_ok=True)
    todo = []
    for value, seed, name in plan:
        folder = out / name
        wanted = dict(settings, **{setting: value, "seed": seed})
        if (folder / "summary.json").exists():
            trained = (
                runs.read_config(folder).get("options") or {} if (folder / "config.yaml").exists() else {}
            )
            differ = _differences(trained, wanted)
            check(
                not differ,
                f"{folder} was trained with {differ[0] if differ else ''}"
                + (f" (and {len(differ) - 1} more settings)" if len(differ) > 1 else "")
                + "; sweep into another --out, or move it away (a rerun trains only what is missing).",
            )
            continue  # finished before an interruption: keep it
        todo.append((wanted, str(folder)))
    print(f"sweep: {len(plan) - len(todo)} of {len(plan)} runs already done, training {len(todo)}")
    if launcher is not None and todo:
        jobs_todo = [((s, f), f) for s, f in todo]
        launch.run_jobs(
            _train_one, jobs_todo, out / "jobs", launcher, resources, progress, "vaekit-sweep", at_once=jobs
        )
    elif jobs == 1 or len(todo) <= 1:
        for i, (s, folder) in enumerate(todo):
            if progress:
                print(f"[{i + 1}/{len(todo)}] {setting} = {s[setting]:g} -> {folder}", flush=True)
            _train_one(s, folder, 0)
    else:
        threads = max(1, (os.cpu_count() or 1) // jobs)
        ctx = multiprocessing.get_context("spawn")
        with cf.ProcessPoolExecutor(max_workers=jobs, mp_context=ctx) as pool:
            futures = {pool.submit(_train_one, s, f, threads): s[setting] for s, f in todo}
            for fut in cf.as_completed(futures):
                fut.result()
                if progress:
                    print(f"{setting} = {futures[fut]:g} done", flush=True)
    rows = [r for r in before if r.get("source") == "conditioned"]
    for value, seed, name in plan:
        folder = out / name
        summary = json.loads((folder / "summary.json").read_text())
        rows.append(
            {
                "setting": setting,
                "value": value,
                "beta": value if setting == "beta" else float(settings.get("beta", 1.0)),
                "seed": seed,
                "source": "separate",
                "run": folder.name,
                "settings": runs.read_config(folder).get("options", {}),
                **summary,
            }
        )
    write(out, rows)
    return report.DisplayedRows(rows, out, sweep_table)  # a list; Jupyter shows its table and figures


# settings that do not change what a run learns: a finished run is kept whatever they are now
_UNLEARNED = tuple(k for k in config.FREE_KEYS if k != "epochs")  # epochs change the model


def _differences(trained: dict, wanted: dict) -> list[str]:
    """What a finished run's recorded options (config.yaml's `options`) say against the settings
    a sweep would train it with now, as "NAME X, not Y", for each learning setting both name."""

    def same(a, b) -> bool:
        try:
            return float(a) == float(b)
        except (TypeError, ValueError):
            return str(a) == str(b)

    return [
        f"{key.replace('_', '-')} {trained[key]}, not {value}"
        for key, value in wanted.items()
        if key not in _UNLEARNED and key in trained and not same(trained[key], value)
    ]


def from_conditioned(run_dir, betas, out, nll_samples: int = 100) -> list[dict]:
    """Evaluate a beta-conditioned run at each beta (no retraining) and add the rows to `out`."""
    model = runs.load(run_dir)
    check(
        model.beta_conditioned,
        f"{run_dir} is not a beta-conditioned run; train one with vaekit train --beta-range LOW HIGH.",
    )
    betas = check_betas(betas)
    lo, hi = model.beta_range
    outside = [b for b in betas if not lo <= b <= hi]
    check(
        not outside,
        f"The betas {outside} lie outside the run's range [{lo:g}, {hi:g}]; pick betas inside it.",
    )
    data = runs.load_data(run_dir)
    out = Path(out)
    before = read_rows(out)
    check(
        setting_of(before) == "beta",
        f"{out} holds a sweep over {setting_of(before)}; a beta-conditioned run adds points to a beta "
        "sweep, so choose another --out.",
    )
    out.mkdir(parents=True, exist_ok=True)
    rows = [r for r in before if r.get("source") != "conditioned"]
    for beta in betas:
        # the beta-ELBO at this beta (not the training objective's 1/max(1, beta) weighting), so
        # the loss column compares with the separately trained runs'
        plain = objectives.make("beta-elbo", model)
        summary = evaluate.summarize(model, data, nll_samples=nll_samples, beta=beta, objective=plain)
        rows.append(
            {
                "setting": "beta",
                "value": beta,
                "beta": beta,
                "source": "conditioned",
                "run": str(Path(run_dir).resolve()),
                **summary,
            }
        )
    write(out, rows)
    return report.DisplayedRows(rows, out, sweep_table)  # a list; Jupyter shows its table and figures


def read_rows(out: Path) -> list[dict]:
    """The rows of `out/sweep.json`, one dict per evaluated value (setting, value, beta, source
    "separate" or "conditioned", run, and the summary's keys); [] when there is no sweep.json yet."""
    path = Path(out) / "sweep.json"
    return json.loads(path.read_text()) if path.exists() else []


def write(out: Path, rows: list[dict]) -> None:
    """Write `rows` to `out/sweep.json` (separately trained runs first, each group by value), then
    redraw the figures and report.html (`draw`)."""
    rows = sorted(rows, key=lambda r: (r["source"] != "separate", value_of(r)))
    io.write_json(out / "sweep.json", rows)
    draw(out, rows)


def _models(out: Path, rows: list[dict]):
    """(value, model, beta argument) for each row, in value order; the data set of the first run."""
    entries, data = [], None
    cache = {}
    for r in rows:
        path = out / r["run"] if r["source"] == "separate" else Path(r["run"])
        if str(path) not in cache:
            cache[str(path)] = runs.load(path)
        model = cache[str(path)]
        entries.append((value_of(r), model, r["beta"] if model.beta_conditioned else None))
        if data is None:
            data = runs.load_data(path)
    return entries, data


def draw(out: Path, rows: list[dict]) -> None:
    """Write the sweep's figures (latent_panels.png from the separately trained runs, or from
    all rows when there are none; rate_distortion.png from every row) and `out/report.html`.
    Loads each row's model and the first run's data set, on the CPU."""
    separate = [r for r in rows if r["source"] == "separate"]
    panel_rows = separate or rows
    first_seed: dict = {}  # with several seeds, one panel per value: its first seed's run
    for r in panel_rows:
        first_seed.setdefault(value_of(r), r)
    panel_rows = list(first_seed.values())
    entries, data = _models(out, panel_rows)
    setting = setting_of(rows)
    panels = plots.latent_panels(entries, data, setting=setting)
    report.save_figure(panels, out / "figures" / "latent_panels.png")
    figure = plots.rate_distortion(
        rows, setting, [value_of(r) for r in rows], over_seeds(rows, ("rate", "distortion"))
    )
    report.save_figure(figure, out / "figures" / "rate_distortion.png")
    body = sweep_table(rows) + EXPLANATION
    report.write_html(out, f"vaekit sweep: {out.name}", body, report.sorted_pngs(out), explorable=True)


def _fmt(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def sweep_table(rows: list[dict]) -> str:
    """An HTML table of the rows (the swept setting, source, the ROW_KEYS and the terms of the
    runs' objective, test split, nats per example), then, for betas with both a separate and a
    conditioned row, their ELBOs side by side."""
    named = dict.fromkeys(t for r in rows for t in r.get("objective_terms", []))
    own = [k for k in named if k not in ROW_KEYS]
    keys = (*ROW_KEYS, *own)  # then the terms the runs' objective defines (e.g. mi, tc, dimwise_kl)
    head = "".join(f"<th>{html.escape(k)}</th>" for k in (setting_of(rows), "source", *keys))
    body = []
    for r in rows:
        cells = [_fmt(value_of(r)), r["source"], *(_fmt(r.get(k)) for k in keys)]
        body.append("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in cells) + "</tr>")
    compare = _comparison(rows)
    runs_table = f"<h2>Runs (test split, nats per example)</h2><table><tr>{head}</tr>{''.join(body)}</table>"
    return over_seeds_table(rows, keys) + runs_table + compare


def over_seeds(rows: list[dict], keys=ROW_KEYS) -> list[dict]:
    """For a sweep with several seeds per value: one entry per value of the separately trained
    runs, its seeds, and for each of `keys` the mean (`KEY`) and sample standard deviation
    (`KEY_sd`) over the seeds (None where a run has no number). [] when no value has two seeds."""
    groups: dict = {}
    for r in rows:
        if r.get("source") == "separate":
            groups.setdefault(value_of(r), []).append(r)
    if all(len(g) < 2 for g in groups.values()):
        return []
    out = []
    for value, group in sorted(groups.items()):
        entry = {"value": value, "seeds": [r.get("seed") for r in group]}
        for key in keys:
            numbers = [r.get(key) for r in group]
            if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in numbers):
                entry[key] = float(np.mean(numbers))
                entry[f"{key}_sd"] = float(np.std(numbers, ddof=1)) if len(numbers) > 1 else None
            else:
                entry[key] = entry[f"{key}_sd"] = None
        out.append(entry)
    return out


def mean_sd(mean, sd, sign: str = "+-", digits: str = ".4g", sd_digits: str = ".2g") -> str:
    """A value's mean and sample sd over its seeds as text ("-27.23+-0.047"); the mean alone for a
    value with one seed (sd None); "-" where a run has no number."""
    if mean is None:
        return "-"
    return f"{mean:{digits}}" + ("" if sd is None else f"{sign}{sd:{sd_digits}}")


def over_seeds_table(
    rows: list[dict], keys, what: str = "test split, nats per example", titles: dict | None = None
) -> str:
    """The HTML table of `over_seeds(rows, keys)`: per value, its number of seeds and each key's
    mean ± sample standard deviation; `what` says what the numbers are, `titles` names the keys'
    columns. "" when no value has two seeds."""
    entries = over_seeds(rows, keys)
    if not entries:
        return ""
    names = [(titles or {}).get(k, k) for k in keys]
    head = "".join(f"<th>{html.escape(k)}</th>" for k in (setting_of(rows), "seeds", *names))
    body = []
    for e in entries:
        cells = [f"{e['value']:g}", str(len(e["seeds"]))]
        cells += [mean_sd(e[k], e[k + "_sd"], " ± ") for k in keys]
        body.append("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in cells) + "</tr>")
    return (
        f"<h2>Per value: mean ± standard deviation over seeds ({html.escape(what)})</h2>"
        f"<table><tr>{head}</tr>{''.join(body)}</table>"
    )


def _comparison(rows: list[dict]) -> str:
    if setting_of(rows) != "beta":
        return ""
    separate = {r["beta"]: r for r in rows if r["source"] == "separate"}
    cond = {r["beta"]: r for r in rows if r["source"] == "conditioned"}
    common = sorted(set(separate) & set(cond))
    if not common:
        return ""
    lines = "".join(
        f"<tr><td>{b:g}</td><td>{separate[b]['elbo']:.2f}</td><td>{cond[b]['elbo']:.2f}</td>"
        f"<td>{cond[b]['elbo'] - separate[b]['elbo']:+.2f}</td></tr>"
        for b in common
    )
    return (
        "<h2>One beta-conditioned model against separately trained models</h2><table>"
        "<tr><th>beta</th><th>ELBO separate</th><th>ELBO conditioned</th><th>difference</th></tr>"
        f"{lines}</table>"
    )


EXPLANATION = """
<h2>Reading the numbers</h2>
<ul>
<li><b>rate</b>: KL(q(z|x) || p(z)) in nats, the information the code carries
about x. It falls as beta grows.</li>
<li><b>distortion</b>: -E_q log p(x|z) in nats, how badly x is reconstructed. It rises as beta grows.</li>
<li><b>elbo</b>: -(rate + distortion), the beta = 1 bound on log p(x) whatever beta trained the model; the
dashed line in the rate-distortion figure joins all points with the best ELBO's rate + distortion.</li>
<li><b>knn_accuracy</b>: 5-nearest-neighbour label accuracy from the latent means: how semantically
organised the space is.</li>
<li><b>active_units</b>: latent dimensions whose mean varies over the data (Cov > 0.01); collapsed
dimensions carry no information.</li>
<li><b>aggregate_posterior_kl</b>: KL from a Gaussian moment-matched to all codes together to the prior. Large
means the codes do not fill the prior, so samples from the prior decode to nothing the model saw
(typical of beta = 0); near 0 (for an N(0, I) prior) means the latent space has the prior's simple shape.</li>
</ul>
"""
