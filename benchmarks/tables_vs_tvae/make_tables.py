"""Write the tables of the vaekit-vs-TVAE benchmark as CSV files, offline.

    python benchmarks/tables_vs_tvae/make_tables.py OUTDIR [--only NAME ...] [--seed 0]

Each table goes to OUTDIR/NAME/ as train.csv and test.csv (one seeded split, about 80/20; a
table with a group id is split by group, so one group's rows never sit on both sides) and
meta.json, which records the source, every column's kind and support, and the id columns to
leave out. The CSV files are written as a user would have them: text categories as text,
whole numbers without a decimal point, missing cells empty.

Column kinds (meta.json "columns"):
  id          an identifier or a date: left out of training and of every measure ("id_columns")
  categorical text categories
  binary      0/1
  count       a whole number >= 0
  integer     a whole number, with its support where it has one (e.g. >= 0)
  proportion  a share in [0, 1]
  positive    a real number >= 0 (often skewed, often with many exact zeros)
  bounded     a real number inside known bounds ("support")
  real        a real number without bounds

Real tables come from data bundled inside PyPI packages (statsmodels, palmerpenguins,
vega_datasets); generated ones come from seeded NumPy with known structure.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd

TEST_SHARE = 0.2
WHOLE_KINDS = ("binary", "count", "integer")
KINDS = ("id", "categorical", "binary", "count", "integer", "proportion", "positive", "bounded", "real")
DEFAULT_SUPPORT = {
    "binary": [0, 1],
    "count": [0, None],
    "proportion": [0, 1],
    "positive": [0, None],
    "real": [None, None],
    "integer": [None, None],
}


def col(kind: str, support=None, note: str | None = None) -> dict:
    """One column's entry in meta.json: its kind, and for numeric kinds its support [lo, hi]
    (None = open)."""
    assert kind in KINDS, kind
    entry = {"kind": kind}
    if kind not in ("id", "categorical"):
        entry["support"] = list(support) if support is not None else DEFAULT_SUPPORT.get(kind, [None, None])
    if note:
        entry["note"] = note
    return entry


# ----------------------------------------------------------------------------- real tables


def _randhie(rng: np.random.Generator) -> dict:
    import statsmodels.api as sm

    d = sm.datasets.randhie.load_pandas().data
    d = d.iloc[np.sort(rng.choice(len(d), 5000, replace=False))].reset_index(drop=True)
    # the three self-rated-health dummies as the one text column a survey export would hold
    health = np.select(
        [d.hlthg == 1, d.hlthf == 1, d.hlthp == 1], ["good", "fair", "poor"], default="excellent"
    )
    frame = pd.DataFrame(
        {
            "mdvis": d.mdvis.astype(int),
            "lncoins": d.lncoins,
            "idp": d.idp.astype(int),
            "lpi": d.lpi,
            "fmde": d.fmde,
            "physlm": d.physlm,
            "disea": d.disea,
            "health": health,
        }
    )
    columns = {
        "mdvis": col("count", note="outpatient visits to an MD"),
        "lncoins": col("bounded", [0, round(math.log(101), 6)], "ln(coinsurance + 1), coinsurance 0-100"),
        "idp": col("binary", note="individual deductible plan"),
        "lpi": col("positive", note="ln(max(1, participation incentive))"),
        "fmde": col("positive", note="0 if idp = 1, else ln(max(1, MDE / (0.01 coinsurance)))"),
        "physlm": col("proportion", note="physical limitation"),
        "disea": col("positive", note="chronic diseases index"),
        "health": col("categorical", note="self-rated health (from hlthg, hlthf, hlthp)"),
    }
    return {
        "frame": frame,
        "columns": columns,
        "source": "statsmodels.datasets.randhie (RAND Health Insurance Experiment), 5,000 of 20,190 rows",
        "description": "health-care use: a skewed visit count, 0/1, a proportion, bounded and "
        "positive log-scale values, a 4-level text category",
    }


def _affairs(rng: np.random.Generator) -> dict:
    import statsmodels.api as sm

    d = sm.datasets.fair.load_pandas().data
    d = d.iloc[np.sort(rng.choice(len(d), 5000, replace=False))].reset_index(drop=True)
    rate = {1: "very poor", 2: "poor", 3: "fair", 4: "good", 5: "very good"}
    religious = {1: "not", 2: "mildly", 3: "fairly", 4: "strongly"}
    occupation = {
        1: "student",
        2: "farming/unskilled",
        3: "white-collar",
        4: "teacher/nurse/skilled",
        5: "managerial",
        6: "professional",
    }
    frame = pd.DataFrame(
        {
            "rate_marriage": d.rate_marriage.astype(int).map(rate),
            "age": d.age,
            "yrs_married": d.yrs_married,
            "children": d.children,
            "religious": d.religious.astype(int).map(religious),
            "educ": d.educ.astype(int),
            "occupation": d.occupation.astype(int).map(occupation),
            "occupation_husb": d.occupation_husb.astype(int).map(occupation),
            "affairs": d.affairs,
        }
    )
    columns = {
        "rate_marriage": col("categorical"),
        "age": col("positive", note="interval midpoints 17.5-42"),
        "yrs_married": col("positive", note="interval midpoints 0.5-23"),
        "children": col("bounded", [0, 5.5], "0-4, 5.5 = five or more"),
        "religious": col("categorical"),
        "educ": col("integer", [9, 20], "years of education, coded 9/12/14/16/17/20"),
        "occupation": col("categorical"),
        "occupation_husb": col("categorical"),
        "affairs": col("positive", note="time spent in affairs; about 2/3 exact zeros"),
    }
    return {
        "frame": frame,
        "columns": columns,
        "source": "statsmodels.datasets.fair (Fair 1978, Redbook survey), 5,000 of 6,366 rows",
        "description": "survey: four text categories, a zero-inflated skewed positive column, coded integers",
    }


def _penguins(rng: np.random.Generator) -> dict:
    import palmerpenguins

    d = palmerpenguins.load_penguins()
    frame = pd.DataFrame(
        {
            "species": d.species,
            "island": d.island,
            "bill_length_mm": d.bill_length_mm,
            "bill_depth_mm": d.bill_depth_mm,
            "flipper_length_mm": d.flipper_length_mm.astype("Int64"),
            "body_mass_g": d.body_mass_g.astype("Int64"),
            "sex": d.sex,
            "year": d.year.astype(int),
        }
    )
    columns = {
        "species": col("categorical"),
        "island": col("categorical"),
        "bill_length_mm": col("positive"),
        "bill_depth_mm": col("positive"),
        "flipper_length_mm": col("integer", [0, None]),
        "body_mass_g": col("integer", [0, None]),
        "sex": col("categorical", note="11 missing"),
        "year": col("integer", [2007, 2009]),
    }
    return {
        "frame": frame,
        "columns": columns,
        "source": "palmerpenguins.load_penguins() (Gorman et al. 2014), all 344 rows",
        "description": "three text categories, whole-number measurements, missing cells (19 cells)",
    }


def _seattle_weather(rng: np.random.Generator) -> dict:
    from vega_datasets import local_data

    d = local_data.seattle_weather()
    frame = pd.DataFrame(
        {
            "date": d.date.dt.strftime("%Y-%m-%d"),
            "precipitation": d.precipitation,
            "temp_max": d.temp_max,
            "temp_min": d.temp_min,
            "wind": d.wind,
            "weather": d.weather,
        }
    )
    columns = {
        "date": col("id", note="a date, left out like an id"),
        "precipitation": col("positive", note="mm; over half exact zeros"),
        "temp_max": col("real"),
        "temp_min": col("real"),
        "wind": col("positive"),
        "weather": col("categorical", note="5 levels"),
    }
    return {
        "frame": frame,
        "columns": columns,
        "source": "vega_datasets.local_data.seattle_weather(), all 1,461 days 2012-2015",
        "description": "daily weather: a date (dropped), zero-inflated precipitation, temperatures, "
        "a 5-level text category",
    }


def _modechoice(rng: np.random.Generator) -> dict:
    import statsmodels.api as sm

    d = sm.datasets.modechoice.load_pandas().data
    modes = {1: "air", 2: "train", 3: "bus", 4: "car"}
    frame = pd.DataFrame(
        {
            "individual": d.individual.astype(int),
            "mode": d["mode"].astype(int).map(modes),
            "choice": d.choice.astype(int),
            "ttme": d.ttme.astype(int),
            "invc": d.invc.astype(int),
            "invt": d.invt.astype(int),
            "gc": d.gc.astype(int),
            "hinc": d.hinc.astype(int),
            "psize": d.psize.astype(int),
        }
    )
    columns = {
        "individual": col("id", note="traveller id; 4 rows (one per mode) each"),
        "mode": col("categorical"),
        "choice": col("binary", note="1 for the chosen mode"),
        "ttme": col("integer", [0, None], "terminal waiting time"),
        "invc": col("integer", [0, None], "in-vehicle cost"),
        "invt": col("integer", [0, None], "travel time in vehicle"),
        "gc": col("integer", [0, None], "generalised cost"),
        "hinc": col("integer", [0, None], "household income"),
        "psize": col("count", [1, None], "party size"),
    }
    return {
        "frame": frame,
        "columns": columns,
        "group": "individual",
        "source": "statsmodels.datasets.modechoice (Greene, travel mode choice), all 840 rows",
        "description": "an id column, a text category, 0/1, whole-number costs and times",
    }


# ----------------------------------------------------------------------------- generated tables


def _expit(x):
    return 1.0 / (1.0 + np.exp(-x))


def _mixed_frame(rng: np.random.Generator, n: int = 3000) -> pd.DataFrame:
    """One latent factor z drives every column; the region, the membership and the count also
    depend on each other."""
    z = rng.normal(size=n)
    regions = np.array(["north", "south", "east", "west"])
    logits = np.stack([0.9 * z, -0.9 * z, 0.3 * z, np.zeros(n)], axis=1) + np.log([0.3, 0.3, 0.25, 0.15])
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    region_idx = (rng.random(n)[:, None] > np.cumsum(p, 1)).sum(1)
    region = regions[region_idx]
    region_effect = np.array([0.4, -0.3, 0.0, 0.2])[region_idx]
    score = 50 + 10 * (0.8 * z + 0.6 * rng.normal(size=n))
    income = np.exp(3.0 + 0.5 * z + region_effect + 0.4 * rng.normal(size=n))
    share = _expit(-0.3 + 0.9 * z + 0.6 * rng.normal(size=n))
    member = (rng.random(n) < _expit(-0.2 + 1.0 * z + 0.8 * (region == "north"))).astype(int)
    mean = np.exp(0.4 + 0.5 * z + 0.5 * member)
    visits = rng.poisson(rng.gamma(shape=2.0, scale=mean / 2.0))  # negative binomial, size 2
    return pd.DataFrame(
        {
            "customer_id": [f"C{i:05d}" for i in range(1, n + 1)],
            "region": region,
            "score": np.round(score, 2),
            "income": np.round(income, 2),
            "share": np.round(share, 4),
            "member": member,
            "visits": visits,
        }
    )


MIXED_COLUMNS = {
    "customer_id": col("id"),
    "region": col("categorical", note="4 levels, probabilities depend on z"),
    "score": col("real", note="50 + 10 (0.8 z + 0.6 e)"),
    "income": col("positive", note="log-normal: exp(3 + 0.5 z + region effect + 0.4 e)"),
    "share": col("proportion", note="expit(-0.3 + 0.9 z + 0.6 e)"),
    "member": col("binary", note="Bernoulli(expit(-0.2 + z + 0.8 [north]))"),
    "visits": col("count", note="negative binomial (size 2), mean exp(0.4 + 0.5 z + 0.5 member)"),
}


def _synth_mixed(rng: np.random.Generator) -> dict:
    return {
        "frame": _mixed_frame(rng),
        "columns": MIXED_COLUMNS,
        "source": "generated (seeded NumPy): one latent factor z ~ N(0, 1)",
        "description": "mixed kinds: an id, a 4-level text category, real, log-normal, "
        "proportion, 0/1, negative-binomial count, all dependent through z",
    }


def _synth_mixed_missing(rng: np.random.Generator) -> dict:
    frame = _mixed_frame(rng)  # the same rows as synth_mixed (same seed)
    mask_rng = np.random.default_rng(rng.integers(2**32) + 1)
    for name in frame.columns:
        if MIXED_COLUMNS[name]["kind"] == "id":
            continue
        gone = mask_rng.random(len(frame)) < 0.10
        if MIXED_COLUMNS[name]["kind"] in WHOLE_KINDS:
            frame[name] = frame[name].astype("Int64")
        frame.loc[gone, name] = pd.NA if frame[name].dtype == "Int64" else np.nan
    return {
        "frame": frame,
        "columns": MIXED_COLUMNS,
        "source": "generated: synth_mixed's rows, each non-id cell blanked with probability 0.1 (MCAR)",
        "description": "synth_mixed with about 10% of cells missing at random",
    }


def _synth_counts(rng: np.random.Generator, n: int = 3000) -> dict:
    names = ["gp_visits", "specialist_visits", "prescriptions", "er_visits", "hospital_days", "sick_days"]
    log_mean = np.array([0.3, -0.7, 0.8, -1.6, -2.0, 0.5])
    # a Gaussian latent per column, equicorrelated 0.5, plus a block (the first three) at 0.8
    d = len(names)
    cov = np.full((d, d), 0.5) + 0.5 * np.eye(d)
    cov[:3, :3] = 0.8
    np.fill_diagonal(cov, 1.0)
    g = rng.multivariate_normal(np.zeros(d), cov, size=n)
    lam = np.exp(log_mean + 0.9 * g)
    counts = rng.poisson(lam)
    nonuser = rng.random(n) < 0.3  # structural zeros shared by the three primary-care columns
    counts[nonuser, :3] = 0
    frame = pd.DataFrame(counts, columns=names)
    columns = {c: col("count") for c in names}
    columns["gp_visits"]["note"] = "30% structural zeros shared with specialist_visits, prescriptions"
    return {
        "frame": frame,
        "columns": columns,
        "source": "generated (seeded NumPy): Poisson-log-normal, correlated latents, shared zero inflation",
        "description": "six correlated count columns, many zeros",
    }


TABLES = {
    "randhie": (_randhie, 101),
    "affairs": (_affairs, 102),
    "penguins": (_penguins, 103),
    "seattle_weather": (_seattle_weather, 104),
    "modechoice": (_modechoice, 105),
    "synth_mixed": (_synth_mixed, 201),
    "synth_counts": (_synth_counts, 202),
    "synth_mixed_missing": (_synth_mixed_missing, 201),  # same seed: synth_mixed's rows and split
}


def split(frame: pd.DataFrame, seed: int, group: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Seeded ~80/20 split of the row positions; by whole groups when `group` is given."""
    rng = np.random.default_rng(seed)
    if group is None:
        order = rng.permutation(len(frame))
        n_test = round(TEST_SHARE * len(frame))
        return np.sort(order[n_test:]), np.sort(order[:n_test])
    groups = np.asarray(pd.unique(frame[group]))
    chosen = rng.permutation(groups)[: round(TEST_SHARE * len(groups))]
    is_test = frame[group].isin(chosen).to_numpy()
    return np.flatnonzero(~is_test), np.flatnonzero(is_test)


