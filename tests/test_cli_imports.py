"""The command line's cheap paths: `--help` imports no torch, and the warning filter knows vaekit's
own files in any sub-package."""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from vaekit import cli as cli_module
from vaekit.cli import cli

COMMANDS = sorted(cli.commands)  # from the click group, so a new command is covered unasked

PROBE = """
import contextlib, io, sys
from vaekit.cli import main
said = io.StringIO()
with contextlib.redirect_stdout(said):
    try:
        main(sys.argv[1:])  # the entry point, as `vaekit` runs it
        code = 0
    except SystemExit as e:
        code = e.code
assert code in (0, None), said.getvalue()
print('torch' in sys.modules)
"""


@pytest.mark.parametrize("command", [None, *COMMANDS])
def test_help_imports_no_torch(command):
    args = ["--help"] if command is None else [command, "--help"]
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={
            **os.environ,
            "PYTHONPATH": os.pathsep.join(
                filter(None, [str(Path(__file__).parents[1]), os.environ.get("PYTHONPATH")])
            ),
        },
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().splitlines()[-1] in ("True", "False"), done.stdout[-3000:]
    assert done.stdout.strip().splitlines()[-1] == "False", f"vaekit {' '.join(args)} imports torch"


def test_the_commands_are_listed_from_the_group():
    assert {"train", "evaluate", "datasets"} <= set(COMMANDS)


def test_warnings_from_a_sub_package_are_vaekits_own(monkeypatch, capsys):
    package = Path(cli_module.__file__).parent
    inside = package / "objectives" / "base.py"  # a module of a sub-package (need not exist)
    assert cli_module._is_vaekit_file(str(inside))
    assert cli_module._is_vaekit_file(str(package / "cli.py"))
    assert not cli_module._is_vaekit_file(str(package.parent / "tests" / "test_cli.py"))
    assert not cli_module._is_vaekit_file("<string>")

    # end to end: main installs the filter, which prints vaekit's own warning as one plain line and
    # hands any other to the display it found
    passed_on = []
    monkeypatch.setattr(warnings, "showwarning", lambda message, *rest, **kw: passed_on.append(str(message)))
    cli_module.main(["--help"])
    capsys.readouterr()
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.warn_explicit("from a sub-package", UserWarning, str(inside), 1)
        warnings.warn_explicit("from elsewhere", UserWarning, "/elsewhere/lib.py", 1)
    assert capsys.readouterr().err == "warning: from a sub-package\n"
    assert passed_on == ["from elsewhere"]
