"""vaekit against SDV's TVAE (the ctgan package), side by side, on the tables that
make_tables.py wrote.

    python benchmarks/tables_vs_tvae/run.py TABLES [--tables NAME ...] [--out RESULTS]
        [--tvae-epochs N] [--vaekit-epochs N] [--vaekit-args "..."] [--seed S] [--threads T]

TABLES is the folder make_tables.py wrote (one sub-folder per table) or one table's folder.
For each table, in one process:

* TVAE: `ctgan.TVAE(epochs=...)` with its other settings at their defaults, fitted on the rows
  of train.csv (id columns dropped; categorical and 0/1 columns passed as discrete_columns; rows
  with a missing cell dropped, since TVAE cannot take them, and the output says how many), then
  `sample(n)` with n = the number of held-out rows;
* vaekit: `vaekit train --data train.csv --test-data test.csv --out RUN --epochs E --seed S
  [--drop-columns IDS] [extra]` and `vaekit sample RUN -n n --draw --out draws.csv --seed S`,
  each in a subprocess; a command that fails is recorded with its one-line message;
* a reference: n rows drawn without replacement from train.csv itself, measured the same way,
  which shows what an ideal generator (a copy of real data) scores on each measure.

Every method's draws are then measured against the same held-out rows (test.csv):
classifier two-sample balanced accuracy (one HistGradientBoostingClassifier, 5-fold CV, the
same encoding for every method), the share outside each column's support, whole-number and
category validity, the share outside the observed training range, wall time and peak memory
of the fit, and vaekit's held-out NLL. Writes RESULTS/results.md and RESULTS/results.json and
prints the Markdown.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import re
import shlex
import subprocess
import sys
import threading
import time
import traceback
from pathlib import Path

import numpy as np
import pandas as pd

NUMERIC_KINDS = ("count", "integer", "proportion", "positive", "bounded", "real")
WHOLE_KINDS = ("count", "integer")
CATEGORY_KINDS = ("categorical", "binary")
METHODS = ("tvae", "vaekit")
REFERENCE = "train-rows"


# ----------------------------------------------------------------------------- reading


def read_csv(path: Path) -> pd.DataFrame:
    """Only an empty cell is missing (a category spelled "NA" stays text)."""
    return pd.read_csv(path, keep_default_na=False, na_values=[""])


def table_dirs(root: Path, names: list[str] | None) -> list[Path]:
    if (root / "meta.json").exists():
        dirs = [root]
    else:
        dirs = sorted(p.parent for p in root.glob("*/meta.json"))
    if names:
        known = {d.name: d for d in dirs}
        unknown = [n for n in names if n not in known]
        if unknown:
            sys.exit(f"no table {', '.join(unknown)} under {root} (have: {', '.join(known)})")
        dirs = [known[n] for n in names]
    if not dirs:
        sys.exit(f"no table folder (with meta.json) under {root}; run make_tables.py first")
    return dirs


class Table:
    def __init__(self, folder: Path):
        self.folder = folder
        self.meta = json.loads((folder / "meta.json").read_text())
        self.name = self.meta.get("name", folder.name)
        self.train = read_csv(folder / "train.csv")
        self.test = read_csv(folder / "test.csv")
        self.ids = [c for c in self.meta.get("id_columns", []) if c in self.train.columns]
        self.features = [c for c in self.train.columns if c not in self.ids]
        self.kinds = {c: self.meta["columns"].get(c, {}).get("kind", "real") for c in self.features}
        self.support = {}
        for c in self.features:
            lo, hi = self.meta["columns"].get(c, {}).get("support", [None, None])
            self.support[c] = (-math.inf if lo is None else lo, math.inf if hi is None else hi)

    def of(self, *kinds) -> list[str]:
        return [c for c in self.features if self.kinds[c] in kinds]


# ----------------------------------------------------------------------------- encodings


def category_key(value) -> str | None:
    """One spelling per category: 1, 1.0 and "1" are the same category; None when missing."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return None
    if isinstance(value, (bool, np.bool_)):
        return str(int(value))
    try:
        f = float(value)
    except (TypeError, ValueError):
        return str(value)
    if math.isfinite(f) and f == round(f) and abs(f) < 2**53:
        return str(int(f))
    return repr(f)


