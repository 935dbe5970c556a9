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


def fit(model, data, *args, figures: bool = True, callbacks=(), **kwargs):
    """`vaekit.train.fit` plus the run's figures and report.html (when `out` is given and
    `figures`): what `vaekit.fit` is. Same arguments and result as `vaekit.train.fit`."""
    from vaekit import report, train

    extra = [report.RunReport(data)] if figures else []
    return train.fit(model, data, *args, callbacks=[*callbacks, *extra], **kwargs)


def objective_settings(s: dict):
    """The objective the flat settings name, built once and not yet bound to a model
    (`objectives.build`): --objective (auto: the model's own, as `objectives.default_for` picks
    it from --model and --beta-range) with the settings that objective declares. Refuses
    (`VaekitError`) an unknown objective, a setting given for an objective that does not have it,
    and a value out of its range, before any data is read."""
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
    return objectives.build(resolved, **{k: s.get(k) for k in declared})


def check_settings(s: dict):
    """Check the flat settings as far as can be done before the data is read: beta, latent_dim,
    the hidden sizes, the prior and its settings (built once, unbound), the training settings
    (`train.check_settings`) and the objective (`objective_settings`). Raises `VaekitError`
    naming the first problem (a sweep runs this for every value before its first run trains).
    Returns the objective, built and not yet bound to a model."""
    from vaekit import priors, train
    from vaekit.model import check_beta, check_latent_dim

    check_beta(s["beta"])
    check_latent_dim(s["latent_dim"])
    config.hidden_sizes(s["hidden"])
    priors.make(config.prior_entry(s), s["latent_dim"])  # each prior setting, checked by its prior
    train.check_settings(config.section(config.TrainConfig, s))
    return objective_settings(s)


def load_data(s: dict):
    """The data set the settings name, read, split and scaled as training reads it (the
    `DataConfig` fields: --data, --test-size, --scaling, --label-column, the .npz keys, --columns,
    --drop-columns, --test-data, the image and table options). Raises `VaekitError` for a missing
    or unreadable source, or data that cannot be trained on (e.g. NaN values)."""
    from vaekit import datasets

    return datasets.load(config.section(config.DataConfig, s))


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
    from vaekit import datasets, objectives
    from vaekit.model import VAE

    objective = check_settings(s)  # before the data is read; the objective built once
    data = load_data(s)
    for note in data.notes:
        click.echo(f"note: {note}", err=True)
    model = VAE.for_data(data, seed=s["seed"], config=config.model_config(s))
    objective = objectives.attach(objective, model)
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


def _plain(s: dict) -> dict:
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in s.items()}
