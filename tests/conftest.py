import os
import tempfile

import pytest

os.environ.setdefault("MPLBACKEND", "Agg")
# the tutorial notebooks (docs/tutorials, run top to bottom by nbmake) train with small settings
# and write their run folders to a temporary folder, not beside themselves
os.environ.setdefault("VAEKIT_QUICK", "1")
os.environ.setdefault("VAEKIT_TUTORIAL_WORK", tempfile.mkdtemp(prefix="vaekit-tutorials-"))


@pytest.fixture(autouse=True)
def _close_figures():
    """Tests that inspect figures leave them open; close them so none piles up."""
    yield
    import matplotlib.pyplot as plt

    plt.close("all")


@pytest.fixture
def cli(capsys):
    """Run `vaekit ARGS` in-process: returns (exit status, stdout, stderr)."""
    from vaekit.cli import main

    def run(*args):
        capsys.readouterr()
        try:
            main([str(a) for a in args])
            code = 0
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else 1
        out, err = capsys.readouterr()
        return code, out, err

    return run


# Small, fast settings for end-to-end runs. The device is pinned to the CPU: the tests that
# compare bytes claim CPU determinism (a GPU's random streams differ); tests/test_gpu.py is the
# GPU's own smoke test.
FAST = ["--hidden", "64", "--nll-samples", "10", "--quiet", "--device", "cpu"]


@pytest.fixture(scope="session")
def digits_run(tmp_path_factory):
    """One small digits run shared by the tests that only read it (CLI commands, science
    workflows): 4 epochs, a 3-d latent space, the FAST net."""
    from vaekit.cli import main

    out = tmp_path_factory.mktemp("runs") / "digits"
    main(["train", "--data", "digits", "--latent-dim", "3", "--epochs", "4", "--out", str(out), *FAST])
    return out
