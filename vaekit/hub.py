"""Run folders that share like hub models: a run folder is a model repository.

Every run folder gets a model card, `README.md` (YAML front matter a hub reads: library, tags for
the objective, prior, likelihood and data set, the data's licence, and the summary's numbers;
then what the model is, its figures and how to load it). `vaekit push RUN OWNER/NAME` uploads the
files a model needs and shows (never checkpoint.pt, which holds optimiser state as a pickle), and
`vaekit.load(PATH_OR_REPO_ID)` reads a local folder without any network, or a repository through
huggingface_hub with only the files a model needs (`LOAD_FILES`), cached as huggingface_hub
caches. Weights stay safetensors: loading never runs code from the download.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import yaml

from vaekit import io, runs, summary_keys
from vaekit.errors import VaekitError, check

LOAD_FILES = ("config.yaml", "model.safetensors", "objective.safetensors", "summary.json", "README.md")
PUSH_FILES = (*LOAD_FILES, "metrics.jsonl", "report.html", "traversals.csv", "figures/*.png")
REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")

# the summary keys the model card gives (those the run has), nats per example unless named
CARD_KEYS = (
    "elbo",
    "rate",
    "distortion",
    "nll",
    "bits_per_dim",
    "mutual_information",
    "active_units",
    "knn_accuracy",
    *(summary_keys.headline(m) for m in summary_keys.METRICS),
)


def _slug(text) -> str:
    return re.sub(
        r"-+", "-", "".join(c if c.isalnum() or c == "." else "-" for c in str(text).lower())
    ).strip("-")


def card_fields(config: dict, summary: dict) -> dict:
    """The model card's front matter (a dict, written as YAML) from a run's config.yaml and
    summary.json: library_name, tags, the data's licence where its record names one (as
    `license: other` with the licence's text in `license_name`), and a `vaekit` entry with the
    objective, prior, likelihood, latent size, beta, data set and the summary's numbers."""
    model, train, data = (config.get(k) or {} for k in ("model", "train", "data"))
    objective = train.get("objective")
    objective = objective.get("name") if isinstance(objective, dict) else (objective or "beta-elbo")
    prior = model.get("prior")
    prior = prior.get("name", "normal") if isinstance(prior, dict) else "normal"
    likelihood = str(model.get("likelihood", "unknown"))
    source = str(data.get("name") or data.get("source") or "unknown")
    numbers = {k: summary[k] for k in CARD_KEYS if isinstance(summary.get(k), (int, float))}
    front = {
        "library_name": "vaekit",
        "tags": [
            "vaekit",
            "variational-autoencoder",
            f"objective-{_slug(objective)}",
            f"prior-{_slug(prior)}",
            f"likelihood-{_slug(likelihood)}",
            f"dataset-{_slug(Path(source).stem)}",
        ],
    }
    if data.get("licence"):
        front.update(license="other", license_name=_slug(data["licence"]))
    front["vaekit"] = {
        "objective": objective,
        "prior": prior,
        "likelihood": likelihood,
        "model": model.get("model", "vae"),
        "latent_dim": model.get("latent_dim"),
        "beta": model.get("beta"),
        "data": source,
        "data_licence": data.get("licence"),
        "metrics": numbers,
        "units": "nats per example (bits_per_dim: bits per dimension; counts and accuracies plain)",
        "vaekit_version": config.get("vaekit_version"),
    }
    return front


