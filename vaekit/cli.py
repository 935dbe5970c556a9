"""The `vaekit` command line: parse, validate, call the Python API, print.

Every training option also has a config-file key (the option name with underscores); the command
line overrides the file. Bad input ends with exit status 2 and one sentence, never a traceback.
"""

from __future__ import annotations

import functools
import json
import math
import sys
import time
from pathlib import Path

import click
import yaml

from vaekit import config, summary_keys
from vaekit.config import RESUMABLE
from vaekit.errors import Finished, Interrupted, VaekitError, check
from vaekit.workflow import build_and_fit

# every training option, generated from the typed configs' fields (vaekit.config), then the
# settings each objective declares there (no objective, and no torch, is imported for them)
TRAIN_OPTIONS = config.training_options()
OPTIONS_BY_NAME = {o.name: o for o in TRAIN_OPTIONS}


OVERWRITE = click.option("--overwrite", is_flag=True, help="Replace the output file if it exists.")


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def train_options(fn=None, exclude=()):
    """Add every training option (default None, so given ones can be told apart)."""
    if fn is None:
        return lambda f: train_options(f, exclude)
    for opt in reversed([o for o in TRAIN_OPTIONS if o.name not in exclude]):
        if opt.is_flag:
            fn = click.option(_flag(opt.name), opt.name, is_flag=True, default=None, help=opt.help)(fn)
        else:
            fn = click.option(
                _flag(opt.name),
                opt.name,
                type=opt.type,
                nargs=opt.nargs,
                default=None,
                help=opt.help if opt.default is None else f"{opt.help} [default: {opt.default}]",
            )(fn)
    fn = click.option(
        "--config", "config_file", type=click.Path(), default=None, help="YAML file of options."
    )(fn)
    return fn


def _coerce(key: str, value, where: str):
    opt = OPTIONS_BY_NAME[key]
    if value is None:
        return None
    if opt.name == "hidden":
        try:
            return ",".join(str(s) for s in config.hidden_sizes(value))
        except (VaekitError, OverflowError) as err:
            raise VaekitError(f"{where}: {err}") from None
    try:
        if opt.nargs == 2:
            check(isinstance(value, (list, tuple)) and len(value) == 2, "")
            return tuple(float(v) for v in value)
        if opt.type is bool:
            check(isinstance(value, bool), "")
            return value
        if opt.type is int:  # 5000, "5000", 5e3 or "5e3" (YAML reads 5e3 as text), 5000.0
            check(not isinstance(value, bool), "")
            try:
                whole = value if isinstance(value, int) else int(str(value).strip())
            except ValueError:
                number = float(value)
                check(number.is_integer(), "")
                whole = int(number)
            check(abs(whole) < 2**63, "")  # what a setting can hold (64-bit)
            return whole
        if opt.type is float:
            check(not isinstance(value, (bool, list, dict)), "")
            return float(value)
        check(isinstance(value, (str, int, float)) and not isinstance(value, bool), "")
        return str(value)
    except (VaekitError, TypeError, ValueError, OverflowError):
        import reprlib

        kind = {int: "a whole number", float: "a number", bool: "true or false", str: "text"}[opt.type]
        if opt.nargs == 2:
            kind = "a list of two numbers"
        raise VaekitError(f"{where}: {key} must be {kind}, not {reprlib.repr(value)}.") from None


def read_config_file(path: str) -> dict:
    """The training options in a YAML config file (--config): option name (dashes read as
    underscores) -> value coerced to the option's type; {} for an empty file. Raises
    `VaekitError` for a missing file, invalid YAML, a top level that is not a mapping, an
    unknown key, or a value of the wrong type."""
    p = Path(path)
    check(p.is_file(), f"No config file at {p}; check the path.")
    try:
        content = yaml.safe_load(p.read_text())
    except (yaml.YAMLError, UnicodeDecodeError, ValueError, RecursionError) as err:
        first = (str(err).splitlines() or [type(err).__name__])[0][:200]
        raise VaekitError(f"{p} is not valid YAML ({first}); fix its syntax.") from None
    if content is None:
        return {}
    check(
        isinstance(content, dict), f"{p} must hold a mapping of option: value, not {type(content).__name__}."
    )
    if "format_version" in content and isinstance(content.get("options"), dict):
        # a run folder's own config.yaml: train again with the options it records (the last
        # segment's; replay earlier segments with --resume, see train.segments)
        content = {k: v for k, v in content["options"].items() if k in OPTIONS_BY_NAME}
    out = {}
    for key, value in content.items():
        norm = str(key).replace("-", "_")
        if norm not in OPTIONS_BY_NAME:
            import difflib

            near = difflib.get_close_matches(norm, list(OPTIONS_BY_NAME), n=1, cutoff=0.6)
            guess = f"did you mean {near[0]!r}? " if near else ""
            where = (
                f"{key!r} is a command-line flag, not a setting; give --{norm.replace('_', '-')} on the "
                "command line"
                if norm in ("out", "resume", "overwrite", "quiet", "config")
                else f"{guess}a key is a training option of `vaekit train --help` written with underscores "
                "(--latent-dim is latent_dim)"
            )
            raise VaekitError(f"{p.name}: unknown key {key!r}; {where}.")
        out[norm] = _coerce(norm, value, p.name)
    return out


def merge_options(given: dict, config_file: str | None, base: dict | None = None) -> dict:
    """defaults < `base` (a run's own settings) < the config file < the command line."""
    settings = config.defaults()
    settings.update(base or {})
    if config_file:
        settings.update({k: v for k, v in read_config_file(config_file).items() if v is not None})
    settings.update({k: v for k, v in given.items() if k in OPTIONS_BY_NAME and v is not None})
    return settings


def _resolved_options(run_config: dict) -> dict:
    """What a run's "auto" options became, as its config.yaml records them (the objective, KL
    schedule, likelihood, net and scaling), so naming the value a run already has is no change."""
    model, train, data = (run_config.get(k) or {} for k in ("model", "train", "data"))
    objective = train.get("objective") if isinstance(train.get("objective"), dict) else {}
    return {
        "objective": objective.get("name"),
        "kl_schedule": objective.get("kl_schedule"),
        "likelihood": model.get("likelihood"),
        "arch": model.get("arch"),
        "scaling": data.get("scaling"),
    }


FETCHED: dict[str, str] = {}  # the folder of each run fetched from a hub this process -> its id


class RunOrRepo(click.ParamType):
    """A run (or sweep) folder here, or a hub repository OWNER/NAME: its model files fetched once
    into huggingface_hub's cache (`vaekit.hub.fetch`) and read there, never written."""

    name = "RUN"

    def convert(self, value, param, ctx):
        import importlib.util

        from vaekit import hub

        if importlib.util.find_spec("huggingface_hub") is None:
            return str(value)  # no hub: a folder, and the command says if it is missing
        folder, fetched = hub.resolve(str(value))
        if fetched:
            FETCHED[str(folder)] = str(value)
        return str(folder)


RUN = RunOrRepo()


