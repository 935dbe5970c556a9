"""vaekit: variational autoencoders in practice. Train, see and measure the latent space."""

from vaekit import datasets, evaluate, objectives, plots
from vaekit._version import __version__
from vaekit.errors import VaekitError
from vaekit.model import VAE
from vaekit.runs import load
from vaekit.train import Run
from vaekit.workflow import fit

__all__ = [
    "VAE",
    "Run",
    "VaekitError",
    "datasets",
    "evaluate",
    "fit",
    "load",
    "objectives",
    "plots",
    "__version__",
]
