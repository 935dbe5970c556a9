"""vaekit: variational autoencoders in practice. Train, see and measure the latent space.

The names below load on first use (PEP 562), so `import vaekit` and the command line's `--help`
cost no torch import: `vaekit.fit`, `vaekit.load`, `vaekit.VAE`, `vaekit.Run`, and the modules
`vaekit.apply`, `vaekit.datasets`, `vaekit.evaluate`, `vaekit.objectives`, `vaekit.plots`.
"""

from __future__ import annotations

import importlib

from vaekit._version import __version__
from vaekit.errors import VaekitError

# public name -> (module, attribute in it; None for the module itself)
_LAZY = {
    "VAE": ("vaekit.model", "VAE"),
    "Run": ("vaekit.train", "Run"),
    "fit": ("vaekit.workflow", "fit"),
    "load": ("vaekit.hub", "load"),
    "apply": ("vaekit.apply", None),
    "datasets": ("vaekit.datasets", None),
    "evaluate": ("vaekit.evaluate", None),
    "objectives": ("vaekit.objectives", None),
    "plots": ("vaekit.plots", None),
}


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module 'vaekit' has no attribute {name!r}")
    module, attribute = _LAZY[name]
    value = importlib.import_module(module)
    value = value if attribute is None else getattr(value, attribute)
    globals()[name] = value  # loaded once
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])


__all__ = [
    "VAE",
    "Run",
    "VaekitError",
    "apply",
    "datasets",
    "evaluate",
    "fit",
    "load",
    "objectives",
    "plots",
    "__version__",
]