def numeric(series: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """The column as floats (NaN where missing) and a mask of non-missing cells that are not
    numbers at all."""
    as_num = pd.to_numeric(series, errors="coerce").to_numpy(dtype=float)
    present = series.notna().to_numpy()
    return as_num, present & np.isnan(as_num)


class Encoder:
    """The classifier's features, fitted on the training rows and used unchanged for every
    method: numeric columns as floats (missing = NaN, text in a numeric column = NaN); category
    columns as codes 0..K-1 for the K categories seen in training, K for any other value, NaN
    when missing, passed to the classifier as categorical features."""

    def __init__(self, table: Table):
        self.table = table
        self.categories = {}
        for c in table.of(*CATEGORY_KINDS):
            keys = {category_key(v) for v in table.train[c].tolist()} - {None}
            self.categories[c] = {k: i for i, k in enumerate(sorted(keys))}

    def __call__(self, frame: pd.DataFrame) -> np.ndarray:
        cols = []
        for c in self.table.features:
            if c not in frame.columns:
                cols.append(np.full(len(frame), np.nan))
            elif c in self.categories:
                index = self.categories[c]
                keys = [category_key(v) for v in frame[c].tolist()]
                cols.append(
                    np.array([np.nan if k is None else index.get(k, len(index)) for k in keys], float)
                )
            else:
                cols.append(numeric(frame[c])[0])
        # an infinite draw stays an extreme value (the classifier refuses infinities)
        return np.nan_to_num(np.column_stack(cols), nan=np.nan, posinf=1e300, neginf=-1e300)

    def categorical_mask(self) -> np.ndarray:
        # more than 254 categories do not fit the classifier's bins: those stay numeric codes
        return np.array([c in self.categories and len(self.categories[c]) < 254 for c in self.table.features])


def two_sample(encoder: Encoder, real: pd.DataFrame, drawn: pd.DataFrame, seed: int, folds: int) -> dict:
    """Balanced accuracy of one HistGradientBoostingClassifier telling drawn rows (1) from held-out
    real rows (0), k-fold cross-validated; 0.5 = indistinguishable."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.model_selection import StratifiedKFold, cross_val_score

    x = np.vstack([encoder(real), encoder(drawn)])
    y = np.r_[np.zeros(len(real), int), np.ones(len(drawn), int)]
    clf = HistGradientBoostingClassifier(categorical_features=encoder.categorical_mask(), random_state=seed)
    cv = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    scores = cross_val_score(clf, x, y, cv=cv, scoring="balanced_accuracy")
    return {"mean": float(scores.mean()), "sd": float(scores.std(ddof=1)), "folds": scores.tolist()}


# ----------------------------------------------------------------------------- validity


def _share(bad: int, n: int) -> float | None:
    return 100.0 * bad / n if n else None


def validity(table: Table, drawn: pd.DataFrame) -> dict:
    """Per column and overall (percent of drawn, non-missing values): outside the column's
    support, whole numbers among integer columns, known categories among category columns,
    outside the training range. A value that is not a number in a numeric column counts as
    outside and as not whole."""
    per_col, totals = {}, {k: [0, 0] for k in ("support", "whole", "category", "range")}

    def add(col, key, bad, n, good=False):
        per_col.setdefault(col, {})[key] = _share(n - bad if good else bad, n)
        totals[key][0] += n - bad if good else bad
        totals[key][1] += n

    for c in table.features:
        kind = table.kinds[c]
        if c not in drawn.columns:
            per_col[c] = {"absent": True}
            continue
        if kind in CATEGORY_KINDS:
            seen = {category_key(v) for v in table.train[c].tolist()} - {None}
            keys = [k for k in (category_key(v) for v in drawn[c].tolist()) if k is not None]
            add(c, "category", sum(k not in seen for k in keys), len(keys), good=True)
            continue
        values, text = numeric(drawn[c])
        present = ~np.isnan(values) | text
        n = int(present.sum())
        lo, hi = table.support[c]
        if kind != "real" and (lo > -math.inf or hi < math.inf):
            out = text | (values < lo) | (values > hi)
            add(c, "support", int(out.sum()), n)
        if kind in WHOLE_KINDS:
            whole = ~text & (np.abs(values - np.round(values)) <= 1e-9 * np.maximum(1.0, np.abs(values)))
            add(c, "whole", int((present & ~whole).sum()), n, good=True)
        observed = pd.to_numeric(table.train[c], errors="coerce")
        out = text | (values < observed.min()) | (values > observed.max())
        add(c, "range", int(out.sum()), n)
    overall = {k: _share(*v) for k, v in totals.items()}
    counted = {k: v[1] for k, v in totals.items()}
    missing = {
        "drawn_pct": 100.0 * float(drawn.reindex(columns=table.features).isna().to_numpy().mean()),
        "test_pct": 100.0 * float(table.test[table.features].isna().to_numpy().mean()),
    }
    return {"overall": overall, "values_counted": counted, "columns": per_col, "missing_cells": missing}


# ----------------------------------------------------------------------------- memory


def _read_hwm_kib() -> int | None:
    try:
        m = re.search(r"VmHWM:\s+(\d+) kB", Path("/proc/self/status").read_text())
        return int(m.group(1)) if m else None
    except OSError:
        return None


def _rss_kib() -> int | None:
    try:
        m = re.search(r"VmRSS:\s+(\d+) kB", Path("/proc/self/status").read_text())
        return int(m.group(1)) if m else None
    except OSError:
        return None


class PeakMemory:
    """This process's peak resident memory over a block: Linux's high-water mark, reset at the
    start through /proc/self/clear_refs; where that cannot be reset, getrusage's ru_maxrss (the
    peak since the process started, so an upper bound)."""

    def __enter__(self):
        self.resettable = False
        try:
            Path("/proc/self/clear_refs").write_text("5")
            self.resettable = _read_hwm_kib() is not None
        except OSError:
            pass
        self.before_kib = _rss_kib()
        return self

    def __exit__(self, *exc):
        import resource

        if self.resettable:
            self.peak_kib = _read_hwm_kib()
            self.how = "VmHWM after reset (whole process)"
        else:
            self.peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            self.how = "ru_maxrss (whole process, since start)"
        return False


# ----------------------------------------------------------------------------- methods


def complete_for_tvae(table: Table) -> tuple[pd.DataFrame, int]:
    """The training rows TVAE can take: id columns dropped, rows with a missing cell dropped, and
    whole-number columns back to integers once complete (as pandas reads a complete column)."""
    frame = table.train[table.features]
    complete = frame.dropna()
    complete = complete.copy()
    for c in table.of("binary", *WHOLE_KINDS):
        values = complete[c]
        if values.dtype.kind == "f" and np.all(values == np.round(values)):
            complete[c] = values.astype("int64")
    return complete, len(frame) - len(complete)


def run_tvae(table: Table, n: int, epochs: int | None, seed: int, out: Path) -> dict:
    import torch
    from ctgan import TVAE

    rec = {"method": "tvae"}
    data, dropped = complete_for_tvae(table)
    rec["rows_fit"] = len(data)
    rec["rows_dropped_missing"] = dropped
    discrete = table.of(*CATEGORY_KINDS)
    kwargs = {} if epochs is None else {"epochs": epochs}
    np.random.seed(seed)
    torch.manual_seed(seed)
    model = TVAE(**kwargs)
    model.set_random_state(seed)
    rec["settings"] = {
        "epochs": model.epochs,
        "batch_size": model.batch_size,
        "embedding_dim": model.embedding_dim,
        "compress_dims": list(model.compress_dims),
        "decompress_dims": list(model.decompress_dims),
        "discrete_columns": discrete,
    }
    try:
        with PeakMemory() as mem:
            t0 = time.perf_counter()
            model.fit(data, discrete_columns=discrete)
            rec["fit_s"] = time.perf_counter() - t0
        rec["peak_rss_mib"] = mem.peak_kib / 1024 if mem.peak_kib else None
        rec["rss_before_fit_mib"] = mem.before_kib / 1024 if mem.before_kib else None
        rec["memory_how"] = mem.how
        t0 = time.perf_counter()
        drawn = model.sample(n)
        rec["sample_s"] = time.perf_counter() - t0
    except Exception as err:  # a failure is a result: record it and go on
        rec["error"] = (
            f"{type(err).__name__}: {str(err).strip().splitlines()[-1] if str(err).strip() else ''}"
        )
        rec["traceback"] = traceback.format_exc()
        return rec
    path = out / "tvae_draws.csv"
    drawn.to_csv(path, index=False)
    rec["draws"] = str(path)
    return rec


def warm_up_tvae(table: Table, seed: int) -> float:
    """One untimed 1-epoch TVAE fit on 600 rows of the table: the first fit in a process pays
    several seconds of one-time start-up (chiefly joblib starting the worker processes that
    ctgan's DataTransformer uses for 500 rows or more) that would otherwise land on the first
    table's time."""
    from ctgan import TVAE

    t0 = time.perf_counter()
    data, _ = complete_for_tvae(table)
    data = pd.concat([data] * math.ceil(600 / max(1, len(data))), ignore_index=True).head(600)
    model = TVAE(epochs=1)
    model.set_random_state(seed)
    model.fit(data, discrete_columns=table.of(*CATEGORY_KINDS))
    return time.perf_counter() - t0


def _one_line(log: str) -> str:
    """The failure's one-line message: the last 'error:' line, else the last non-empty line."""
    lines = [ln.strip() for ln in log.splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.lower().startswith("error:")]
    return (errors or lines or ["(no output)"])[-1]


def run_child(cmd: list[str], log: Path, env: dict, timeout: float) -> dict:
    """Run cmd, stdout and stderr to log; wall time and the child's own peak RSS (os.wait4
    reports that child's rusage alone, its waited-for descendants included)."""
    with open(log, "w") as f:
        f.write("$ " + shlex.join(cmd) + "\n")
        f.flush()
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT, env=env)
        killed = threading.Event()

        def kill():
            killed.set()
            proc.kill()

        timer = threading.Timer(timeout, kill)
        timer.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            timer.cancel()
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
    text = log.read_text()
    out = {"rc": proc.returncode, "wall_s": wall, "peak_rss_mib": usage.ru_maxrss / 1024, "log": str(log)}
    if killed.is_set():
        out["error"] = f"timed out after {timeout:g} s"
    elif proc.returncode != 0:
        out["error"] = _one_line(text)
    return out


