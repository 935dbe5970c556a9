"""Settings to a trained run: load the data, build the model and fit it, the one path that the
command line, sweeps and the demo share (so the CLI and the sweep do not import each other).

`settings` is the flat dict of training options (`vaekit.cli.TRAIN_OPTIONS` names them, with
their defaults); `build_and_fit` writes the run folder and returns the `vaekit.train.Run`.
"""

from __future__ import annotations

from pathlib import Path

import click

from vaekit.errors import VaekitError, check


def hidden_sizes(value) -> list[int]:
    if isinstance(value, (list, tuple)):
        parts = list(value)
    else:
        parts = [p for p in str(value).replace(" ", "").split(",") if p]
    try:
        sizes = [int(p) for p in parts]
    except (TypeError, ValueError):
        raise VaekitError(f"hidden must be layer sizes like 512,256, not {value!r}.") from None
    check(all(s >= 1 for s in sizes), f"hidden layer sizes must be positive, not {value!r}.")
    return sizes


def build_and_fit(s: dict, out: Path, overwrite: bool, progress: bool, resume: bool = False):
    """Load data, build the model and train it: the one path the CLI commands share."""
    from vaekit import datasets, train
    from vaekit.model import VAE

    check(
        s["beta"] is not None and s["beta"] >= 0,
        f"beta must be a number of at least 0 (0 = pure reconstruction), not {s['beta']}.",
    )
    data = datasets.load(
        s["data"],
        test_size=s["test_size"],
        scaling=s["scaling"],
        label_column=s["label_column"],
        keys=npz_keys(s),
        columns=s["columns"],
        drop_columns=s["drop_columns"],
        test_data=s["test_data"],
        image_options=image_options(s),
    )
    for note in data.notes:
        click.echo(f"note: {note}", err=True)
    model = VAE.for_data(
        data,
        latent_dim=s["latent_dim"],
        likelihood=s["likelihood"],
        beta=s["beta"],
        arch=s["arch"],
        hidden=tuple(hidden_sizes(s["hidden"])),
        activation=s["activation"],
        model=s["model"],
        sigma=s["sigma"],
        per_dim_sigma=bool(s["per_dim_sigma"]),
        beta_range=tuple(s["beta_range"]) if s["beta_range"] else None,
        seed=s["seed"],
    )
    if progress:
        from vaekit.model import describe

        click.echo(data.describe(), err=True)
        click.echo(describe(model), err=True)
    return train.fit(
        model,
        data,
        epochs=s["epochs"],
        batch_size=s["batch_size"],
        lr=s["lr"],
        seed=s["seed"],
        out=out,
        warmup_epochs=s["warmup_epochs"],
        resume=resume,
        overwrite=overwrite,
        device=s["device"],
        devices=s["devices"],
        num_nodes=s["num_nodes"],
        strategy=s["strategy"],
        precision=s["precision"],
        clip_grad=s["clip_grad"],
        skip_nonfinite=bool(s["skip_nonfinite"]),
        nll_samples=s["nll_samples"],
        progress=progress,
        config={"options": _plain(s), "data": data_record(data, s)},
    )


def image_options(s: dict) -> dict:
    return {"alpha": s.get("alpha") or "composite", "background": s.get("background", 1.0)}


def npz_keys(s: dict) -> dict:
    """The .npz array names the settings give (--x-key, --y-key, --factors-key)."""
    keys = {role: s.get(f"{role}_key") for role in ("x", "y", "factors") if s.get(f"{role}_key")}
    if s.get("key"):
        keys["table"] = s["key"]
    return keys


def _plain(s: dict) -> dict:
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in s.items()}


def data_record(data, s: dict) -> dict:
    """What config.yaml says about the data (enough to reload the same split)."""
    source = s["data"]
    path = Path(source)
    if path.exists():
        source = str(path.resolve())
    return {
        "source": source,
        "name": data.name,
        "shape": list(data.shape),
        "kind": data.kind,
        "test_size": s["test_size"] if not s["test_data"] else None,
        "test_data": str(Path(s["test_data"]).resolve()) if s["test_data"] else None,
        "scaling": data.scaling.name,
        "label_column": s["label_column"],
        "keys": npz_keys(s) or None,
        "image_options": image_options(s) if data.is_image else None,
        "notes": data.notes,
        "columns": s["columns"],
        "drop_columns": s["drop_columns"],
        "column_names": data.column_names,
        "label_names": data.label_names,
        "factor_names": data.factor_names,
    }
