"""The reliability contract: a run survives SIGKILL and Ctrl-C and resumes bit-exactly, files are
written atomically, NaN stops training with the last good checkpoint kept, and nothing a config
file says can make vaekit write outside the run folder."""

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from conftest import FAST

import vaekit
from vaekit import io
from vaekit.errors import NumericalError, VaekitError

EPOCHS = 6
TRAIN = ["train", "--data", "digits", "--epochs", str(EPOCHS), *FAST]
WAIT = 300  # seconds: generous, the machine is shared


# ----------------------------------------------------------------------------- helpers


def _command(*args) -> list[str]:
    return [sys.executable, "-m", "vaekit.cli", *(str(a) for a in args)]


# `vaekit ARGS` with Ctrl-C (SIGINT) sent to itself just before optimizer step number N (counted
# from the start of the process): the interrupt lands at a known step, whatever the machine's
# speed, and goes through the real signal handler.
INTERRUPT_AT_STEP = """
import os, signal, sys
import vaekit.train as train

stop_at = int(sys.argv[1])
make_adam = train._adam

def counting_adam(params, lr):
    optimizer = make_adam(params, lr)
    step, calls = optimizer.step, [0]

    def counted_step(*args, **kwargs):
        calls[0] += 1
        if calls[0] == stop_at:
            os.kill(os.getpid(), signal.SIGINT)
        return step(*args, **kwargs)

    optimizer.step = counted_step
    return optimizer

train._adam = counting_adam
from vaekit.cli import main
main(sys.argv[2:])
"""


def _env() -> dict:
    return {**os.environ, "MPLBACKEND": "Agg", "PYTHONUNBUFFERED": "1"}


class _Proc:
    """A `vaekit` subprocess whose output goes to files (no pipe can fill up and block it)."""

    count = 0

    def __init__(self, folder: Path, *args, command: list[str] | None = None):
        _Proc.count += 1
        self.args = args
        self.out = folder / f"proc{_Proc.count}.out"
        self.err = folder / f"proc{_Proc.count}.err"
        command = command or _command(*args)
        with open(self.out, "wb") as out, open(self.err, "wb") as err:
            self.popen = subprocess.Popen(command, stdout=out, stderr=err, env=_env(), cwd=folder)

    def running(self) -> bool:
        return self.popen.poll() is None

    def wait(self, timeout: float = WAIT) -> int:
        return self.popen.wait(timeout=timeout)

    def stderr(self) -> str:
        return self.err.read_text()

    def describe(self) -> str:
        return f"vaekit {' '.join(map(str, self.args))} -> {self.popen.returncode}\n{self.stderr()}"

    def kill(self) -> bool:
        """SIGKILL; False if the process had already finished on its own."""
        if not self.running():
            return False
        self.popen.send_signal(signal.SIGKILL)
        self.popen.wait(timeout=WAIT)
        return True