def run_vaekit(
    table: Table, n: int, epochs: int | None, extra: list[str], seed: int, out: Path, env: dict, cmd0, timeout
) -> dict:
    rec = {"method": "vaekit"}
    rundir = out / "vaekit_run"
    if rundir.exists():
        import shutil

        shutil.rmtree(rundir)
    train = [*cmd0, "train", "--data", str(table.folder / "train.csv"), "--test-data"]
    train += [str(table.folder / "test.csv"), "--out", str(rundir), "--seed", str(seed)]
    if epochs is not None and not any(a == "--epochs" or a.startswith("--epochs=") for a in extra):
        train += ["--epochs", str(epochs)]
    if table.ids:
        train += ["--drop-columns", ",".join(table.ids)]
    train += extra
    rec["train_command"] = shlex.join(train)
    rec["rows_fit"] = len(table.train)
    res = run_child(train, out / "vaekit_train.log", env, timeout)
    rec["fit_s"], rec["peak_rss_mib"], rec["train_log"] = res["wall_s"], res["peak_rss_mib"], res["log"]
    rec["memory_how"] = "ru_maxrss of the train subprocess (os.wait4)"
    if "error" in res:
        rec["error"] = f"vaekit train: {res['error']}"
        return rec
    summary_path = rundir / "summary.json"
    if summary_path.exists():
        summary = json.loads(summary_path.read_text())
        for key in ("nll", "nll_stderr", "nll_samples", "nll_user_units", "elbo", "seconds"):
            if key in summary:
                rec[{"seconds": "train_loop_s"}.get(key, key)] = summary[key]
    draws = out / "vaekit_draws.csv"
    if draws.exists():
        draws.unlink()
    sample = [*cmd0, "sample", str(rundir), "-n", str(n), "--draw", "--out", str(draws), "--seed", str(seed)]
    rec["sample_command"] = shlex.join(sample)
    res = run_child(sample, out / "vaekit_sample.log", env, timeout)
    rec["sample_s"] = res["wall_s"]
    if "error" in res:
        rec["error"] = f"vaekit sample: {res['error']}"
        return rec
    rec["draws"] = str(draws)
    return rec


