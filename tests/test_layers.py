"""Imports run one way: a module imports only modules of a lower layer (or its own). The layers
below are the package as it stands; a new upward edge fails here, naming the file and the import.

Every module of every sub-package is checked. A module is named by its dotted path relative to
vaekit (`objectives.base`; a sub-package's `__init__.py` by the sub-package, `objectives`; the
package root's by `__init__`). A module not listed in LAYERS takes the layer of the nearest
sub-package that is listed. There are no exemptions: `from vaekit import __version__` imports the
package root (the top layer); lower modules read the version from the leaf `vaekit._version`.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).parent.parent / "vaekit"
ROOT = "__init__"  # the name of the package root's module

LAYERS = [
    # leaves: import only each other
    {
        "_version",
        "errors",
        "io",
        "metrics",
        "batch",
        "config",
        "registry",
        "science",
        "schedules",
        "summary_keys",
        "trackers",
        "launch",
        "datasets.raw",
        "datasets.rows",
        "datasets.sprites",
    },
    # each file format's reader, column types, densities, nets, p(z)
    {
        "datasets.arrays",
        "datasets.tables",
        "datasets.images",
        "datasets.hdf5",
        "columns",
        "likelihoods",
        "nets",
        "priors",
    },
    # the data layer's dispatch, named sets and data sets (the package's API), the model
    {"datasets.formats", "datasets.builtin", "datasets.downloads", "datasets.dataset", "datasets", "model"},
    {"objectives", "runs"},
    {"evaluate", "hub"},
    {"train"},
    {"plots", "report"},
    {"apply"},
    {"workflow", "sweep", "analyses", "disentangle", "explore"},
    {"cli", "__main__", ROOT},
]


def _name(path: Path, package: Path) -> str:
    """The module's dotted name relative to the package: `objectives.base`, `objectives` for
    `objectives/__init__.py`, `__init__` for the package root."""
    parts = path.relative_to(package).with_suffix("").parts
    if parts[-1] == "__init__" and len(parts) > 1:
        parts = parts[:-1]
    return ".".join(parts)


def _modules(package: Path) -> set[str]:
    """Every module of the package and of its sub-packages, by `_name`."""
    return {_name(p, package) for p in package.rglob("*.py")}


def _imports(path: Path, package: Path = PACKAGE) -> set[str]:
    """Modules of `package` that `path` imports, at module level or inside functions, each
    resolved to the module it names (`from vaekit.a import b` names `a.b` when that is a module,
    else `a`; `from vaekit import x` names the package root when `x` is not a module)."""
    modules = _modules(package)
    inside = path.resolve().is_relative_to(package.resolve())
    # the package the file sits in, as parts relative to `package` (for relative imports)
    here = path.resolve().relative_to(package.resolve()).parent.parts if inside else ()

    def module(parts) -> str:
        return ".".join(parts) if parts else ROOT

    def from_import(base: tuple, names) -> set[str]:
        found = set()
        for alias in names:
            sub = ".".join((*base, alias.name))
            found.add(sub if sub in modules else module(base))
        return found

    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:  # relative: `from . import x`, `from .base import y`, `from .. import z`
                if not inside or node.level - 1 > len(here):
                    continue
                base = here[: len(here) - (node.level - 1)]
                base = (*base, *node.module.split(".")) if node.module else base
                found |= from_import(base, node.names)
            elif node.module and node.module.split(".")[0] == package.name:
                found |= from_import(tuple(node.module.split(".")[1:]), node.names)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if parts[0] == package.name:
                    found.add(module(parts[1:]))
    return found - {_name(path, package) if inside else path.stem}


def _layer(name: str, layers) -> int | None:
    """The layer of module `name`: its own entry, else that of the nearest listed sub-package."""
    for i, names in enumerate(layers):
        if name in names:
            return i
    return _layer(name.rpartition(".")[0], layers) if "." in name else None


def _unplaced(package: Path, layers) -> list[str]:
    return sorted(m for m in _modules(package) if _layer(m, layers) is None)


def _upward(package: Path, layers) -> list[str]:
    problems = []
    for path in sorted(package.rglob("*.py")):
        source = _name(path, package)
        where = path.relative_to(package.parent).as_posix()
        for target in sorted(_imports(path, package)):
            if _layer(target, layers) is None:
                problems.append(f"{where} imports {package.name}.{target}, which has no layer")
            elif _layer(target, layers) > _layer(source, layers):
                problems.append(
                    f"{where} imports {package.name}.{target} "
                    f"(layer {_layer(target, layers)} > {_layer(source, layers)})"
                )
    return problems


def test_every_module_has_a_layer():
    assert not _unplaced(PACKAGE, LAYERS), f"place these modules in LAYERS: {_unplaced(PACKAGE, LAYERS)}"
    modules = _modules(PACKAGE)
    stale = sorted(
        n for n in set().union(*LAYERS) if not any(m == n or m.startswith(n + ".") for m in modules)
    )
    assert not stale, f"LAYERS names modules that do not exist: {stale}"


def test_no_module_imports_a_higher_layer():
    problems = _upward(PACKAGE, LAYERS)
    assert not problems, "\n".join(problems)


def test_the_checker_sees_imports_inside_functions(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text("def f():\n    from vaekit.cli import main\n    import vaekit.sweep\n")
    assert _imports(sample) == {"cli", "sweep"}


def _fake_package(tmp_path, files: dict[str, str]) -> Path:
    package = tmp_path / "vaekit"
    for name, text in {"__init__.py": "", **files}.items():
        (package / name).parent.mkdir(parents=True, exist_ok=True)
        (package / name).write_text(text)
    return package


def test_the_checker_resolves_relative_imports_in_a_sub_package(tmp_path):
    package = _fake_package(
        tmp_path,
        {
            "errors.py": "",
            "cli.py": "",
            "objectives/__init__.py": "from .base import Objective\n",
            "objectives/base.py": "from .. import errors\n",
            "objectives/iwae.py": "from . import base\nfrom .base import Objective\nfrom ..cli import main\n",
        },
    )
    assert _imports(package / "objectives" / "__init__.py", package) == {"objectives.base"}
    assert _imports(package / "objectives" / "base.py", package) == {"errors"}
    assert _imports(package / "objectives" / "iwae.py", package) == {"objectives.base", "cli"}
    layers = [{"errors"}, {"objectives"}, {"cli", ROOT}]
    assert _upward(package, layers) == [
        "vaekit/objectives/iwae.py imports vaekit.cli (layer 2 > 1)",
    ]


def test_the_checker_resolves_absolute_imports_into_a_sub_package(tmp_path):
    package = _fake_package(
        tmp_path,
        {
            "objectives/__init__.py": "",
            "objectives/base.py": "",
            "user.py": (
                "from vaekit.objectives import base\nfrom vaekit.objectives.base import Objective\n"
                "from vaekit.objectives import OBJECTIVES\nimport vaekit.objectives.base\n"
            ),
        },
    )
    assert _imports(package / "user.py", package) == {"objectives", "objectives.base"}


def test_the_checker_counts_an_import_of_the_package_root(tmp_path):
    package = _fake_package(
        tmp_path,
        {
            "_version.py": '__version__ = "0"\n',
            "io.py": "from vaekit import __version__\n",
            "runs.py": "import vaekit\n",
            "good.py": "from vaekit._version import __version__\nfrom vaekit import io\n",
        },
    )
    assert _imports(package / "io.py", package) == {ROOT}
    assert _imports(package / "runs.py", package) == {ROOT}
    assert _imports(package / "good.py", package) == {"_version", "io"}
    layers = [{"_version", "io", "runs", "good"}, {ROOT}]
    assert _upward(package, layers) == [
        "vaekit/io.py imports vaekit.__init__ (layer 1 > 0)",
        "vaekit/runs.py imports vaekit.__init__ (layer 1 > 0)",
    ]


def test_the_checker_sees_a_sub_package_module_without_a_layer(tmp_path):
    package = _fake_package(
        tmp_path,
        {"errors.py": "", "objectives/__init__.py": "", "objectives/base.py": "", "plots/bars.py": ""},
    )
    assert _unplaced(package, [{"errors"}, {ROOT}]) == ["objectives", "objectives.base", "plots.bars"]
    # a sub-package's modules take its layer unless listed themselves
    assert _unplaced(package, [{"errors", "objectives.base"}, {"objectives", "plots", ROOT}]) == []
    assert _layer("objectives.base", [{"objectives.base"}, {"objectives"}]) == 0
    assert _layer("objectives.iwae", [{"objectives.base"}, {"objectives"}]) == 1