def _wait_until(condition, proc: _Proc, timeout: float = WAIT) -> bool:
    """Poll `condition` every 5 ms; False if the process ended first (or on timeout)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        if not proc.running():
            return condition()
        time.sleep(0.005)
    raise AssertionError(f"timed out waiting; {proc.describe()}")


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except FileNotFoundError:
        return ""


def _rows(run: Path) -> list[dict]:
    return [json.loads(line) for line in _read(run / "metrics.jsonl").splitlines() if line.strip()]


def _temp_files(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob(".*.tmp"))


def _without_seconds(rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k != "seconds"} for r in rows]


def _assert_same_as_reference(run: Path, reference: Path, note: str = "") -> None:
    rows = _rows(run)
    assert [r["epoch"] for r in rows] == list(range(1, EPOCHS + 1)), (note, rows)
    assert _without_seconds(rows) == _without_seconds(_rows(reference)), note
    assert (run / "model.safetensors").read_bytes() == (reference / "model.safetensors").read_bytes(), (
        "the resumed weights differ from the uninterrupted run's: " + note
    )
    summary = json.loads((run / "summary.json").read_text())
    expected = json.loads((reference / "summary.json").read_text())
    summary.pop("seconds")
    expected.pop("seconds")
    assert summary == expected, note
    assert _temp_files(run) == [], note


def _resume(folder: Path, run: Path) -> _Proc:
    return _Proc(folder, "train", "--resume", run, "--epochs", EPOCHS, "--quiet")


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    """The uninterrupted run every interrupted one must match, bit for bit."""
    folder = tmp_path_factory.mktemp("reference")
    proc = _Proc(folder, *TRAIN, "--out", folder / "run")
    assert proc.wait() == 0, proc.describe()
    run = folder / "run"
    assert [r["epoch"] for r in _rows(run)] == list(range(1, EPOCHS + 1))
    assert _temp_files(run) == []
    return run


# ----------------------------------------------------------------------------- SIGKILL


@pytest.mark.parametrize("seed", [20240611])
def test_sigkill_at_random_moments_then_resume_is_bit_identical(tmp_path, reference, seed):
    """Kill -9 three times (anywhere: before the first checkpoint, mid-epoch, while writing files),
    resume each time; the end result must be the uninterrupted run's, byte for byte."""
    rng = random.Random(seed)
    run = tmp_path / "run"
    log = []
    proc = _Proc(tmp_path, *TRAIN, "--out", run)
    for kill in range(3):
        if kill == 0:
            # from the moment config.yaml exists (before the first checkpoint) up to 2 epochs in
            target = rng.randint(0, 2)
            started = _wait_until(
                lambda t=target: (run / "config.yaml").exists() and len(_rows(run)) >= t, proc
            )
        else:
            # the resumed process has finished an epoch of its own (metrics.jsonl changed)
            before = _read(run / "metrics.jsonl")
            started = _wait_until(lambda b=before: _read(run / "metrics.jsonl") != b, proc)
        assert started or proc.popen.returncode == 0, f"kills so far {log}; {proc.describe()}"
        delay = rng.uniform(0.0, 0.7)
        time.sleep(delay)
        had_checkpoint = (run / "checkpoint.pt").exists()
        killed = proc.kill()
        log.append(
            dict(kill=kill, rows=len(_rows(run)), delay=round(delay, 3), killed=killed, ckpt=had_checkpoint)
        )
        if not killed:
            assert proc.popen.returncode == 0, f"kills so far {log}; {proc.describe()}"
        proc = _resume(tmp_path, run)
    assert proc.wait() == 0, f"kills {log}; {proc.describe()}"
    print(f"kills: {log}")  # shown with -s: where the kills landed
    _assert_same_as_reference(run, reference, f"kills {log}")


def test_sigkill_before_the_first_checkpoint_then_resume_starts_over(tmp_path, reference):
    """Killed after config.yaml is written but before any checkpoint: --resume starts over."""
    run = tmp_path / "run"
    proc = _Proc(tmp_path, *TRAIN, "--out", run)
    assert _wait_until(lambda: (run / "config.yaml").exists(), proc), proc.describe()
    assert proc.kill(), proc.describe()
    # the scenario under test; should the kill (rarely) land after the first checkpoint,
    # remove it so the folder is exactly what such a kill leaves
    (run / "checkpoint.pt").unlink(missing_ok=True)
    (run / "metrics.jsonl").unlink(missing_ok=True)
    (run / "model.safetensors").unlink(missing_ok=True)
    proc = _resume(tmp_path, run)
    assert proc.wait() == 0, proc.describe()
    _assert_same_as_reference(run, reference, "killed before the first checkpoint")


def test_resume_sweeps_temp_files_a_kill_left_mid_write(cli, tmp_path):
    """SIGKILL during an atomic write leaves `.NAME.XXXX.tmp` behind (the `finally` never runs);
    resuming the run must not leave such debris in the run folder for ever."""
    run = tmp_path / "run"
    assert cli("train", "--data", "digits", "--epochs", "1", "--out", run, *FAST)[0] == 0
    for name in (".checkpoint.pt.k1ll3d.tmp", ".metrics.jsonl.x0x0x0.tmp", ".model.safetensors.abc.tmp"):
        (run / name).write_bytes(b"half a file")
    code, out, err = cli("train", "--resume", run, "--epochs", "2", "--quiet")
    assert code == 0, err
    assert [r["epoch"] for r in _rows(run)] == [1, 2]
    assert _temp_files(run) == []


# ----------------------------------------------------------------------------- Ctrl-C


def test_ctrl_c_mid_epoch_exits_130_and_resume_is_bit_identical(tmp_path, reference):
    """Ctrl-C during step 8 of epoch 3 (digits: 1,438 training examples, 23 steps of 64 per
    epoch): the step finishes, the position inside the epoch is saved, and the resumed run is
    bit-identical to the uninterrupted one."""
    run = tmp_path / "run"
    steps_per_epoch = 23
    stop_at = 2 * steps_per_epoch + 8
    args = [*TRAIN, "--out", run]
    command = [sys.executable, "-c", INTERRUPT_AT_STEP, str(stop_at), *map(str, args)]
    proc = _Proc(tmp_path, *args, command=command)
    code = proc.wait()
    err = proc.stderr()
    assert code == 130, proc.describe()
    assert "--resume" in err and str(run) in err, err
    assert "Traceback" not in err, err
    state = torch.load(run / "checkpoint.pt", map_location="cpu", weights_only=True)
    assert (state["epoch"], state["step"]) == (2, 8), "Ctrl-C should save the position inside the epoch"
    assert state["partial"]["count"] == 8 * 64
    assert [r["epoch"] for r in _rows(run)] == [1, 2]
    assert _temp_files(run) == []
    proc = _resume(tmp_path, run)
    assert proc.wait() == 0, proc.describe()
    _assert_same_as_reference(run, reference, f"Ctrl-C at epoch {state['epoch']} step {state['step']}")