def reference_rows(table: Table, n: int, seed: int, out: Path) -> dict:
    rng = np.random.default_rng(seed)
    idx = rng.choice(len(table.train), size=min(n, len(table.train)), replace=False)
    path = out / "train_rows.csv"
    table.train.iloc[np.sort(idx)][table.features].to_csv(path, index=False)
    return {"method": REFERENCE, "rows_fit": None, "draws": str(path)}


# ----------------------------------------------------------------------------- output


def fmt(v, digits=1, pct=False) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    return f"{v:.{digits}f}" + ("%" if pct else "")


def markdown(results: dict) -> str:
    head = results["settings"]
    lines = [
        "# vaekit vs TVAE on tables",
        "",
        f"`{head['command']}`",
        "",
        f"{head['started']}; {head['machine']}; torch threads {head['torch_threads']}; "
        f"ctgan {head['versions'].get('ctgan')}, vaekit {head['versions'].get('vaekit')}, "
        f"torch {head['versions'].get('torch')}, scikit-learn {head['versions'].get('scikit-learn')}. "
        f"TVAE epochs: {head['tvae_epochs'] if head['tvae_epochs'] is not None else 'its default'}; "
        f"vaekit: {head['vaekit_extra'] or '(no extra options)'}, epochs "
        f"{head['vaekit_epochs'] if head['vaekit_epochs'] is not None else 'its default'}; "
        f"seed {head['seed']}.",
        "",
        "Two-sample: balanced accuracy of one gradient-boosted classifier telling n draws from the n "
        f"held-out rows, {head['cv_folds']}-fold CV, mean +- sd (0.5 = indistinguishable). Support / range: "
        "% of drawn numeric values outside the column's support / the training rows' min-max, over the "
        "columns each applies to (support: those with a bound). Whole: % of "
        "drawn integer-column values that are whole numbers. Cat ok: % of drawn category values seen in "
        "training. Fit s, peak MiB: wall time and whole-process peak resident memory of the fit (vaekit: "
        "the `vaekit train` subprocess, start-up, test passes, NLL and report included; loop s: its "
        "training epochs alone). NLL: vaekit's held-out importance-sampled NLL in nats per row "
        "(standardised units; user units in results.json). train-rows: n real training rows, the "
        "ideal generator's scores. TVAE's one-time start-up is paid by an untimed 1-epoch warm-up fit "
        "before the first table; its DataTransformer runs columns in joblib worker processes "
        "(n_jobs=-1, its default), whose memory its peak does not include.",
        "",
        "| table | method | rows fit | two-sample bal. acc | support out | whole | cat ok | range out "
        "| fit s | loop s | peak MiB | NLL nats | note |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for t in results["tables"]:
        for r in t["methods"]:
            v = r.get("validity", {}).get("overall", {})
            ts = r.get("two_sample")
            notes = [r["error"]] if r.get("error") else []
            if r.get("rows_dropped_missing"):
                notes.append(f"{r['rows_dropped_missing']} rows with missing cells dropped")
            m = r.get("validity", {}).get("missing_cells")
            if m and m["test_pct"] > 0 and r["method"] != REFERENCE:
                notes.append(f"missing cells: drawn {m['drawn_pct']:.1f}%, test {m['test_pct']:.1f}%")
            if r.get("two_sample_complete_rows"):
                c = r["two_sample_complete_rows"]
                notes.append(
                    f"two-sample on complete rows only ({c['n'][0]} held-out, {c['n'][1]} drawn): "
                    f"{c['mean']:.3f} +- {c['sd']:.3f}"
                )
            if r.get("n_drawn") is not None and r["n_drawn"] != t["n_test"]:
                notes.append(f"{r['n_drawn']} rows drawn, not {t['n_test']}")
            absent = [c for c, e in r.get("validity", {}).get("columns", {}).items() if e.get("absent")]
            if absent:
                notes.append(f"columns absent from draws: {', '.join(absent)}")
            fitted = "error" not in r or "draws" in r  # a failed fit's time and memory: results.json
            cells = [
                t["name"],
                r["method"],
                "-" if r.get("rows_fit") is None else str(r["rows_fit"]),
                f"{ts['mean']:.3f} +- {ts['sd']:.3f}" if ts else "-",
                fmt(v.get("support"), 2, True),
                fmt(v.get("whole"), 1, True),
                fmt(v.get("category"), 1, True),
                fmt(v.get("range"), 2, True),
                fmt(r.get("fit_s") if fitted else None),
                fmt(r.get("train_loop_s")),
                fmt(r.get("peak_rss_mib") if fitted else None, 0),
                fmt(r.get("nll"), 3),
                "; ".join(notes).replace("|", "/"),
            ]
            lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "## Per column", ""]
    for t in results["tables"]:
        measured = [r for r in t["methods"] if "validity" in r]
        if not measured:
            continue
        lines += [
            f"### {t['name']}",
            "",
            f"{t['source']}; {t['n_train']} train / {t['n_test']} test rows; ids dropped: "
            f"{', '.join(t['id_columns']) or 'none'}.",
            "",
            "| column | kind | support | "
            + " | ".join(f"{r['method']} out / range / ok" for r in measured)
            + " |",
            "|---|---|---|" + "---:|" * len(measured),
        ]
        for c, kind in t["kinds"].items():
            cells = []
            for r in measured:
                e = r["validity"]["columns"].get(c, {})
                if e.get("absent"):
                    cells.append("absent")
                    continue
                ok = e.get("whole", e.get("category"))
                cells.append(
                    f"{fmt(e.get('support'), 2, True)} / {fmt(e.get('range'), 2, True)} / {fmt(ok, 1, True)}"
                )
            lines.append(f"| {c} | {kind} | {t['support'].get(c, '')} | " + " | ".join(cells) + " |")
        lines.append("")
    lines.append(
        "Per column: % outside the support / % outside the training range / % whole (integer kinds) or "
        "% known categories (category kinds); '-' where the measure does not apply."
    )
    return "\n".join(lines) + "\n"


