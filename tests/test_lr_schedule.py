"""The learning-rate schedule (--lr-schedule): cosine annealing as SGDR writes it (Loshchilov &
Hutter, 2017, eq. 5), the rate each step really used, a resume that steps with the same rates,
and bad settings as one sentence."""

import math
import os
import signal

import numpy as np
import pytest
import torch
import yaml
from conftest import FAST

import vaekit
from vaekit import schedules
from vaekit import train as train_module
from vaekit.errors import VaekitError
from vaekit.train import Interrupted


def test_cosine_runs_from_lr_to_lr_min_through_the_midpoint():
    lr, low, epochs = 2e-3, 1e-4, 8
    rate = [schedules.learning_rate("cosine", t, epochs, lr, low) for t in np.linspace(0, epochs, 81)]
    assert rate[0] == pytest.approx(lr, rel=1e-12)
    assert rate[40] == pytest.approx((lr + low) / 2, rel=1e-12)  # cos(pi / 2) = 0
    assert rate[-1] == pytest.approx(low, rel=1e-12)
    assert all(a >= b for a, b in zip(rate, rate[1:], strict=False)), "cosine annealing never rises"
    # a quarter of the way: lr_min + (lr - lr_min) (1 + cos(pi / 4)) / 2
    quarter = schedules.learning_rate("cosine", 2.0, epochs, lr, low)
    assert quarter == pytest.approx(low + (lr - low) * (1 + math.sqrt(0.5)) / 2, rel=1e-12)
    assert schedules.learning_rate("cosine", 99.0, epochs, lr, low) == pytest.approx(low)  # past the end
    assert {schedules.learning_rate("constant", t, epochs, lr, low) for t in (0, 3.3, 8)} == {lr}
    with pytest.raises(VaekitError, match="lr_schedule must be one of auto, constant, cosine"):
        schedules.learning_rate("step", 1.0, epochs, lr)


def _digits():
    return vaekit.datasets.load("digits")


def _model(data):
    return vaekit.VAE.for_data(data, latent_dim=3, hidden=(32,), seed=0)


def _before_each_step(monkeypatch, hook):
    """Make train._adam call `hook(optimizer)` just before every optimizer step."""
    make = train_module._adam

    def wrapped(params, lr):
        optimizer = make(params, lr)
        step = optimizer.step

        def hooked(*args, **kwargs):
            hook(optimizer)
            return step(*args, **kwargs)

        optimizer.step = hooked
        return optimizer

    monkeypatch.setattr(train_module, "_adam", wrapped)


def test_every_step_uses_the_cosine_rate_of_its_position(monkeypatch):
    """digits: 1,438 training examples, 23 steps of 64 per epoch; step k of epoch e is taken at
    progress e + k / 23, and the logged lr is the rate of each epoch's last step."""
    data = _digits()
    seen: list[float] = []
    _before_each_step(monkeypatch, lambda optimizer: seen.append(optimizer.param_groups[0]["lr"]))
    run = train_module.fit(
        _model(data),
        data,
        epochs=3,
        lr=1e-2,
        lr_schedule="cosine",
        lr_min=1e-4,
        progress=False,
        nll_samples=0,
    )
    steps = math.ceil(len(data.x_train) / 64)
    want = [1e-4 + (1e-2 - 1e-4) * (1 + math.cos(math.pi * (i / steps) / 3)) / 2 for i in range(3 * steps)]
    assert len(seen) == 3 * steps
    np.testing.assert_allclose(seen, want, rtol=1e-12)
    assert [r["lr"] for r in run.history] == pytest.approx([want[steps - 1], want[2 * steps - 1], want[-1]])
    # the default schedule keeps the rate
    seen.clear()
    run = train_module.fit(_model(data), data, epochs=1, lr=3e-3, progress=False, nll_samples=0)
    assert set(seen) == {3e-3} and run.history[0]["lr"] == 3e-3


def _interrupted_run(data, out, monkeypatch, settings: dict, at_step: int):
    """Train into `out` and press Ctrl-C during step `at_step` (counted over the whole run): the
    run folder holds the position the loop saved. Returns `out`."""
    calls = [0]

    def interrupt(optimizer):
        calls[0] += 1
        if calls[0] == at_step:
            os.kill(os.getpid(), signal.SIGINT)  # the loop's handler: stop after this step

    with monkeypatch.context() as patch:
        _before_each_step(patch, interrupt)
        with pytest.raises(Interrupted):
            train_module.fit(_model(data), data, out=out, **settings)
    return out


def test_a_cosine_run_interrupted_mid_epoch_resumes_bit_identical(tmp_path, monkeypatch):
    """Ctrl-C during step 30 (epoch 2, step 7): the resumed run takes the remaining steps with the
    rates the uninterrupted run used, so its weights and history are the same bytes."""
    data = _digits()
    settings = {"epochs": 3, "lr": 5e-3, "lr_schedule": "cosine", "progress": False, "nll_samples": 0}
    whole = train_module.fit(_model(data), data, out=tmp_path / "whole", **settings)

    cut = _interrupted_run(data, tmp_path / "cut", monkeypatch, settings, at_step=30)
    state = torch.load(cut / "checkpoint.pt", map_location="cpu", weights_only=True)
    assert (state["epoch"], state["step"]) == (1, 7)
    resumed = train_module.fit(_model(data), data, out=cut, resume=True, **settings)
    for name, value in whole.model.state_dict().items():
        assert torch.equal(value, resumed.model.state_dict()[name]), name
    for a, b in zip(whole.history, resumed.history, strict=True):
        assert {k: v for k, v in a.items() if k != "seconds"} == {
            k: v for k, v in b.items() if k != "seconds"
        }


def test_the_command_line_trains_with_a_cosine_schedule_and_records_it(cli, tmp_path):
    out = tmp_path / "run"
    code, _, err = cli(
        "train", "--data", "digits", "--epochs", "2", "--lr-schedule", "cosine", "--lr-min", "1e-5",
        "--out", out, *FAST,
    )  # fmt: skip
    assert code == 0, err
    train = yaml.safe_load((out / "config.yaml").read_text())["train"]
    assert (train["lr_schedule"], train["lr_min"]) == ("cosine", 1e-5)
    rows = vaekit.io.read_jsonl(out / "metrics.jsonl")
    steps = math.ceil(1438 / 64)
    want = [1e-5 + (1e-3 - 1e-5) * (1 + math.cos(math.pi * (e * steps - 1) / steps / 2)) / 2 for e in (1, 2)]
    assert [r["lr"] for r in rows] == pytest.approx(want, rel=1e-12)


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--lr-schedule", "step"], "lr_schedule must be one of auto, constant, cosine, not 'step'."),
        (
            ["--lr-schedule", "cosine", "--lr-min", "0.01"],
            "lr_min must be a number from 0 to lr (0.001), not 0.01.",
        ),
        (
            ["--lr-schedule", "cosine", "--lr-min", "-1e-5"],
            "lr_min must be a number from 0 to lr (0.001), not -1e-05.",
        ),
        (
            ["--lr-schedule", "cosine", "--lr-min", "nan"],
            "lr_min must be a number from 0 to lr (0.001), not nan.",
        ),
        (["--lr-min", "1e-5"], "lr_min (1e-05) is the end of the cosine schedule; add --lr-schedule cosine"),
    ],
)
def test_bad_schedule_settings_are_one_sentence(cli, tmp_path, flags, message):
    out = tmp_path / "run"
    code, _, err = cli("train", "--data", "digits", "--epochs", "1", *flags, "--out", out, *FAST)
    assert code == 2
    assert message in err and "Traceback" not in err, err
    assert not out.exists()
