"""Settings to a trained run: load the data, build the model and fit it, the one path that the
command line, sweeps and the demo share (so the CLI and the sweep do not import each other).

`settings` is the flat dict of training options (the fields of `vaekit.config`'s DataConfig,
ModelConfig and TrainConfig, plus the objectives' settings); `build_and_fit` writes the run
folder and returns the `vaekit.train.Run`.
"""

from __future__ import annotations

from pathlib import Path

import click

from vaekit import config
from vaekit.errors import VaekitError, check


def hidden_sizes(value) -> list[int]:
    """Hidden layer sizes as ints, from text like "512,256" (spaces ignored) or a list or tuple
    (its entries go through `int`, so a float is truncated). Raises `VaekitError` for an entry
    `int` refuses (e.g. "512.0", "a") or a size below 1."""
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


def fit(model, data, *args, figures: bool = True, callbacks=(), **kwargs):
    """`vaekit.train.fit` plus the run's figures and report.html (when `out` is given and
    `figures`): what `vaekit.fit` is. Same arguments and result as `vaekit.train.fit`."""
    from vaekit import report, train

    extra = [report.RunReport(data)] if figures else []
    return train.fit(model, data, *args, callbacks=[*callbacks, *extra], **kwargs)


def prior_settings(s: dict) -> dict:
    """config.yaml's prior entry from the settings (--prior, --prior-components, --prior-weights)."""
    name = s.get("prior") or "normal"
    out: dict = {"name": name}
    if name == "normal":
        check(
            s.get("prior_components") is None,
            "--prior-components applies to the mog and vamp priors; add --prior mog or --prior vamp.",
        )
        return out
    if s.get("prior_components") is not None:
        out["components"] = s["prior_components"]
    weights = s.get("prior_weights") or "learned"
    check(
        weights in ("learned", "uniform"),
        f"--prior-weights must be learned or uniform, not {weights!r}.",
    )
    check(
        name == "mog" or weights == "learned" or s.get("prior_weights") is None,
        "--prior-weights applies to the mog prior (the VampPrior's weights are 1/K, as in the paper); "
        "drop --prior-weights.",
    )
    if name == "mog":
        out["learn_weights"] = weights == "learned"
    return out


def objective_settings(s: dict) -> tuple[str, dict]:
    """(objective name, its settings) from the flat settings: --objective (auto: the model's own,
    as `objectives.default_for` picks it from --model and --beta-range) and the settings that
    objective declares. Refuses (`VaekitError`) an unknown objective and a setting given for an
    objective that does not have it; builds the objective once, unbound, so a value out of its
    range is refused before any data is read."""
    from vaekit import objectives

    name = s.get("objective") or "auto"
    auto = objectives.default_for(s.get("model") or "vae", bool(s.get("beta_range")))
    resolved = auto if name == "auto" else name
    check(
        resolved in objectives.OBJECTIVES,
        f"Unknown objective {name!r}; choose one of auto, {', '.join(objectives.OBJECTIVES)}.",
    )
    declared = objectives.OBJECTIVES[resolved].SETTINGS
    for other in objectives.OBJECTIVES.values():
        for key, (_, default, _) in other.SETTINGS.items():
            value = s.get(key)
            if key not in declared and value is not None and value != default:
                fix = "drop it" if s.get("model") == "ae" else "drop it or choose that objective"
                raise VaekitError(
                    f"--{key.replace('_', '-')} applies to the {other.name} objective, not {resolved}; {fix}."
                )
    given = {k: s.get(k) for k in declared}
    objectives.build(resolved, **given)
    return resolved, given


def make_objective(s: dict, model):
    """The objective the settings name (`objective_settings`), bound to `model`."""
    from vaekit import objectives

    name, given = objective_settings(s)
    return objectives.make(name, model, **given)


def check_settings(s: dict) -> None:
    """Check the flat settings as far as can be done before the data is read: beta, latent_dim,
    the training settings (`train.check_settings`) and the objective (`objective_settings`).
    Raises `VaekitError` naming the first problem (a sweep runs this for every value before its
    first run trains)."""
    from vaekit import config, train
    from vaekit.model import check_beta, check_latent_dim

    check_beta(s["beta"])
    check_latent_dim(s["latent_dim"])
    train.check_settings(config.section(config.TrainConfig, s))
    objective_settings(s)


def load_data(s: dict):
    """The data set the settings name, read, split and scaled as training reads it (--data,
    --test-size, --scaling, --label-column, the .npz keys, --columns, --drop-columns,
    --test-data, the image options, --discrete-columns). Raises `VaekitError` for a missing or
    unreadable source, or data that cannot be trained on (e.g. NaN values)."""
    from vaekit import datasets

    return datasets.load(
        s["data"],
        test_size=s["test_size"],
        scaling=s["scaling"],
        label_column=s["label_column"],
        keys=npz_keys(s),
        columns=s["columns"],
        drop_columns=s["drop_columns"],
        test_data=s["test_data"],
        image_options=image_options(s),
        discrete_columns=s.get("discrete_columns"),
        table_options=table_options(s),
        binarize=s.get("binarize") or "none",
    )


def table_options(s: dict) -> dict:
    """How to read and model a table file, from the settings (--sep, --decimal, --id-column,
    --column-types, --missing); the keys not given are left out."""
    from vaekit import datasets

    out = {k: s.get(k) for k in datasets.TABLE_OPTIONS if s.get(k) is not None}
    if out.get("missing") == "refuse":
        del out["missing"]
    return out


def build_and_fit(
    s: dict,
    out: Path,
    overwrite: bool,
    progress: bool,
    resume: bool = False,
    figures: bool = True,
    callbacks=(),
):
    """Load data, build the model and train it: the one path the CLI commands share (`figures`:
    draw the run's figures and report.html when training ends; `callbacks`: `train.fit`'s)."""
    from vaekit import datasets
    from vaekit.model import VAE

    check_settings(s)  # before the data is read
    data = load_data(s)
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
        column_spread=s.get("column_spread") or "row",
        beta_range=tuple(s["beta_range"]) if s["beta_range"] else None,
        seed=s["seed"],
        prior=prior_settings(s),
        condition=s.get("condition") or "none",
    )
    objective = make_objective(s, model)
    if progress:
        from vaekit.model import describe

        click.echo(data.describe(), err=True)
        if data.schema is not None:
            click.echo("columns (name, type, likelihood):", err=True)
            for line in data.schema.describe_lines():
                click.echo(line, err=True)
        click.echo(describe(model), err=True)
    settings = config.section(config.TrainConfig, s)
    settings.skip_nonfinite = bool(settings.skip_nonfinite)
    return fit(
        model,
        data,
        settings,
        out=out,
        resume=resume,
        overwrite=overwrite,
        progress=progress,
        config={"options": _plain(s), "data": datasets.record(data)},
        objective=objective,
        figures=figures,
        callbacks=callbacks,
    )


def image_options(s: dict) -> dict:
    """How to read images, from the settings: {"alpha": --alpha (default "composite"),
    "background": --background (1.0 when the key is absent; None means the reader's default, 1.0)}."""
    return {"alpha": s.get("alpha") or "composite", "background": s.get("background", 1.0)}


def npz_keys(s: dict) -> dict:
    """The .npz array names the settings give (--x-key, --y-key, --factors-key)."""
    keys = {role: s.get(f"{role}_key") for role in ("x", "y", "factors") if s.get(f"{role}_key")}
    if s.get("key"):
        keys["table"] = s["key"]
    return keys


def _plain(s: dict) -> dict:
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in s.items()}
