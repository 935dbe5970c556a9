"""The documentation site (MkDocs with Material, the API reference by mkdocstrings) builds with
warnings as errors, so no internal link or anchor is broken and no docstring is malformed; every
module of the package has its reference, and every public name in it an entry; the README's links
into docs/ lead to pages that exist."""

from __future__ import annotations

import ast
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
PACKAGE = ROOT / "vaekit"
UNDOCUMENTED = {"vaekit.cli", "vaekit.__main__", "vaekit._version"}  # the command line documents itself

pytest.importorskip("mkdocs", reason="the test extras install the documentation tools")


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    out = tmp_path_factory.mktemp("site")
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    assert done.returncode == 0, done.stderr[-4000:]
    yield out
    shutil.rmtree(out, ignore_errors=True)


def _modules() -> list[str]:
    names = []
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        names.append(".".join(parts))
    return [n for n in names if n != "vaekit" and n not in UNDOCUMENTED]


def _documented() -> set[str]:
    """The objects the reference pages render (their `::: name` lines)."""
    found = set()
    for page in (ROOT / "docs" / "reference").glob("*.md"):
        found |= set(re.findall(r"^::: ([\w.]+)", page.read_text(), flags=re.M))
    return found


def _public_names(module: str) -> list[str]:
    """Functions, classes and constants a module defines at its top level, not starting with _."""
    parts = module.split(".")[1:]
    path = PACKAGE.joinpath(*parts).with_suffix(".py")
    if not path.exists():
        path = PACKAGE.joinpath(*parts, "__init__.py")
    tree = ast.parse(path.read_text())
    names = []
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.append(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names += [t.id for t in targets if isinstance(t, ast.Name)]
    return [n for n in names if not n.startswith("_")]


def test_the_site_builds_with_warnings_as_errors(site):
    assert (site / "index.html").exists() and (site / "guide" / "objective" / "index.html").exists()
    pages = list(site.rglob("index.html"))
    assert len(pages) >= 40  # getting started, 12 guide pages, the reference's 27, development


def test_every_module_has_its_reference():
    missing = [m for m in _modules() if m not in _documented()]
    assert not missing, f"add a reference page (or a ::: line) for {missing}"


def test_every_public_name_is_in_the_reference(site):
    html = "".join(p.read_text() for p in (site / "reference").rglob("index.html"))
    ids = set(re.findall(r'id="(vaekit\.[\w.]+)"', html))
    missing = []
    for module in _modules():
        for name in _public_names(module):
            if f"{module}.{name}" not in ids:
                missing.append(f"{module}.{name}")
    assert not missing, missing[:20]


def test_the_readme_links_pages_that_exist():
    readme = (ROOT / "README.md").read_text()
    links = re.findall(r"\]\((docs/[^)#]+)", readme)
    assert len(links) >= 13
    assert [link for link in links if not (ROOT / link).exists()] == []