def model_card(run: str | os.PathLike) -> str:
    """The model card (README.md's text) of a run folder, from its config.yaml, summary.json and
    figures/*.png. Raises `VaekitError` for a folder without config.yaml."""
    run = Path(run)
    config = runs.read_config(run)
    path = run / "summary.json"
    summary = json.loads(path.read_text()) if path.exists() else {}
    front = card_fields(config, summary)
    entry = front["vaekit"]
    rows = "\n".join(f"| {k} | {v:.6g} | {summary_keys.meaning(k)} |" for k, v in entry["metrics"].items())
    figures = "\n".join(f"![{p.stem}](figures/{p.name})" for p in sorted((run / "figures").glob("*.png")))
    licence = f" (licence of the data: {entry['data_licence']})" if entry["data_licence"] else ""
    what = "variational autoencoder" if entry["model"] == "vae" else "deterministic autoencoder"
    return (
        "---\n"
        + yaml.safe_dump(front, sort_keys=False, allow_unicode=True)
        + "---\n\n"
        + f"# {run.resolve().name}\n\n"
        + f"A {what} trained with [vaekit](https://pypi.org/project/vaekit/) on `{entry['data']}`{licence}: "
        + f"{entry['latent_dim']} latent dimensions, the {entry['objective']} objective "
        + f"(beta = {entry['beta']}), "
        + f"a {entry['prior']} prior and a {entry['likelihood']} likelihood.\n\n"
        + "## Numbers (test split, nats per example)\n\n| key | value | meaning |\n|---|---:|---|\n"
        + rows
        + '\n\n## Use it\n\n```python\nimport vaekit\n\nmodel = vaekit.load("OWNER/NAME")  '
        + "# or a local folder\ncodes = model.encode(x).mean\nsamples = model.sample(16)\n```\n\n"
        + (f"\n## Figures\n\n{figures}\n" if figures else "")
    )


def write_card(run: str | os.PathLike) -> Path:
    """Write the run folder's README.md (`model_card`), atomically; returns its path."""
    path = Path(run) / "README.md"
    io.write_text(path, model_card(run))
    return path


def _hub():
    """huggingface_hub, its errors and its switch for progress bars (off: a few small files)."""
    try:
        import huggingface_hub
        from huggingface_hub import errors  # noqa: F401 - a submodule, loaded for hub.errors
        from huggingface_hub.utils import disable_progress_bars
    except ImportError:
        raise VaekitError('Sharing through a hub needs huggingface_hub; pip install "vaekit[hub]".') from None
    disable_progress_bars()
    return huggingface_hub


def _download(repo_id: str, revision: str | None, patterns, local_dir=None) -> Path:
    """huggingface_hub's snapshot_download of `patterns` of `repo_id`, into its cache or into
    `local_dir`; the repository must be a vaekit run. Raises `VaekitError` for a repository or
    revision the hub does not have, a name the hub refuses, a hub that cannot be reached (and no
    copy in the cache), or a repository that holds no config.yaml."""
    hub = _hub()
    at = f" at revision {revision!r}" if revision else ""
    try:
        folder = hub.snapshot_download(
            repo_id, revision=revision, allow_patterns=list(patterns), local_dir=local_dir
        )
    except hub.errors.RevisionNotFoundError:
        raise VaekitError(
            f"The hub repository {repo_id} has no revision {revision!r}; check --revision."
        ) from None
    except hub.errors.RepositoryNotFoundError:
        raise VaekitError(
            f"The hub has no model repository {repo_id!r} (or it is private and the token may not read it); "
            "check the name (OWNER/NAME) and HF_TOKEN."
        ) from None
    except hub.errors.HFValidationError:
        raise VaekitError(
            f"{repo_id} is neither a folder here nor a name the hub takes for a repository; check the path."
        ) from None
    except hub.errors.LocalEntryNotFoundError as err:
        # fetch reads a path or an id: a mistyped folder must not read as a hub failure only
        what = f"{repo_id} is not a folder here, and as a hub repository" if local_dir is None else repo_id
        raise VaekitError(
            f"{what}{at} could not be fetched ({type(err).__name__}) nor found in the cache; check the "
            "name, or connect to the network."
        ) from None
    except (hub.errors.HfHubHTTPError, OSError) as err:
        reason = (str(err).strip().splitlines() or [type(err).__name__])[0][:200]
        raise VaekitError(
            f"The hub did not give {repo_id}{at} ({reason}); check the network and the token (HF_TOKEN)."
        ) from None
    check(
        (Path(folder) / "config.yaml").exists(),
        f"{repo_id} has no config.yaml: it is not a vaekit run folder.",
    )
    return Path(folder)


def fetch(repo_id: str, revision: str | None = None) -> Path:
    """The local folder of a hub repository's model files (`LOAD_FILES` only), downloaded once into
    huggingface_hub's cache (offline, with HF_HUB_OFFLINE=1, from the cache alone). Raises
    `VaekitError` for a repository that cannot be found or fetched."""
    return _download(repo_id, revision, LOAD_FILES)