def write_table(name: str, out: Path, seed: int = 0) -> dict:
    build, table_seed = TABLES[name]
    spec = build(np.random.default_rng(table_seed + 1000 * seed))
    frame, columns = spec["frame"], spec["columns"]
    assert list(frame.columns) == list(columns), name
    for c, entry in columns.items():  # whole-number kinds as integers (nullable where missing)
        if entry["kind"] in WHOLE_KINDS and frame[c].dtype != "Int64":
            frame[c] = frame[c].astype("Int64")
    train_idx, test_idx = split(frame, table_seed + 1000 * seed, spec.get("group"))
    folder = out / name
    folder.mkdir(parents=True, exist_ok=True)
    frame.iloc[train_idx].to_csv(folder / "train.csv", index=False)
    frame.iloc[test_idx].to_csv(folder / "test.csv", index=False)
    kinds = {k: [c for c, e in columns.items() if e["kind"] == k] for k in KINDS}
    used = [c for c in frame.columns if columns[c]["kind"] != "id"]
    meta = {
        "name": name,
        "source": spec["source"],
        "description": spec["description"],
        "rows": len(frame),
        "n_train": len(train_idx),
        "n_test": len(test_idx),
        "split": {"seed": table_seed + 1000 * seed, "test_share": TEST_SHARE, "by_group": spec.get("group")},
        "id_columns": kinds.pop("id"),
        "columns": columns,
        **kinds,
        "missing_cells": int(frame[used].isna().sum().sum()),
        "rows_with_missing": int(frame[used].isna().any(axis=1).sum()),
    }
    (folder / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
    return meta


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out", type=Path, help="Folder to write the tables into (one sub-folder each).")
    ap.add_argument("--only", nargs="+", choices=list(TABLES), help="Write only these tables.")
    ap.add_argument("--seed", type=int, default=0, help="Shifts every table's subsample/split seed.")
    args = ap.parse_args(argv)
    names = args.only or list(TABLES)
    index, skipped = {}, []
    for name in names:
        try:
            meta = write_table(name, args.out, args.seed)
        except ImportError as err:  # a data package is not installed: say which, go on
            print(f"{name:20s} skipped: {err} (pip install {err.name or 'the data package'})")
            skipped.append(name)
            continue
        kinds = {k: len(meta[k]) for k in KINDS if k != "id" and meta[k]}
        print(
            f"{name:20s} {meta['rows']:5d} rows ({meta['n_train']} train / {meta['n_test']} test), "
            f"ids {meta['id_columns'] or '-'}, {kinds}, missing cells {meta['missing_cells']}"
        )
        index[name] = {k: meta[k] for k in ("source", "rows", "n_train", "n_test")}
    (args.out / "tables.json").write_text(json.dumps(index, indent=2) + "\n")
    print(f"wrote {len(index)} tables to {args.out}" + (f"; skipped {', '.join(skipped)}" if skipped else ""))
    if skipped:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
