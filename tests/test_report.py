"""The run report draws the metric matrices that `vaekit evaluate` stored in summary.json."""

import numpy as np

import vaekit
from vaekit import report


def test_run_figures_draw_the_stored_metric_matrices():
    data = vaekit.datasets.load("digits")
    model = vaekit.VAE.for_data(data, latent_dim=3, hidden=(32,))
    history = [
        {"epoch": 1, "seconds": 1.0, "beta": 1.0, "kl_weight": 1.0, "train_loss": 2.0, "test_loss": 2.0}
        | {k: 1.0 for k in ("train_rate", "test_rate", "train_distortion", "test_distortion")}
        | {"test_elbo": -2.0}
    ]
    plain = report.run_figures(model, data, history, {})
    assert not {"mutual_information", "dci_importance"} & set(plain)
    mi = np.array([[0.0, 0.9], [0.8, 0.1], [0.0, 0.0]])
    summary = {
        "per_dim_kl": [1.0, 1.0, 0.0],
        "disentanglement": {
            "factor_names": ["shape", "pos_x"],
            "matrices": {"mig_mutual_information": mi.tolist(), "dci_importance": mi.tolist()},
        },
    }
    figures = report.run_figures(model, data, history, summary)
    assert "MIG" in figures["mutual_information"].axes[0].get_title()
    assert "DCI" in figures["dci_importance"].axes[0].get_title()