def pull(repo_id: str, out: str | os.PathLike, revision: str | None = None) -> Path:
    """Copy a hub repository's run files (`PUSH_FILES`: weights, config.yaml, summary.json,
    metrics.jsonl, report.html, the model card, the figures) into the new folder `out`: a run
    folder of the user's own, which every command reads and writes (huggingface_hub keeps its
    download records in out/.cache). The files arrive in a temporary folder beside `out`, renamed
    to `out` when all are there: a failed or interrupted pull leaves nothing. Returns `out`.
    Raises `VaekitError` for an invalid id, an `out` that exists, or as `fetch` does."""
    import shutil
    import tempfile

    check(bool(REPO_ID.match(repo_id)), f"{repo_id!r} is not a hub repository id (OWNER/NAME).")
    out = Path(out)
    check(
        not out.exists(),
        f"{out} already exists; choose a new --out (pulling never writes into a folder that exists).",
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = Path(tempfile.mkdtemp(prefix=f".{out.name}.pulling-", dir=out.parent))
    try:
        _download(repo_id, revision, PUSH_FILES, local_dir=partial)
        partial.rename(out)
    finally:
        shutil.rmtree(partial, ignore_errors=True)  # gone already when renamed
    return out


def resolve(path_or_repo_id: str | os.PathLike, revision: str | None = None) -> tuple[Path, bool]:
    """The local folder of a run (`path_or_repo_id` as it is) or of a hub repository OWNER/NAME
    (`fetch`ed into the cache), and whether it was fetched. A path that exists, or whose parent
    folder exists here (runs/mnst: a typo, not a repository), is local and is not checked further.
    Raises `VaekitError` as `fetch` does."""
    path = Path(path_or_repo_id)
    if path.exists() or path.parent.exists() or not REPO_ID.match(str(path_or_repo_id)):
        return path, False
    return fetch(str(path_or_repo_id), revision), True


def load(path_or_repo_id: str | os.PathLike, revision: str | None = None):
    """A trained model from a run folder (read locally, no network) or from a hub repository
    OWNER/NAME (`fetch`: only the files a model needs, cached). Nothing is unpickled. Raises
    `VaekitError` for a path that is neither, or a repository that cannot be fetched."""
    folder, _ = resolve(path_or_repo_id, revision)
    check(
        folder.exists(),
        f"{path_or_repo_id} is neither a run folder nor a hub repository id (OWNER/NAME).",
    )
    return runs.load(folder)


def push(run: str | os.PathLike, repo_id: str, private: bool = False, revision: str | None = None) -> str:
    """Upload a run folder to the hub repository `repo_id` (made if it does not exist), with its
    model card written afresh: the files of `PUSH_FILES` only (weights as safetensors; never
    checkpoint.pt). The token is huggingface_hub's (HF_TOKEN, or `hf auth login`). Returns the
    commit's URL. Raises `VaekitError` for a folder that is not a finished run, or an invalid id."""
    run = Path(run)
    check(
        (run / "config.yaml").exists() and (run / "model.safetensors").exists(),
        f"{run} is not a finished run folder (config.yaml and model.safetensors); train it first.",
    )
    check(bool(REPO_ID.match(repo_id)), f"{repo_id!r} is not a hub repository id (OWNER/NAME).")
    write_card(run)
    hub = _hub()

    api = hub.HfApi()
    try:
        api.create_repo(repo_id, private=private, exist_ok=True)
        commit = api.upload_folder(
            folder_path=str(run),
            repo_id=repo_id,
            revision=revision,
            allow_patterns=list(PUSH_FILES),
            commit_message=f"vaekit push {run.name}",
        )
    except Exception as err:  # noqa: BLE001 - the hub's HTTP errors, and its HTTP client's (httpx)
        network = isinstance(err, (hub.errors.HfHubHTTPError, OSError))
        if not (network or type(err).__module__.split(".")[0].startswith(("httpx", "requests", "urllib3"))):
            raise
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise VaekitError(
            f"The hub did not take the push of {run} to {repo_id} ({reason}); check the network, the token "
            "(HF_TOKEN or hf auth login) and that it may write to that repository."
        ) from None
    return str(getattr(commit, "commit_url", commit))


__all__ = [
    "LOAD_FILES",
    "PUSH_FILES",
    "card_fields",
    "fetch",
    "load",
    "model_card",
    "pull",
    "resolve",
    "push",
    "write_card",
]