# ----------------------------------------------------------------------------- atomic writes


def test_write_interrupted_inside_atomic_path_keeps_the_old_file(tmp_path):
    target = tmp_path / "model.safetensors"
    target.write_bytes(b"old and good")
    with pytest.raises(RuntimeError, match="power cut"):
        with io.atomic_path(target) as tmp:
            assert tmp.parent == tmp_path and tmp != target
            tmp.write_bytes(b"new but only ha")
            raise RuntimeError("power cut")
    assert target.read_bytes() == b"old and good"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.safetensors"]


def test_write_bytes_failing_half_way_keeps_the_old_file(tmp_path, monkeypatch):
    target = tmp_path / "metrics.jsonl"
    target.write_bytes(b'{"epoch": 1}\n')
    real_write_bytes = Path.write_bytes

    def disk_full(self, data):
        real_write_bytes(self, data[: len(data) // 2])
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Path, "write_bytes", disk_full)
    with pytest.raises(OSError, match="No space left"):
        io.write_bytes(target, b'{"epoch": 1}\n{"epoch": 2}\n')
    monkeypatch.undo()
    assert target.read_bytes() == b'{"epoch": 1}\n'
    assert _temp_files(tmp_path) == [] and len(list(tmp_path.iterdir())) == 1
    io.write_bytes(target, b"replaced")  # and a write that succeeds does replace it
    assert target.read_bytes() == b"replaced" and _temp_files(tmp_path) == []


# ----------------------------------------------------------------------------- NaN


def _nan_from(decoder: torch.nn.Module, step: int) -> dict:
    """Make `decoder` output NaN from its `step`-th training call on (0-based)."""
    calls = {"n": 0}
    forward = decoder.forward

    def poisoned(z, c=None):
        out = forward(z, c)
        if decoder.training:
            calls["n"] += 1
            if calls["n"] > step:
                out = out * float("nan")
        return out

    decoder.forward = poisoned
    return calls


def test_nan_stops_training_with_the_last_good_checkpoint(tmp_path):
    data = vaekit.datasets.load("digits")
    model = vaekit.VAE.for_data(data, hidden=(16,))
    steps_per_epoch = -(-len(data.x_train) // 64)
    calls = _nan_from(model.decoder, steps_per_epoch + 5)  # NaN from step 5 of epoch 2
    run = tmp_path / "run"
    with pytest.raises(NumericalError) as caught:
        vaekit.fit(model, data, epochs=4, out=run, nll_samples=10, progress=False, figures=False)
    err = caught.value
    message = str(err)
    assert err.exit_code == 3 and isinstance(err, VaekitError)
    assert "\n" not in message
    assert "epoch 2" in message, message
    assert any(term in message for term in ("loss", "distortion")), message
    assert calls["n"] <= 2 * steps_per_epoch, "training went on past the epoch that produced NaN"
    assert [r["epoch"] for r in _rows(run)] == [1]
    state = torch.load(run / "checkpoint.pt", map_location="cpu", weights_only=True)
    assert state["epoch"] == 1 and state["step"] == 0
    assert all(torch.isfinite(v).all() for v in state["model"].values())
    saved = vaekit.load(run)  # the weights file is the epoch-1 model, loadable and finite
    for name, value in saved.state_dict().items():
        assert torch.isfinite(value).all(), name
        assert torch.equal(value, state["model"][name]), name
    assert _temp_files(run) == []


def test_nan_in_the_cli_exits_3_with_one_sentence(cli, tmp_path, monkeypatch):
    from vaekit import nets

    forward = nets.MLPDecoder.forward
    calls = {"n": 0}

    def poisoned(self, z, c=None):
        out = forward(self, z, c)
        if self.training:
            calls["n"] += 1
            if calls["n"] > 30:  # digits: 23 steps per epoch, so NaN in epoch 2
                out = out * float("nan")
        return out

    monkeypatch.setattr(nets.MLPDecoder, "forward", poisoned)
    run = tmp_path / "run"
    code, out, err = cli("train", "--data", "digits", "--epochs", "3", "--out", run, *FAST)
    assert code == 3, (code, err)
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "epoch 2" in lines[0], err
    assert [r["epoch"] for r in _rows(run)] == [1]


# ----------------------------------------------------------------------------- paths from configs


def _snapshot(folder: Path, skip: Path) -> dict:
    return {
        str(p.relative_to(folder)): p.stat().st_mtime_ns
        for p in folder.rglob("*")
        if skip not in p.parents and p != skip
    }


@pytest.mark.parametrize("key", ["out", "resume", "overwrite", "config"])
def test_config_file_cannot_choose_where_to_write(cli, tmp_path, monkeypatch, key):
    cwd = tmp_path / "a" / "b"
    cwd.mkdir(parents=True)
    monkeypatch.chdir(cwd)
    value = "true" if key == "overwrite" else "../../x"
    (cwd / "c.yaml").write_text(f"data: digits\nepochs: 1\n{key}: {value}\n")
    before = _snapshot(tmp_path, tmp_path / "never")
    code, out, err = cli("train", "--config", "c.yaml", *FAST)
    assert code == 2, (code, err)
    assert f"unknown key '{key}'" in err and "Traceback" not in err, err
    assert _snapshot(tmp_path, tmp_path / "never") == before
    assert not (tmp_path / "x").exists() and not (cwd / "runs").exists()


def test_resume_writes_only_inside_the_run_folder(cli, tmp_path, monkeypatch):
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    run = tmp_path / "run"
    assert cli("train", "--data", "digits", "--epochs", "1", "--out", run, *FAST)[0] == 0
    elsewhere = tmp_path / "elsewhere"
    config = yaml.safe_load((run / "config.yaml").read_text())
    config["out"] = str(elsewhere)
    config["resume"] = "../elsewhere2"
    config["options"].update({"out": str(elsewhere), "resume": str(elsewhere), "config": "../c.yaml"})
    config["options"]["overwrite"] = True
    config["figures"] = str(elsewhere / "figures")
    io.write_yaml(run / "config.yaml", config)
    before = _snapshot(tmp_path, run)
    code, out, err = cli("train", "--resume", run, "--epochs", "2", "--quiet")
    assert code == 0, err
    assert _snapshot(tmp_path, run) == before, "the resume wrote outside the run folder"
    assert not elsewhere.exists() and not (tmp_path / "elsewhere2").exists()
    assert [r["epoch"] for r in _rows(run)] == [1, 2]
    assert (run / "report.html").exists() and (run / "figures" / "samples.png").exists()


def test_resume_with_a_config_naming_another_data_file_writes_only_the_run(
    cli, tmp_path, monkeypatch, capsys
):
    """Editing options.data to another folder's file may change what is read, never where
    anything is written; and it ends in success or one clear sentence, not a traceback."""
    from vaekit.cli import main

    monkeypatch.chdir(tmp_path)
    other = tmp_path / "other"
    other.mkdir()
    np.save(other / "x.npy", np.random.default_rng(0).random((40, 64)).astype(np.float32))
    run = tmp_path / "run"
    assert cli("train", "--data", "digits", "--epochs", "1", "--out", run, *FAST)[0] == 0
    config = yaml.safe_load((run / "config.yaml").read_text())
    config["options"]["data"] = str(other / "x.npy")
    io.write_yaml(run / "config.yaml", config)
    before = _snapshot(tmp_path, run)
    capsys.readouterr()
    code, crash = 0, None
    try:
        main(["train", "--resume", str(run), "--epochs", "2", "--quiet"])
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else 1
    except Exception as e:  # noqa: BLE001 - a traceback is the failure reported below
        crash = e
    err = capsys.readouterr().err
    assert _snapshot(tmp_path, run) == before, "the resume wrote outside the run folder"
    assert sorted(p.name for p in other.iterdir()) == ["x.npy"]
    assert crash is None, f"resume crashed with a traceback: {type(crash).__name__}: {crash}"
    assert code in (0, 2), (code, err)
    if code == 2:
        lines = [line for line in err.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("error: "), err


def test_skip_nonfinite_skips_one_bad_batch_with_a_warning(tmp_path):
    data = vaekit.datasets.load("digits")
    model = vaekit.VAE.for_data(data, hidden=(16,))
    calls = {"n": 0}
    forward = model.decoder.forward

    def one_bad_batch(z, c=None):
        out = forward(z, c)
        if model.decoder.training:
            calls["n"] += 1
            if calls["n"] == 7:
                out = out * float("nan")
        return out

    model.decoder.forward = one_bad_batch
    with pytest.warns(UserWarning, match="epoch 1: skipped 1 batch"):
        run = vaekit.fit(model, data, epochs=2, skip_nonfinite=True, nll_samples=5, progress=False)
    assert [r["epoch"] for r in run.history] == [1, 2]
    assert all(np.isfinite(r["train_loss"]) and np.isfinite(r["test_elbo"]) for r in run.history)
    assert all(torch.isfinite(p).all() for p in model.parameters())
