"""Imports run one way: a module imports only modules of a lower layer (or its own). The layers
below are the package as it stands; a new upward edge fails here, naming the file and the import."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).parent.parent / "vaekit"

LAYERS = [
    # leaves: import only each other
    {"errors", "io", "metrics", "sprites", "batch", "config", "registry", "science", "schedules"},
    {"images", "tables", "likelihoods", "nets", "priors"},  # file readers, densities, networks, p(z)
    {"datasets", "model"},
    {"objectives", "runs"},
    {"evaluate"},
    {"train"},
    {"plots", "report"},
    {"workflow", "sweep", "analyses", "disentangle"},
    {"cli", "__main__", "__init__"},
]

# Known upward edges, each with the change that removes it. None today: `fit` only trains, and
# the run's figures are a callback (`report.RunReport`) that `workflow.fit` adds.
ALLOWED_UPWARD: dict[tuple[str, str], str] = {}


def _imports(path: Path) -> set[str]:
    """vaekit modules that `path` imports, at module level or inside functions."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "vaekit":
            parts = node.module.split(".")
            if len(parts) > 1:
                found.add(parts[1])
            else:
                found |= {a.name for a in node.names if a.name != "__version__"}
        elif isinstance(node, ast.Import):
            found |= {a.name.split(".")[1] for a in node.names if a.name.startswith("vaekit.")}
    return found - {path.stem}


def test_every_module_has_a_layer():
    modules = {p.stem for p in PACKAGE.glob("*.py")}
    placed = set().union(*LAYERS)
    assert modules == placed, f"place these modules in LAYERS: {sorted(modules ^ placed)}"


def test_no_module_imports_a_higher_layer():
    layer = {name: i for i, names in enumerate(LAYERS) for name in names}
    upward = []
    for path in sorted(PACKAGE.glob("*.py")):
        for target in sorted(_imports(path)):
            if layer[target] > layer[path.stem] and (path.stem, target) not in ALLOWED_UPWARD:
                upward.append(
                    f"vaekit/{path.name} imports vaekit.{target} (layer {layer[target]} > {layer[path.stem]})"
                )
    assert not upward, "\n".join(upward)


def test_the_allowed_upward_edges_still_exist():
    """When a known upward edge is removed, remove it from ALLOWED_UPWARD too."""
    for source, target in ALLOWED_UPWARD:
        assert target in _imports(PACKAGE / f"{source}.py"), (source, target)


def test_the_checker_sees_imports_inside_functions(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text("def f():\n    from vaekit.cli import main\n    import vaekit.sweep\n")
    assert _imports(sample) == {"cli", "sweep"}