def versions() -> dict:
    from importlib import metadata

    out = {"python": platform.python_version()}
    for pkg in ("vaekit", "ctgan", "rdt", "torch", "scikit-learn", "numpy", "pandas"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = None
    return out


def _support_text(lo, hi) -> str:
    return f"[{'-inf' if lo == -math.inf else f'{lo:g}'}, {'inf' if hi == math.inf else f'{hi:g}'}]"


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("tables", type=Path, help="make_tables.py's folder, or one table's folder.")
    ap.add_argument(
        "--tables", dest="names", nargs="+", default=None, help="Only these tables (folder names)."
    )
    ap.add_argument("--out", type=Path, default=Path("tables_vs_tvae_results"), help="Results folder.")
    ap.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS))
    ap.add_argument("--tvae-epochs", type=int, default=None, help="TVAE epochs [default: TVAE's own, 300].")
    ap.add_argument(
        "--vaekit-epochs", type=int, default=None, help="vaekit --epochs [default: none given, vaekit's own]."
    )
    ap.add_argument(
        "--vaekit-args",
        default="",
        help='Extra options for vaekit train, one string: --vaekit-args "--batch-size 500 --latent-dim 8" '
        "(an --epochs here wins over --vaekit-epochs).",
    )
    ap.add_argument(
        "--vaekit-cmd", default=None, help="How to call vaekit [default: this Python's -m vaekit]."
    )
    ap.add_argument("--vaekit-timeout", type=float, default=3600.0, help="Seconds per vaekit command.")
    ap.add_argument(
        "--seed", type=int, default=0, help="Seed for both methods, the draws and the classifier."
    )
    ap.add_argument("--cv-folds", type=int, default=5)
    ap.add_argument(
        "--threads",
        type=int,
        default=None,
        help="Threads for both methods (torch.set_num_threads here; OMP/MKL_NUM_THREADS for vaekit) "
        "[default: as the environment sets them].",
    )
    ap.add_argument("--no-reference", action="store_true", help="Leave out the train-rows reference.")
    args = ap.parse_args(argv)

    import torch

    env = dict(os.environ)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
        env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = str(args.threads)
    cmd0 = shlex.split(args.vaekit_cmd) if args.vaekit_cmd else [sys.executable, "-m", "vaekit"]
    extra = shlex.split(args.vaekit_args)
    dirs = table_dirs(args.tables, args.names)
    args.out.mkdir(parents=True, exist_ok=True)
    results = {
        "settings": {
            "command": shlex.join([Path(sys.argv[0]).name, *(argv if argv is not None else sys.argv[1:])]),
            "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
            "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
            "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None,
            "torch_threads": torch.get_num_threads(),
            "env_threads": {k: env.get(k) for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")},
            "tvae_epochs": args.tvae_epochs,
            "vaekit_epochs": args.vaekit_epochs,
            "vaekit_extra": args.vaekit_args,
            "vaekit_cmd": shlex.join(cmd0),
            "seed": args.seed,
            "cv_folds": args.cv_folds,
            "versions": versions(),
        },
        "tables": [],
    }
    for i, folder in enumerate(dirs):
        table = Table(folder)
        if i == 0 and "tvae" in args.methods:
            try:
                results["settings"]["tvae_warm_up_s"] = warm_up_tvae(table, args.seed)
            except Exception as err:  # the real fit will report it
                results["settings"]["tvae_warm_up_error"] = f"{type(err).__name__}: {err}"
        n = len(table.test)
        out = args.out / table.name
        out.mkdir(parents=True, exist_ok=True)
        print(
            f"== {table.name}: {len(table.train)} train / {n} test rows, {len(table.features)} columns",
            flush=True,
        )
        # alternate which method goes first, so a change in the machine's load hits both alike
        order = list(args.methods) if i % 2 == 0 else list(reversed(args.methods))
        records = []
        for method in order:
            t0 = time.perf_counter()
            if method == "tvae":
                rec = run_tvae(table, n, args.tvae_epochs, args.seed, out)
            else:
                rec = run_vaekit(
                    table, n, args.vaekit_epochs, extra, args.seed, out, env, cmd0, args.vaekit_timeout
                )
            status = rec.get("error") or f"fit {rec.get('fit_s', float('nan')):.1f} s"
            if rec.get("rows_dropped_missing"):
                status += f"; {rec['rows_dropped_missing']} training rows with missing cells dropped for TVAE"
            print(f"   {method}: {status} ({time.perf_counter() - t0:.1f} s in all)", flush=True)
            records.append(rec)
        records.sort(key=lambda r: METHODS.index(r["method"]))
        if not args.no_reference:
            records.append(reference_rows(table, n, args.seed, out))
        encoder = Encoder(table)
        for rec in records:
            if "draws" not in rec:
                continue
            try:
                drawn = read_csv(Path(rec["draws"]))
                rec["n_drawn"] = len(drawn)
                rec["validity"] = validity(table, drawn)
                rec["two_sample"] = two_sample(
                    encoder, table.test[table.features], drawn, args.seed, args.cv_folds
                )
                real = table.test[table.features]
                if real.isna().to_numpy().any():  # also without the gaps: complete rows on both sides
                    real = real.dropna()
                    whole_rows = drawn[drawn.reindex(columns=table.features).notna().all(axis=1)]
                    if min(len(real), len(whole_rows)) >= 2 * args.cv_folds:
                        rec["two_sample_complete_rows"] = two_sample(
                            encoder, real, whole_rows, args.seed, args.cv_folds
                        )
                        rec["two_sample_complete_rows"]["n"] = [len(real), len(whole_rows)]
            except Exception as err:
                rec["error"] = f"measuring the draws: {type(err).__name__}: {err}"
                rec["traceback"] = traceback.format_exc()
        results["tables"].append(
            {
                "name": table.name,
                "folder": str(folder),
                "source": table.meta.get("source"),
                "n_train": len(table.train),
                "n_test": n,
                "id_columns": table.ids,
                "kinds": table.kinds,
                "support": {
                    c: _support_text(*table.support[c])
                    for c in table.features
                    if table.kinds[c] not in ("categorical", "real")
                },
                "order": order,
                "methods": records,
            }
        )
        (args.out / "results.json").write_text(json.dumps(results, indent=2, default=str) + "\n")
    results["settings"]["load_average_end"] = os.getloadavg() if hasattr(os, "getloadavg") else None
    (args.out / "results.json").write_text(json.dumps(results, indent=2, default=str) + "\n")
    text = markdown(results)
    (args.out / "results.md").write_text(text)
    print()
    print(text)
    print(f"wrote {args.out / 'results.md'} and {args.out / 'results.json'}")


if __name__ == "__main__":
    main()
