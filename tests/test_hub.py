"""A run folder shares like a hub model: its model card's YAML names what the model is, it loads
from a local path with the network forbidden, and it round-trips through `vaekit push` and
`vaekit.load(OWNER/NAME)` against a hub stand-in the test starts on 127.0.0.1 (then from the
cache alone, offline). Never the internet."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch
import yaml
from conftest import FAST

import vaekit


@pytest.fixture(scope="module")
def mog_run(tmp_path_factory):
    from vaekit.cli import main

    out = tmp_path_factory.mktemp("hub") / "run"
    main(
        [
            "train",
            "--data",
            "digits",
            "--prior",
            "mog",
            "--prior-components",
            "3",
            "--epochs",
            "2",
            "--out",
            str(out),
        ]
        + FAST
    )
    return out


def _front_matter(text: str) -> dict:
    assert text.startswith("---\n")
    return yaml.safe_load(text.split("---\n")[1])


def test_the_model_card_names_the_model_and_its_numbers(mog_run):
    card = (mog_run / "README.md").read_text()
    front = _front_matter(card)
    summary = json.loads((mog_run / "summary.json").read_text())
    assert front["library_name"] == "vaekit"
    assert {"objective-beta-elbo", "prior-mog", "likelihood-bernoulli", "dataset-digits"} <= set(
        front["tags"]
    )
    entry = front["vaekit"]
    assert (entry["objective"], entry["prior"], entry["data"], entry["latent_dim"]) == (
        "beta-elbo",
        "mog",
        "digits",
        2,
    )
    for key in ("elbo", "rate", "distortion", "nll", "mutual_information"):
        assert entry["metrics"][key] == summary[key], key
    assert f"| nll | {summary['nll']:.6g} |" in card and "![latent_space](figures/latent_space.png)" in card


def test_a_named_set_carries_its_licence_into_the_card(tmp_path):
    from vaekit import hub

    config = {
        "model": {"likelihood": "bernoulli", "latent_dim": 2},
        "data": {"name": "mnist", "licence": "CC BY-SA 3.0 (Y. LeCun and C. Cortes)"},
    }
    front = hub.card_fields(config, {"elbo": -90.5})
    assert front["license"] == "other" and front["license_name"] == "cc-by-sa-3.0-y.-lecun-and-c.-cortes"
    assert front["vaekit"]["data_licence"].startswith("CC BY-SA 3.0") and front["vaekit"]["metrics"] == {
        "elbo": -90.5
    }


def test_a_local_folder_loads_with_the_network_forbidden(mog_run, monkeypatch):
    import socket

    def refuse(*args, **kwargs):
        raise AssertionError("vaekit.load of a local folder opened a connection")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    model = vaekit.load(mog_run)
    x = torch.as_tensor(vaekit.datasets.load("digits").x_test[:5])
    assert model.prior.name == "mog" and model.encode(x).mean.shape == (5, 2)


def _python(code: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)


def test_push_and_load_through_a_hub(mog_run, tmp_path, cli):
    from fakehub import Hub

    hub = Hub()
    env = dict(
        os.environ,
        HF_ENDPOINT=hub.url,
        HF_TOKEN="hf_test",
        HF_HUB_CACHE=str(tmp_path / "cache"),
        HF_HUB_DISABLE_TELEMETRY="1",
    )
    try:
        pushed = _python(
            f"from vaekit.cli import main; main(['push', {str(mog_run)!r}, 'you/digits-mog'])", env
        )
        assert pushed.returncode == 0, pushed.stderr
        assert "pushed" in pushed.stdout and "you/digits-mog" in pushed.stdout
        files = hub.repos["you/digits-mog"]["files"]
        assert {"config.yaml", "model.safetensors", "summary.json", "README.md", "report.html"} <= set(files)
        assert "checkpoint.pt" not in files and any(f.startswith("figures/") for f in files)
        assert files["model.safetensors"] == (mog_run / "model.safetensors").read_bytes()
        load = (
            "import torch, vaekit; m = vaekit.load('you/digits-mog'); "
            "x = torch.as_tensor(vaekit.datasets.load('digits').x_test[:5]); "
            "print(repr(m.encode(x).mean.tolist()))"
        )
        fetched = _python(load, env)
        assert fetched.returncode == 0, fetched.stderr
        gets = [p for method, p in hub.requests if method == "GET" and "/resolve/" in p]
        assert gets and all(
            p.split("/")[-1] in ("config.yaml", "model.safetensors", "summary.json", "README.md")
            for p in gets
        )
        # the commands: one that reads a run takes the repository id; one whose default output is
        # inside the run, or that rewrites it, asks for --out; vaekit pull makes a run folder here
        commands = [
            ["encode", "you/digits-mog", "--data", "digits", "--out", str(tmp_path / "hub-codes.csv")],
            ["rare", "you/digits-mog"],
            ["evaluate", "you/digits-mog"],
            ["pull", "you/digits-mog", "--out", str(tmp_path / "pulled")],
            ["pull", "you/digits-mog", "--out", str(tmp_path / "pulled")],
        ]
        script = (
            "import sys\nfrom vaekit.cli import main\n"
            f"for args in {commands!r}:\n"
            "    try:\n        main(args); code = 0\n"
            "    except SystemExit as e:\n        code = e.code\n"
            "    print('EXIT', code, flush=True); print('EXIT', code, file=sys.stderr, flush=True)\n"
        )
        cache_before = sorted(str(p) for p in (tmp_path / "cache").rglob("*"))
        ran = _python(script, env)
        cache_after = sorted(str(p) for p in (tmp_path / "cache").rglob("*"))
    finally:
        hub.close()
    codes = [line.split()[1] for line in ran.stdout.splitlines() if line.startswith("EXIT")]
    assert codes == ["0", "2", "2", "0", "2"], ran.stdout + ran.stderr
    said = ran.stderr.split("EXIT")
    for refused in (said[1], said[2]):
        assert "you/digits-mog is a hub repository, read from huggingface_hub's cache; give --out" in refused
        assert "Traceback" not in refused
    assert "already exists; choose a new --out" in said[4]
    assert cache_after == cache_before  # nothing was written into the cache
    assert not list(tmp_path.glob(".pulled.pulling-*"))  # the pull's temporary folder is gone
    code, _, err = cli("encode", mog_run, "--data", "digits", "--out", tmp_path / "local-codes.csv")
    assert code == 0, err
    assert (tmp_path / "hub-codes.csv").read_text() == (tmp_path / "local-codes.csv").read_text()
    pulled = tmp_path / "pulled"
    for name in ("model.safetensors", "config.yaml", "metrics.jsonl", "report.html", "summary.json"):
        assert (pulled / name).read_bytes() == (mog_run / name).read_bytes(), name
    assert sorted(p.name for p in (pulled / "figures").glob("*.png")) == sorted(
        p.name for p in (mog_run / "figures").glob("*.png")
    )
    assert not (pulled / "checkpoint.pt").exists()
    code, _, err = cli("rare", pulled, "-k", "3")  # a run folder of one's own: written into
    assert code == 0 and (pulled / "rare" / "report.html").exists(), err
    local = vaekit.load(mog_run).encode(torch.as_tensor(vaekit.datasets.load("digits").x_test[:5])).mean
    assert eval(fetched.stdout.strip()) == local.tolist()  # the same weights, to the last bit
    offline = _python(load, dict(env, HF_HUB_OFFLINE="1"))  # the hub is gone: the cache answers
    assert offline.returncode == 0 and offline.stdout == fetched.stdout, offline.stderr


def test_a_mistyped_folder_is_not_sent_to_the_hub(cli, tmp_path, monkeypatch):
    """runs/mnst, inside a folder that exists here, is a typo of a run folder: said as such, with
    no connection opened, by the commands and by vaekit.load."""
    import socket

    def refuse(*args, **kwargs):
        raise AssertionError("a mistyped local path opened a connection")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs").mkdir()
    code, _, err = cli("encode", "runs/mnst", "--data", "digits", "--out", "codes.csv")
    assert code == 2 and "runs/mnst" in err and "hub" not in err and "Traceback" not in err
    assert not (tmp_path / "codes.csv").exists()
    from vaekit.errors import VaekitError

    with pytest.raises(VaekitError, match="runs/mnst is neither a run folder nor a hub repository id"):
        vaekit.load("runs/mnst")


def test_bad_inputs_are_one_sentence(cli, tmp_path):
    from vaekit.errors import VaekitError

    with pytest.raises(VaekitError, match="is neither a run folder nor a hub repository id"):
        vaekit.load(tmp_path / "no-such-run")
    code, _, err = cli("push", tmp_path, "you/x")
    assert code == 2 and "is not a finished run folder" in err
