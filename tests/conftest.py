import os

import pytest

os.environ.setdefault("MPLBACKEND", "Agg")


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


# small, fast settings for end-to-end runs
FAST = ["--hidden", "64", "--nll-samples", "10", "--quiet"]