def in_run(run, *parts) -> Path:
    """A default output inside RUN (RUN/parts), refused for a run fetched from a hub: its folder
    is huggingface_hub's cache, which vaekit never writes."""
    check(
        str(run) not in FETCHED,
        f"{FETCHED.get(str(run))} is a hub repository, read from huggingface_hub's cache; give --out "
        f"(or copy it into a folder of your own: vaekit pull {FETCHED.get(str(run))} --out FOLDER).",
    )
    return Path(run).joinpath(*parts)


def summary_line(summary: dict, seconds: float) -> str:
    """One line for the terminal: the summary keys shown on a "line" (`vaekit.summary_keys`:
    elbo, rate, distortion, nll, knn_accuracy, active_units) where the summary has them (floats
    to 4 significant digits), and `seconds` taken."""
    from vaekit import summary_keys

    parts = []
    for key in summary_keys.shown_in("line"):
        value = summary.get(key)
        if value is not None:
            parts.append(f"{key} {value:.4g}" if isinstance(value, float) else f"{key} {value}")
    return ", ".join(parts) + f" ({seconds:.1f} s)"


# ----------------------------------------------------------------------------- commands


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="vaekit")
def cli():
    """vaekit: train variational autoencoders, see and measure their latent space."""


@cli.command()
@train_options
@click.option("--out", type=click.Path(), default=None, help="Run folder [default: runs/DATA-betaB].")
@click.option("--resume", "resume_run", type=click.Path(), default=None, help="Continue this run folder.")
@click.option("--overwrite", is_flag=True, help="Replace the files of an existing run folder.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def train(config_file, out, resume_run, overwrite, quiet, **given):
    """Train a VAE (or an AE) and write its run folder."""
    from vaekit import runs

    started = time.perf_counter()
    if resume_run:
        check(
            out is None or Path(out).resolve() == Path(resume_run).resolve(),
            f"--resume continues {resume_run} in its own folder, so --out {out} has no effect; drop --out "
            "(to train a copy elsewhere, copy the folder first).",
        )
        run_config = runs.read_config(resume_run)
        check(
            "options" in run_config,
            f"{resume_run} was trained from Python (vaekit.fit), so its command-line options are unknown; "
            "resume it there: vaekit.fit(model, data, out=RUN, resume=True, epochs=N).",
        )
        check(
            isinstance(run_config["options"], dict),
            f"{resume_run}/config.yaml's options entry is damaged (not a mapping); restore the file from the "
            "run.",
        )
        base = dict(run_config["options"])
        if base.get("beta_range"):
            base["beta_range"] = tuple(base["beta_range"])
        asked = merge_options(given, config_file, base)
        named = {k for k, v in given.items() if v is not None}
        named |= set(read_config_file(config_file)) if config_file else set()
        resolved = _resolved_options(run_config)
        changed = sorted(
            k
            for k in named
            if k not in RESUMABLE
            and asked.get(k) != base.get(k, asked.get(k))
            and asked.get(k) != resolved.get(k)
        )
        check(
            not changed,
            f"{', '.join(_flag(k) for k in changed)} cannot change on --resume: the checkpoint holds a model "
            "of the run's data, net and objective; train a new run with --out (on --resume "
            f"{', '.join(_flag(k) for k in RESUMABLE)} may change)."
            if changed
            else "",
        )
        settings = {**base, **{k: asked[k] for k in named if k in RESUMABLE}}
        last_schedule = ((run_config.get("train") or {}).get("lr_schedule")) or "constant"
        schedule = settings.get("lr_schedule") or "auto"
        switched = schedule not in ("auto", last_schedule)
        if "lr_schedule" in named and "lr_min" not in named and switched and schedule != "cosine":
            settings["lr_min"] = 0.0  # the run's cosine end point does not follow it into a new schedule
        try:
            result = build_and_fit(settings, Path(resume_run), False, not quiet, resume=True)
        except Finished as done:
            click.echo(str(done))
            return
        out_path = Path(resume_run)
    else:
        settings = merge_options(given, config_file)
        name = Path(str(settings["data"])).stem or "data"
        default_out = Path("runs") / f"{name}-beta{settings['beta']:g}"
        out_path = Path(out) if out else default_out
        result = build_and_fit(settings, out_path, overwrite, not quiet)
    if result.summary:
        click.echo(f"{out_path}: {summary_line(result.summary, time.perf_counter() - started)}")


def launcher_options(fn):
    """--launcher and the resources of its jobs (--partition, --time-min, --gpus, --mem-gb), given
    to the command as `launcher` and one `resources` dict (`vaekit.launch.run_jobs`)."""

    from vaekit import launch

    defaults = {"partition": None, "time_min": None, "gpus": 0, "mem_gb": None}

    @functools.wraps(fn)
    def command(*args, **kwargs):
        resources = kwargs["resources"] = {k: kwargs.pop(k) for k in defaults}
        given = [f"--{k.replace('_', '-')}" for k, v in resources.items() if v != defaults[k]]
        launcher = kwargs["launcher"]
        check(
            launcher is not None or not given,
            f"{given[0] if given else ''} is a job's resource; give --launcher slurm (or local) with it.",
        )
        slurm_only = [g for g in given if g != "--time-min"]
        check(
            launcher != "local" or not slurm_only,
            f"{slurm_only[0] if slurm_only else ''} is a Slurm job's resource; --launcher local runs on this "
            "machine as it is (--jobs sets how many at a time).",
        )
        for name, least in (("time_min", 1), ("gpus", 0), ("mem_gb", 1)):
            check(
                resources[name] is None or resources[name] >= least,
                f"--{name.replace('_', '-')} must be at least {least}, not {resources[name]}.",
            )
        return fn(*args, **kwargs)

    options = [
        click.option(
            "--launcher",
            type=click.Choice(list(launch.LAUNCHERS)),
            default=None,
            help="Each run a job through submitit: local processes, or a Slurm job array.",
        ),
        click.option("--partition", default=None, help="--launcher slurm: the partition."),
        click.option(
            "--time-min",
            type=int,
            default=None,
            help="--launcher: minutes per run [default: 60 on Slurm, no limit locally].",
        ),
        click.option(
            "--gpus",
            type=int,
            default=defaults["gpus"],
            show_default=True,
            help="--launcher slurm: GPUs per run.",
        ),
        click.option("--mem-gb", type=int, default=None, help="--launcher slurm: memory per run, GB."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


@cli.command(context_settings={"ignore_unknown_options": True})
@click.option("--beta", "betas", type=str, default=None, help="The betas: --beta 0 0.1 1 4.")
@click.option(
    "--over",
    type=str,
    default=None,
    help="Sweep this numeric training or objective setting instead of beta, its values after it: "
    "--over tc-weight 1 6 10 --objective beta-tcvae.",
)
@click.argument("beta_values", nargs=-1, type=str)
@train_options(exclude=("beta",))
@click.option("--out", type=click.Path(), required=True, help="Sweep folder.")
@click.option(
    "--jobs",
    type=int,
    default=1,
    show_default=True,
    help="Runs trained at once (with --launcher local: its jobs).",
)
@launcher_options
@click.option(
    "--seeds",
    type=int,
    default=1,
    show_default=True,
    help="Runs per value, with seeds --seed, --seed + 1, ...: the table and figure give mean and spread.",
)
@click.option(
    "--from",
    "from_run",
    type=click.Path(),
    default=None,
    help="Evaluate this beta-conditioned run at the betas instead of training.",
)
@click.option("--quiet", is_flag=True, help="Less output.")
def sweep(
    betas,
    over,
    beta_values,
    config_file,
    out,
    jobs,
    launcher,
    resources,
    seeds,
    from_run,
    quiet,
    **given,
):
    """Train one run per beta, or per value of another setting, with the same data, seed and net.

    \b
    vaekit sweep --beta 0 0.1 1 4 16 --out SWEEP [train options]
    vaekit sweep --over tc-weight 1 2 6 10 --objective beta-tcvae --out SWEEP
    vaekit sweep --over latent-dim 2 8 32 --out SWEEP
    vaekit sweep --beta 0 1 4 --seeds 3 --out SWEEP     (mean and spread over 3 seeds per beta)
    vaekit sweep --beta 0 1 4 --launcher slurm --partition gpu --gpus 1 --out SWEEP

    Writes SWEEP/beta-B/ (or SETTING-V/; with --seeds, beta-B-seedS/) run folders, sweep.json,
    figures/latent_panels.png, figures/rate_distortion.png and report.html; with --launcher, the
    jobs' logs in SWEEP/jobs/. Re-running resumes an interrupted sweep; a finished run trained with
    other learning settings is refused. BETA_VALUES: the betas after --beta's first (--beta 0 1 4).
    """
    from vaekit import sweep as sw

    setting = "beta" if over is None else _swept_setting(over, betas, from_run, given)
    texts = ([betas] if betas is not None else []) + list(beta_values)
    if setting == "beta":
        values = [_beta_value(v) for v in texts]
        check(bool(values), "Give the betas to sweep, e.g. vaekit sweep --beta 0 1 4 --out SWEEP.")
    else:
        name = _flag(setting)[2:]
        for text in texts:
            if text.startswith("--"):
                raise click.UsageError(f"No such option {text.split('=')[0]!r}.")
        values = [_coerce(setting, v, f"--over {name}") for v in texts]
        check(bool(values), f"Give the values to sweep after --over {name}, e.g. --over {name} 1 2 4.")
    started = time.perf_counter()
    settings = merge_options(given, config_file)
    if from_run:
        check(seeds == 1, "--from evaluates one trained model; drop --seeds.")
        rows = sw.from_conditioned(from_run, values, out, nll_samples=settings["nll_samples"])
    else:
        rows = sw.run(
            values,
            settings,
            out,
            jobs=jobs,
            progress=not quiet,
            setting=setting,
            seeds=seeds,
            launcher=launcher,
            resources=resources,
        )
    _print_sweep(rows)
    click.echo(f"wrote {Path(out) / 'report.html'} ({time.perf_counter() - started:.0f} s)")


def _swept_setting(over: str, betas, from_run, given: dict) -> str:
    """The option name --over names (dashes or underscores), checked: a numeric training or
    objective setting, given once, without --beta or --from."""
    setting = over.lstrip("-").replace("-", "_")
    if setting == "beta":
        return setting
    opt = OPTIONS_BY_NAME.get(setting)

    def numeric(o) -> bool:  # the process counts are how a run is spread, not what it learns
        spread = o.name in ("devices", "num_nodes")
        return o.type in (int, float) and o.nargs == 1 and not o.is_flag and not spread

    names = sorted(_flag(o.name)[2:] for o in TRAIN_OPTIONS if numeric(o))
    check(
        opt is not None and numeric(opt),
        f"--over {over}: not a numeric setting to sweep; choose beta or one of {', '.join(names)}.",
    )
    check(betas is None, f"Give either --beta values or --over {over} values, not both.")
    check(from_run is None, "--from evaluates a beta-conditioned run at several betas; it sweeps beta only.")
    check(
        given.get(setting) is None,
        f"{_flag(setting)} is the swept setting; give its values after --over {over} only.",
    )
    return setting


def _beta_value(text: str) -> float:
    if text.startswith("--"):
        raise click.UsageError(f"No such option {text.split('=')[0]!r}.")
    try:
        return float(text)
    except ValueError:
        raise VaekitError(f"beta must be a number of at least 0, not {text!r}.") from None


def _print_sweep(rows) -> None:
    from vaekit import summary_keys
    from vaekit import sweep as sw

    keys = summary_keys.shown_in("sweep_print")
    name = sw.setting_of(rows)
    width = max(8, len(name))
    seeds = sw.has_seeds(rows)
    seed_head = f" {'seed':>5}" if seeds else ""
    click.echo(f"{name:>{width}}{seed_head} {'source':>11} " + " ".join(f"{k[:12]:>12}" for k in keys))
    for r in rows:
        cells = [
            f"{r.get(k):12.4g}" if isinstance(r.get(k), float) else f"{str(r.get(k, '-')):>12}" for k in keys
        ]
        seed = f" {str(r.get('seed', '-')):>5}" if seeds else ""
        click.echo(f"{sw.value_of(r):{width}g}{seed} {r['source']:>11} " + " ".join(cells))
    for m in sw.over_seeds(rows, keys):  # each value's mean +- sd over its seeds
        cells = [sw.mean_sd(m[k], m[k + "_sd"]).rjust(12) for k in keys]
        click.echo(f"{m['value']:{width}g}{'mean':>6} {'over seeds':>11} " + " ".join(cells))


DEMO_BETAS = (0.0, 0.1, 1.0, 4.0, 64.0)


@cli.command()
@click.argument("which", type=click.Choice(["beta", "disentanglement"]), default="beta")
@click.option(
    "--out",
    type=click.Path(),
    default=None,
    help="Folder [default: demo, demo-disentanglement or demo-disentanglement-long].",
)
@click.option("--epochs", type=int, default=None, help="beta demo: epochs per run [default: 20].")
@click.option(
    "--jobs",
    type=int,
    default=2,
    show_default=True,
    help="Runs trained at once: the beta demo's, or disentanglement's with --launcher local.",
)
@click.option(
    "--long",
    "long_setting",
    is_flag=True,
    help="disentanglement: five models (with DIP-VAE-I, without beta 4), 14 epochs each, fast metrics "
    "(under 20 minutes on 2 cores).",
)
@click.option(
    "--seeds",
    type=int,
    default=1,
    show_default=True,
    help="disentanglement: seeds per model (0, 1, ...); the table gives each model's mean +- sd.",
)
@launcher_options
def demo(which, out, epochs, jobs, long_setting, seeds, launcher, resources):
    """The slides made real.

    \b
    vaekit demo                  mnist5k, a 2-D latent space, beta from 0 (pure reconstruction)
                                 through 1 to 64, with the latent panels and the report
    vaekit demo disentanglement  sprites32: beta-VAE (beta 1, 4, 16), beta-TCVAE, FactorVAE (and
                                 with --long DIP-VAE-I) side by side, scored with MIG, DCI, SAP,
                                 FactorVAE and BetaVAE scores, with MIG over training time
    vaekit demo disentanglement --seeds 3 --launcher slurm --partition gpu
                                 each model and seed one job of a Slurm job array
    """
    started = time.perf_counter()
    if which == "disentanglement":
        from vaekit import disentangle

        check(
            epochs is None,
            "--epochs is the beta demo's; the disentanglement demo's models train for its budget "
            "(--long for the longer one).",
        )
        setting = "long" if long_setting else "quick"
        out = Path(out or ("demo-disentanglement-long" if long_setting else "demo-disentanglement"))
        shown = []

        def echo(line: str) -> None:  # the table's head with its first row: after every check
            if not shown:
                click.echo(f"{'model':<30} {'seed':>4} {'MIG':>5} {'DCI-D':>5} {'SAP':>5} {'FVAE':>5}")
                shown.append(True)
            click.echo(line)

        rows = disentangle.run(
            out,
            lambda o: merge_options(o, None),
            setting,
            seeds,
            echo=echo,
            launcher=launcher,
            resources=resources,
            jobs=jobs,
        )
        top = disentangle.best(disentangle.over_seeds(rows))
        if top:
            spread = (
                f" +- {top['mig_sd']:.3f} over {len(top['seeds'])} seeds" if top["mig_sd"] is not None else ""
            )
            click.echo(f"best MIG: {top['model']} {top['mig']:.3f}{spread}")
        click.echo(f"wrote {out / 'report.html'} ({time.perf_counter() - started:.0f} s)")
        return
    check(
        seeds == 1 and not long_setting and launcher is None,
        "--seeds, --long and --launcher are options of `vaekit demo disentanglement`.",
    )
    from vaekit import sweep as sw

    out = out or "demo"
    epochs = 20 if epochs is None else epochs
    settings = merge_options({"data": "mnist5k", "latent_dim": 2, "epochs": epochs, "nll_samples": 100}, None)
    rows = sw.run(DEMO_BETAS, settings, out, jobs=jobs)
    _print_sweep(rows)
    click.echo(
        f"wrote {Path(out) / 'report.html'} and {Path(out) / 'figures' / 'latent_panels.png'} "
        f"({time.perf_counter() - started:.0f} s)"
    )


@cli.command()
@click.argument("run", type=RUN)
@click.option("--nll-samples", type=int, default=None, help="Importance samples K [default: the run's].")
@click.option(
    "--metrics",
    "metric_names",
    default=None,
    help=f"Disentanglement metrics: all, or a comma list of {','.join(summary_keys.METRICS)}.",
)
@click.option(
    "--metric-preset",
    type=click.Choice(["quick", "fast", "reference"]),
    default="fast",
    show_default=True,
    help="reference = disentanglement_lib's sample counts; fast = 1/5 of them; quick = 1/50 (noisy).",
)
@click.option("--dci-method", type=click.Choice(["gbt", "lasso"]), default="gbt", show_default=True)
@click.option(
    "--data",
    "source",
    default=None,
    help="Evaluate this file instead (ELBO, rate, distortion, IS-NLL; nothing in the run is rewritten).",
)
@click.option("--label-column", default=None, help="With --data: a label column to leave out.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def evaluate(run, nll_samples, metric_names, metric_preset, dci_method, source, label_column, as_json):
    """Evaluate a trained run on its test split, rewrite summary.json and the report; or, with
    --data FILE, print the ELBO, rate, distortion and IS-NLL of any file (nats per example)."""
    from vaekit import apply

    if source is None:
        in_run(run)  # rewrites RUN/summary.json and the report: not a hub run's cache
    names = None
    if metric_names:
        names = "all" if metric_names == "all" else [n.strip() for n in metric_names.split(",") if n.strip()]
    result = apply.evaluate(
        run,
        source,
        nll_samples=nll_samples,
        metrics=names,
        metric_preset=metric_preset,
        dci_method=dci_method,
        label_column=label_column,
    )
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    for key, value in result.items():
        if not isinstance(value, (dict, list)):
            click.echo(f"{key:>24}  {value:.6g}" if isinstance(value, float) else f"{key:>24}  {value}")


@cli.command()
@click.argument("run", type=RUN)
@click.option("-n", "n", type=int, default=64, show_default=True, help="Number of samples.")
@click.option(
    "--out",
    type=click.Path(),
    required=True,
    help="FILE.png (a grid), FILE.npy (arrays), or for a table FILE.csv / FILE.parquet (named columns).",
)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--beta", type=float, default=None, help="For a beta-conditioned run: which beta.")
@click.option(
    "--label",
    default=None,
    help="For a label-conditional run: the class to draw, as the data names it "
    "[default: every class in turn].",
)
@click.option(
    "--draw",
    is_flag=True,
    help="Draw x ~ p(x|z) (true samples of the model) instead of the decoder's mean at each z.",
)
@OVERWRITE
def sample(run, n, out, seed, beta, label, draw, overwrite):
    """Draw samples from the prior through the decoder, in the data's own units."""
    from vaekit import apply, io, report, runs

    out = Path(out)
    check(
        out.suffix in (".png", *io.TABLE_SUFFIXES),
        f"--out must end in .png, .npy, .csv or .parquet, not {out.name!r}.",
    )
    _refuse_existing(out, overwrite)
    settings = dict(seed=seed, beta=beta, label=label, draw=draw)
    if out.suffix == ".png":
        report.save_figure(apply.sample_figure(run, n, **settings), out)
    else:
        frame = apply.sample(run, n, **settings)
        if out.suffix == ".npy":  # the numbers alone, in the examples' shape
            io.write_table(out, *apply.features(run, frame))
        else:
            io.write_table(out, frame)
    model = runs.load(run)  # what the message says of its classes
    if label is not None:
        what = f"{n} {'sample' if n == 1 else 'samples'} of class {label}"
    elif model.conditional and out.suffix == ".png":
        shown = min(model.n_classes, 10)
        what = f"{math.ceil(n / shown)} samples of each of {shown} classes"
    elif model.conditional:
        what = f"{n} samples, classes in turn ({', '.join(model.classes[:3])}, ...)"
    else:
        what = f"{n} {'sample' if n == 1 else 'samples'}"
    kind = "draws of p(x|z)" if draw else "decoder means"
    click.echo(f"wrote {what} ({kind}) to {out}")


def _refuse_existing(out: Path, overwrite: bool = False) -> None:
    check(
        overwrite or not out.exists(),
        f"{out} already exists; choose another --out, or replace it with --overwrite "
        "(nothing was overwritten).",
    )


@cli.command()
@click.argument("run", type=RUN)
@click.option("--data", "source", required=True, help="Data set name or file to encode.")
@click.option("--out", type=click.Path(), required=True, help="latents.npy or latents.csv")
@click.option("--label-column", default=None, help="CSV: the column that holds labels.")
@click.option("--beta", type=float, default=None, help="For a beta-conditioned run: which beta.")
@OVERWRITE
def encode(run, source, out, label_column, beta, overwrite):
    """Write the posterior means (and standard deviations) of every example."""
    from vaekit import apply, io

    out = Path(out)
    check(out.suffix in (".npy", ".csv"), f"--out must end in .npy or .csv, not {out.name!r}.")
    _refuse_existing(out, overwrite)
    frame = apply.encode(run, source, label_column=label_column, beta=beta)
    means = [c for c in frame.columns if c.startswith("z") and c.endswith("_mean")]
    io.write_table(out, frame[means] if out.suffix == ".npy" else frame)
    click.echo(f"wrote the latent means of {len(frame)} examples ({len(means)} dims) to {out}")


@cli.command()
@click.argument("run", type=RUN)
@click.option("--data", "source", required=True, help="A table file with missing cells.")
@click.option("--out", type=click.Path(), required=True, help="imputed.csv or imputed.parquet")
@click.option(
    "--method",
    type=click.Choice(["mean", "draw"]),
    default="mean",
    show_default=True,
    help="mean: each cell's conditional expectation given the row's observed cells (the most likely "
    "category); draw: a draw from the model's conditional (with --draws M, M imputations).",
)
@click.option("--draws", type=int, default=1, show_default=True, help="Imputations per row (--method draw).")
@click.option(
    "--samples", type=int, default=100, show_default=True, help="Importance samples K of z per row."
)
@click.option("--label-column", default=None, help="Tables: the column that holds labels (carried).")
@click.option("--seed", type=int, default=0, show_default=True)
@OVERWRITE
def impute(run, source, out, method, draws, samples, label_column, seed, overwrite):
    """Fill a table's missing cells from the model, in the user's units.

    Each missing cell comes from p(x_missing | x_observed), estimated by importance sampling over
    K draws of z (Mattei & Frellsen, 2019); observed cells are written exactly as read."""
    from vaekit import apply, io

    out = Path(out)
    check(out.suffix in (".csv", ".parquet"), f"--out must end in .csv or .parquet, not {out.name!r}.")
    _refuse_existing(out, overwrite)
    check(samples >= 1, f"--samples must be at least 1, not {samples}.")
    frame, summary = apply.impute(
        run, source, method=method, draws=draws, samples=samples, seed=seed, label_column=label_column
    )
    io.write_table(out, frame)
    cells = sum(summary["missing_cells"].values())
    per_column = ", ".join(f"{c} {n}" for c, n in summary["missing_cells"].items()) or "none"
    what = f"{draws} imputations" if draws > 1 else f"the {method}"
    click.echo(f"filled {cells} missing cells ({per_column}) of {summary['rows']} rows with {what} to {out}")
    if not summary["trained_with_missing_cells"] and cells:
        click.echo(
            "note: the model was trained without missing cells (no --missing model), so its encoder reads a "
            "missing cell as 0; retrain with --missing model for better imputations.",
            err=True,
        )


@cli.command()
@click.argument("run", type=RUN)
@click.option("--data", "source", required=True, help="Data set name or file to score.")
@click.option("--out", type=click.Path(), required=True, help="scores.csv or scores.parquet")
@click.option(
    "--samples",
    type=int,
    default=1,
    show_default=True,
    help="K draws of z per example: K > 1 adds the K-draw averages (distortion_avg, rate_avg, "
    "neg_elbo_avg) and nll, the importance-sampled -log p(x) with K samples (the better anomaly score).",
)
@click.option(
    "--label-column", default=None, help="Tables: the column that holds labels (kept in the output)."
)
@click.option("--keep-columns", default=None, help="Tables: columns copied into the output, e.g. run,event.")
@click.option("--beta", type=float, default=None, help="For a beta-conditioned run: which beta.")
@click.option("--seed", type=int, default=0, show_default=True)
@OVERWRITE
def score(run, source, out, samples, label_column, keep_columns, beta, seed, overwrite):
    """Per-example anomaly scores, nats (higher = more anomalous).

    \b
    One draw z ~ q(z|x) each (K = 1):
      neg_elbo       distortion + rate, the negative ELBO
      distortion     -log p(x|z), how badly x is reconstructed
      rate           KL(q(z|x) || p(z)), how unusual the code is
      squared_error  sum of squared differences of the reconstruction at q's mean (model units)
    With --samples K > 1, also:
      neg_elbo_avg, distortion_avg, rate_avg   the same, averaged over K draws
      nll            importance-sampled -log p(x) with K samples
    A deterministic autoencoder has distortion and squared_error only. A sidecar OUT.json
    says each column's meaning and units.
    """
    from vaekit import apply, io

    out = Path(out)
    check(out.suffix in (".csv", ".parquet"), f"--out must end in .csv or .parquet, not {out.name!r}.")
    _refuse_existing(out, overwrite)
    sidecar = out.with_suffix(".json")
    keep = (keep_columns or "").split(",")
    frame, record = apply.score(
        run, source, samples=samples, label_column=label_column, keep_columns=keep, beta=beta, seed=seed
    )
    io.write_table(out, frame)
    io.write_json(sidecar, record)
    best = "nll" if "nll" in frame else ("neg_elbo" if "neg_elbo" in frame else "distortion")
    hint = "" if samples > 1 or "rate" not in frame else "; --samples 100 averages 100 draws and adds nll"
    click.echo(
        f"wrote {len(frame)} scores to {out} and their meanings to {sidecar} "
        f"(higher {best} = more anomalous{hint})"
    )


@cli.command()
@click.argument("run", type=RUN)
@click.option("--background", default=None, help="File of background (normal) examples.")
@click.option("--signal", default=None, help="File of signal (anomalous) examples.")
@click.option("--data", "source", default=None, help="One file holding both, told apart by --label-column.")
@click.option("--label-column", default=None, help="With --data: the column that says signal or background.")
@click.option(
    "--signal-label", default=None, help="With --data: the value of --label-column that marks signal."
)
@click.option(
    "--samples",
    type=int,
    default=100,
    show_default=True,
    help="K draws per example (averaged scores, IS-NLL).",
)
@click.option(
    "--quantiles",
    default="0.9,0.99,0.999",
    show_default=True,
    help="Background quantiles at which to cut (signal efficiency is reported at each).",
)
@click.option("--beta", type=float, default=None, help="For a beta-conditioned run: which beta.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--out", type=click.Path(), default=None, help="Output folder [default: RUN/anomaly].")
@OVERWRITE
def anomaly(
    run,
    background,
    signal,
    source,
    label_column,
    signal_label,
    samples,
    quantiles,
    beta,
    seed,
    out,
    overwrite,
):
    """Anomaly detection: ROC AUC and signal efficiency at background-quantile cuts for each score.

    \b
    vaekit anomaly RUN --background bkg.csv --signal sig.csv
    vaekit anomaly RUN --data events.csv --label-column process --signal-label ttbar
    vaekit anomaly SWEEP --background bkg.csv --signal sig.csv     (ROC AUC per beta)
    Scores: -ELBO, distortion and rate averaged over K draws, the IS-NLL, the squared error.
    Writes OUT/anomaly.json, OUT/figures/roc.png, OUT/figures/score_histograms.png, OUT/report.html.
    """
    from vaekit import analyses
    from vaekit import sweep as sw

    qs = _numbers(quantiles, "--quantiles")
    out = Path(out) if out else in_run(run, "anomaly")
    rows = sw.read_rows(Path(run))
    if rows:  # a sweep folder: every run, and the AUC per swept value
        check(beta is None, f"{run} is a sweep: each of its runs is scored at its own beta; drop --beta.")
        inputs = dict(background=background, signal=signal, data=source, label_column=label_column)
        inputs.update(signal_label=signal_label, samples=samples, quantiles=qs, seed=seed)
        table = analyses.anomaly_sweep(run, out, rows, overwrite, **inputs)
        names = [n for n in analyses.ANOMALY_SCORES if n in table[0]]
        setting = sw.setting_of(rows)
        width = max(8, len(setting))
        seeds = sw.has_seeds(table)
        seed_head = f" {'seed':>5}" if seeds else ""
        click.echo(
            f"{setting:>{width}}{seed_head} {'source':>11} " + " ".join(f"{n[:14]:>14}" for n in names)
        )
        for r in table:
            cells = " ".join(f"{r[n]:14.4f}" for n in names)
            seed = f" {str(r['seed']):>5}" if seeds else ""
            click.echo(f"{r['value']:{width}g}{seed} {r['source']:>11} {cells}")
        for m in sw.over_seeds(table, names):  # each value's mean +- sd over its seeds
            cells = " ".join(sw.mean_sd(m[n], m[n + "_sd"], "+-", ".4f", ".4f").rjust(14) for n in names)
            click.echo(f"{m['value']:{width}g}{'mean':>6} {'over seeds':>11} {cells}")
        click.echo(f"wrote {out / 'report.html'} (ROC AUC per {setting})")
        return
    result = analyses.anomaly(
        run,
        out,
        background=background,
        signal=signal,
        data=source,
        label_column=label_column,
        signal_label=signal_label,
        samples=samples,
        quantiles=qs,
        seed=seed,
        beta=beta,
        overwrite=overwrite,
    )
    click.echo(f"{result['n_background']} background, {result['n_signal']} signal examples, K = {samples}")
    click.echo(
        f"{'score':>16} {'ROC AUC':>16} " + " ".join(f"{'eff@' + format(100 * q, 'g') + '%':>10}" for q in qs)
    )
    for name, row in result["scores"].items():
        auc = f"{row['auc']:.4f} +- {row['auc_stderr']:.4f}"
        effs = " ".join(f"{c['signal_efficiency']:10.4f}" for c in row["cuts"])
        click.echo(f"{name:>16} {auc:>16} {effs}")
    click.echo(f"wrote {out / 'report.html'}")


def _numbers(text: str, option: str) -> list[float]:
    try:
        values = [float(v) for v in str(text).split(",") if v.strip()]
    except ValueError:
        raise VaekitError(f"{option} must be a comma list of numbers, not {text!r}.") from None
    check(bool(values), f"{option} must name at least one number.")
    return values


@cli.command()
@click.argument("run", type=RUN, required=False)
@click.option(
    "--data",
    "source",
    default=None,
    help="Real data [default: the run's test split]; without a run, sample A.",
)
@click.option("--against", default=None, help="Without a run: sample B, compared with --data.")
@click.option("-n", "n", type=int, default=None, help="Examples per sample [default: all the real data].")
@click.option(
    "--decoder-mean",
    is_flag=True,
    help="Compare the decoder's means at z ~ p(z) instead of true draws x ~ p(x|z).",
)
@click.option("--classifier", type=click.Choice(["gbt", "logistic"]), default="gbt", show_default=True)
@click.option(
    "--permutations", type=int, default=1000, show_default=True, help="Size of the null distribution."
)
@click.option("--label-column", default=None, help="Tables: a label column to leave out of the comparison.")
@click.option("--drop-columns", default=None, help="Two files: columns to leave out (e.g. ids), comma list.")
@click.option("--beta", type=float, default=None, help="For a beta-conditioned run: which beta.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option(
    "--out", type=click.Path(), default=None, help="Output folder [default: RUN/twosample or twosample]."
)
@OVERWRITE
def twosample(
    run,
    source,
    against,
    n,
    decoder_mean,
    classifier,
    permutations,
    label_column,
    drop_columns,
    beta,
    seed,
    out,
    overwrite,
):
    """Classifier two-sample test: can a classifier tell the model's samples from real data?

    \b
    vaekit twosample RUN                  model draws vs the run's held-out test split
    vaekit twosample RUN --data FILE      model draws vs FILE
    vaekit twosample --data A --against B two files
    Reports the held-out balanced accuracy (0.5 = indistinguishable), its permutation null and
    p-value, a real-vs-real control, and the examples the classifier is surest about.
    """
    from vaekit import analyses, science

    out = Path(out) if out else (in_run(run, "twosample") if run is not None else Path("twosample"))
    r = analyses.twosample(
        out,
        run=run,
        data=source,
        against=against,
        n=n,
        classifier=classifier,
        permutations=permutations,
        seed=seed,
        draw=not decoder_mean,
        beta=beta,
        label_column=label_column,
        overwrite=overwrite,
        drop_columns=[c.strip() for c in (drop_columns or "").split(",") if c.strip()],
    )
    s = r["samples"]
    click.echo(
        f"{s['b']} ({s['n_b']}) vs {s['a']} ({s['n_a']}), {r['classifier']}"
        + (f"; model: {r['model']}" if "model" in r else "")
    )
    for name, row in [("test", r)] + ([("control", r["control"])] if r.get("control") else []):
        click.echo(
            f"{name:>8}: balanced accuracy {row['balanced_accuracy']:.4f} (null {row['null_mean']:.3f} +- "
            f"{row['null_sd']:.3f}), {science.p_value_phrase(row['p_value'], row['permutations'])}"
        )
    click.echo(f"wrote {out / 'report.html'}")


@cli.command()
@click.argument("run", type=RUN)
@click.option("--data", "source", default=None, help="File to search [default: the run's whole data set].")
@click.option("-k", "k", type=int, default=16, show_default=True, help="How many of each.")
@click.option(
    "--by",
    default="nll",
    show_default=True,
    help="The score: nll (IS-NLL), neg_elbo_avg, distortion_avg, rate_avg, squared_error, ...",
)
@click.option("--samples", type=int, default=100, show_default=True, help="K draws per example.")
@click.option("--label-column", default=None, help="Tables: the column that holds labels (shown).")
@click.option("--beta", type=float, default=None, help="For a beta-conditioned run: which beta.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--out", type=click.Path(), default=None, help="Output folder [default: RUN/rare].")
@OVERWRITE
def rare(run, source, k, by, samples, label_column, beta, seed, out, overwrite):
    """The rarest and the most typical examples by a score (default the IS-NLL).

    Caveat: the highest-density examples of a high-dimensional model are often atypical (e.g.
    the thinnest digits); read 'most typical' as 'highest density'.
    """
    from vaekit import analyses

    out = Path(out) if out else in_run(run, "rare")
    r = analyses.rare(
        run,
        out,
        data=source,
        k=k,
        by=by,
        samples=samples,
        seed=seed,
        beta=beta,
        label_column=label_column,
        overwrite=overwrite,
    )
    table = r.pop("table")
    shown = [c for c in ("group", "rank", "index", by, "label") if c in table]
    click.echo(table[shown].to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    click.echo(f"note: {analyses.TYPICALITY_CAVEAT}", err=True)
    click.echo(f"wrote {out / 'rare.csv'} and {out / 'report.html'}")


@cli.command()
@click.argument("run", type=RUN)
@click.option("--data", "source", required=True, help="File (or built-in name) to reconstruct.")
@click.option("--out", type=click.Path(), required=True, help="FILE.csv / FILE.parquet (tables) or FILE.npy.")
@click.option("--label-column", default=None, help="Tables: the column that holds labels (kept).")
@click.option("--beta", type=float, default=None, help="For a beta-conditioned run: which beta.")
@OVERWRITE
def reconstruct(run, source, out, label_column, beta, overwrite):
    """Write each example's reconstruction (the decoder's mean at q's mean) in the data's own units."""
    from vaekit import apply, io

    out = Path(out)
    check(
        out.suffix in io.TABLE_SUFFIXES,
        f"--out must end in .csv, .parquet or .npy, not {out.name!r}.",
    )
    _refuse_existing(out, overwrite)
    frame = apply.reconstruct(run, source, label_column=label_column, beta=beta)
    if out.suffix == ".npy":  # the numbers alone, in the examples' shape
        io.write_table(out, *apply.features(run, frame))
    else:
        io.write_table(out, frame)
    click.echo(f"wrote the reconstructions of {len(frame)} examples to {out}")


@cli.command()
@click.argument("run", type=click.Path())
def report(run):
    """Re-draw the figures and report.html of a run folder or a sweep folder."""
    from vaekit import io, runs
    from vaekit import report as rep
    from vaekit import sweep as sw

    rows = sw.read_rows(Path(run))
    if rows:
        sw.draw(Path(run), rows)
        click.echo(f"wrote {Path(run) / 'report.html'}")
        return

    model = runs.load(run)
    data = runs.load_data(run)
    summary_path = Path(run) / "summary.json"
    summary = json.loads(summary_path.read_text()) if summary_path.exists() else {}
    rep.write_run(Path(run), model, data, io.read_jsonl(Path(run) / "metrics.jsonl"), summary)
    click.echo(f"wrote {Path(run) / 'report.html'}")


@cli.command()
@click.argument("run", type=RUN)
@click.option(
    "--index", type=int, default=None, help="The query: this example of --query (or of the run's data)."
)
@click.option("--query", default=None, help="File holding the query example [default: the run's data set].")
@click.option("--data", "source", default=None, help="File to search [default: the run's data set].")
@click.option("-k", "k", type=int, default=8, show_default=True, help="Number of neighbours.")
@click.option("--label-column", default=None, help="Tables: the column that holds labels (shown).")
@click.option(
    "--out",
    type=click.Path(),
    default=None,
    help="Figure (.png; images) or table (.csv; tables) "
    "[default: RUN/figures/neighbors-I.png or RUN/neighbors-I.csv].",
)
@OVERWRITE
def neighbors(run, index, query, source, k, label_column, out, overwrite):
    """The k nearest examples to one example in latent space (posterior means, Euclidean).

    \b
    vaekit neighbors RUN --index 7                     example 7 of the run's data, among the run's data
    vaekit neighbors RUN --query new.csv --index 0     a new example, among the run's data
    vaekit neighbors RUN --query new.csv --data other.csv
    A table run prints and writes the neighbours' columns in the data's units.
    """
    from vaekit import analyses, io

    check(k >= 1, f"-k must be at least 1, not {k}.")
    if not out:
        in_run(run)  # a hub run's folder (the cache) is never written: said before the search
    r = analyses.neighbors(run, index=index, query=query, data=source, k=k, label_column=label_column)
    name = f"neighbors-{r['name']}.csv" if r["table"] is not None else f"figures/neighbors-{r['name']}.png"
    default = Path(run) / name
    out = Path(out) if out else default
    if r["table"] is not None:
        check(
            out.suffix == ".csv",
            f"A table run's neighbours are a table: --out must end in .csv, not {out.name!r}.",
        )
        _refuse_existing(out, overwrite or out == default)
        io.write_table(out, r["table"])
        click.echo(r["table"].to_string(index=False, float_format=lambda v: f"{v:.5g}"))
    else:
        check(out.suffix == ".png", f"--out must end in .png for images, not {out.name!r}.")
        _refuse_existing(out, overwrite or out == default)
        from vaekit import report as rep

        rep.save_figure(r["figure"], out)
        click.echo("index,distance" + (",label" if r["labels"] is not None else ""))
        for i, d in zip(r["found"], r["distances"], strict=True):
            label = f",{r['labels'][i]}" if r["labels"] is not None else ""
            click.echo(f"{i},{d:.4f}{label}")
    click.echo(f"wrote {out}", err=True)


@cli.command()
@click.argument("run", type=RUN)
@click.option("--data", "sources", multiple=True, required=True, help="A file to encode; repeat for several.")
@click.option(
    "--out", type=click.Path(), default=None, help="Figure [default: RUN/figures/latent_files.png]."
)
@click.option("--beta", type=float, default=None, help="For a beta-conditioned run: which beta.")
@OVERWRITE
def latent(run, sources, out, beta, overwrite):
    """Several files in one latent figure (e.g. background and signal), one colour each."""
    from vaekit import apply
    from vaekit import report as rep

    out = Path(out) if out else in_run(run, "figures", "latent_files.png")
    check(out.suffix == ".png", f"--out must end in .png, not {out.name!r}.")
    _refuse_existing(out, overwrite)
    figure, counts = apply.latent_figure(run, list(sources), beta=beta)
    rep.save_figure(figure, out)
    click.echo(f"wrote {out} ({', '.join(f'{n}: {c}' for n, c in counts)})")


@cli.command()
@click.argument("run", type=RUN)
@click.option("--data", "files", multiple=True, help="A file to show instead of the test split (repeatable).")
@click.option(
    "--dims",
    type=int,
    nargs=2,
    default=None,
    help="The plane's two latent dimensions, from 1 (z1) [default: largest KL].",
)
@click.option("--pca", is_flag=True, help="The plane of the posterior means' first two principal components.")
@click.option(
    "--max-points", type=int, default=2000, show_default=True, help="Examples shown, stratified by label."
)
@click.option("--label-column", default=None, help="Tables given with --data: the column that holds labels.")
@click.option(
    "--signal", multiple=True, help="A file of signal examples: the anomaly view, with a cut (repeatable)."
)
@click.option(
    "--out",
    type=click.Path(),
    default=None,
    help="The page [default: explorer.html in RUN; beside a score output, NAME-explorer.html].",
)
@OVERWRITE
def explore(run, files, dims, pca, max_points, label_column, signal, out, overwrite):
    """One HTML page to move through a run's latent space, offline (no server, no network).

    \b
    vaekit explore RUN                       a run's test split; RUN/explorer.html
    vaekit explore SWEEP                     a sweep folder: a beta slider over its runs
    vaekit explore RUN --data new.csv        your own file's examples
    vaekit explore RUN --signal sig.h5       the anomaly view: a -ELBO cut, the events above it
    vaekit explore RUN/anomaly               an anomaly output: its run, background and signal
    vaekit explore scores.csv                a score output: the scored file, by its saved scores
    Hover a point for its example and scores, move over the plane for the decoder's output
    there, click for the nearest neighbours; a beta-conditioned run gets a beta slider.
    Needs Bokeh (pip install "vaekit[explorer]").
    """
    try:
        import bokeh  # noqa: F401
    except ImportError:
        raise VaekitError(
            'vaekit explore draws with Bokeh, which is not installed; pip install "vaekit[explorer]".'
        ) from None
    from vaekit import explore as ex

    check(max_points >= 2, f"--max-points must be at least 2, not {max_points}.")
    source = ex.source_of(run)
    if not out:
        in_run(run)  # a hub run's folder (the cache) is never written
    target = Path(out) if out else source.page
    check(target.suffix == ".html", f"--out must end in .html, not {target.name!r}.")
    _refuse_existing(target, overwrite)
    written = ex.build(
        source,
        list(files) or None,
        target,
        dims,
        max_points,
        label_column,
        signal=list(signal) or None,
        pca=pca,
    )
    click.echo(
        f"wrote {written} ({written.stat().st_size / 1e6:.1f} MB; open it in a browser, no server needed)"
    )


@cli.command()
@click.argument("run", type=click.Path())
@click.argument("repo_id")
@click.option("--private", is_flag=True, help="Make the repository private (when it is created).")
@click.option("--revision", default=None, help="The branch to push to [default: main].")
def push(run, repo_id, private, revision):
    """Share a run folder as a hub model repository OWNER/NAME (through huggingface_hub).

    \b
    vaekit push runs/mnist you/mnist-vae
    Writes the folder's model card (README.md) afresh and uploads it with the weights
    (safetensors), config.yaml, summary.json, metrics.jsonl, report.html and the figures; never
    checkpoint.pt. Loading it back: vaekit.load("you/mnist-vae"). The token is huggingface_hub's
    (HF_TOKEN, or hf auth login). Needs huggingface_hub (pip install "vaekit[hub]").
    """
    from vaekit import hub

    url = hub.push(run, repo_id, private=private, revision=revision)
    click.echo(f"pushed {run} to {repo_id}: {url}")


@cli.command()
@click.argument("repo_id")
@click.option("--out", type=click.Path(), default=None, help="The run folder to make [default: NAME].")
@click.option("--revision", default=None, help="The branch, tag or commit [default: main].")
def pull(repo_id, out, revision):
    """Copy a run shared on a hub (OWNER/NAME) into a run folder of your own.

    \b
    vaekit pull you/mnist-vae --out runs/mnist-vae
    vaekit report runs/mnist-vae         every command reads and writes it as a run of yours
    The weights, config.yaml, summary.json, metrics.jsonl, report.html, the model card and the
    figures, into a folder that does not exist yet; commands that only read a run also take
    OWNER/NAME directly (vaekit encode you/mnist-vae --data new.csv --out codes.csv). Needs
    huggingface_hub (pip install "vaekit[hub]").
    """
    from vaekit import hub

    out = Path(out or repo_id.split("/")[-1])
    folder = hub.pull(repo_id, out, revision=revision)
    files = sorted(
        str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file() and ".cache" not in p.parts
    )
    click.echo(f"pulled {repo_id} into {folder}: {', '.join(files)}")


@cli.command(name="datasets")
def datasets_command():
    """List the built-in data sets, the named sets downloaded on first use, and the file formats."""
    from vaekit import datasets
    from vaekit.datasets import downloads

    width = 1 + max(map(len, [*datasets.describe_builtins(), *downloads.REMOTE]))
    click.echo("Built in (offline):")
    for name, desc in datasets.describe_builtins().items():
        click.echo(f"  {name:<{width}}{desc}")
    click.echo(f"Downloaded on first use, verified, kept in {downloads.cache_dir()} ($VAEKIT_CACHE):")
    for name, remote in downloads.REMOTE.items():
        state = "cached" if downloads.is_cached(name) else f"to download: {remote.size_text()}"
        click.echo(f"  {name:<{width}}{remote.description} [{state}; licence: {remote.licence}]")
    click.echo("Your own files:")
    for form in datasets.FORMATS:
        click.echo(f"  {form.help}")
    click.echo(
        "Each table column is typed (--column-types), missing cells are refused, dropped or modelled\n"
        "(--missing), and row identifiers are carried into the outputs."
    )


def _is_vaekit_file(filename) -> bool:
    """Whether a warning's `filename` is vaekit's own code: a file in the package folder or in any
    of its sub-packages."""
    return Path(filename).is_relative_to(Path(__file__).parent)


def main(argv=None) -> None:
    """Entry point: one clear sentence and exit status 2 for bad input, never a traceback."""
    import warnings

    default_show = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None):
        if _is_vaekit_file(filename):  # vaekit's own: one plain line
            click.echo(f"warning: {message}", err=True)
        else:
            default_show(message, category, filename, lineno, file, line)

    warnings.showwarning = show
    try:
        cli.main(args=argv, prog_name="vaekit", standalone_mode=False)
    except click.exceptions.Exit as e:
        sys.exit(e.exit_code)
    except click.UsageError as e:
        hint = f" (see vaekit {e.ctx.info_name} --help)" if e.ctx and e.ctx.parent else ""
        click.echo(f"error: {e.format_message()}{hint}", err=True)
        sys.exit(2)
    except click.ClickException as e:
        click.echo(f"error: {e.format_message()}", err=True)
        sys.exit(2)
    except click.Abort:
        click.echo("error: aborted.", err=True)
        sys.exit(130)
    except VaekitError as e:
        click.echo(f"error: {e}", err=True)
        sys.exit(e.exit_code)
    except Interrupted as e:
        click.echo(f"stopped; the run is saved. Resume with: vaekit train --resume {e.run}", err=True)
        sys.exit(130)
    except KeyboardInterrupt:
        click.echo("stopped.", err=True)
        sys.exit(130)


if __name__ == "__main__":
    main()
