"""Objectives: a model and a batch in, a record of named per-example terms out.

The one loss path: training, the per-epoch test pass, the final summary and per-example scores
all call an objective, so `train_loss` and `test_loss` always measure the same thing. An
objective returns a `LossOutput`: `loss` (batch,), the value minimised (its batch mean), and
`terms`, every named per-example quantity it wants logged (nats); the loop logs each as
`train_<name>` / `test_<name>` without knowing the names. Adding an objective is one class
with `@register(name)` in a module of this package (one per family), chosen with
`--objective NAME`; its settings are `SETTINGS` (name -> (type, default, meaning)), declared in
`vaekit.config.OBJECTIVE_SETTINGS` (so the command line knows them without torch), stored in
config.yaml and checked by `make`.

    beta-elbo              distortion + w(t) beta rate                   Higgins et al., 2017, eq. 4
    beta-elbo-conditioned  the same, one beta per example, / max(1, beta)
    reconstruction         distortion (the deterministic autoencoder)
    beta-tcvae             ELBO split into MI, TC, dimension-wise KL     Chen et al., 2018, eq. 2/4
    factorvae              ELBO - gamma TC, TC by a discriminator        Kim & Mnih, 2018, eq. 2
    dip-vae                ELBO - lambda ||Cov - I||, type I or II       Kumar et al., 2018, eq. 6/7
    capacity               distortion + gamma |KL - C(t)|                Burgess et al., 2018, eq. 8
    iwae                   -IWAE_K bound                                 Burda et al., 2016, eq. 8
    free-bits              distortion + sum_j max(lambda, E_batch KL_j)  Kingma et al., 2016, eq. 15

What an objective may need beyond the batch it is told with `bind`: the model (checked for
fitness: prior, beta), the training set's size (beta-TCVAE's N), the number of training epochs
(the cyclical schedule) and the seed. An objective with its own trained parameters (FactorVAE's
discriminator) keeps them itself and tells the loop through four hooks: `to(device)`,
`after_step(reduce)` (its own optimisation step after the model's), `state()`/`load_state()`
(checkpoint.pt, so a resumed run continues exactly) and `weights()`/`load_weights()` (the run
folder's objective.safetensors, so evaluate and score rebuild it).

Randomness beyond the one reparameterisation draw the loop passes as `noise` (IWAE's further
samples, FactorVAE's permutations) comes from a generator seeded by a hash of that noise
(`noise_generator`): the same seed gives the same numbers, a resumed run continues exactly and
the test pass is repeatable. On an accelerator that costs one copy of the (batch, latent_dim)
noise to the host per step.
"""

from vaekit.config import OBJECTIVE_SETTINGS
from vaekit.objectives.base import (
    OBJECTIVES,
    KLScheduled,
    LossOutput,
    Objective,
    attach,
    beta_of,
    build,
    default_for,
    default_name,
    elbo_terms,
    for_model,
    inner_model,
    make,
    noise_generator,
    register,
    require_plain_beta,
    require_standard_normal,
)
from vaekit.objectives.capacity import Capacity
from vaekit.objectives.dipvae import DIPVAE, dip_covariance, dip_penalty
from vaekit.objectives.elbo import BetaELBO, ConditionedBetaELBO, Reconstruction
from vaekit.objectives.factorvae import Discriminator, FactorVAE, permute_dims
from vaekit.objectives.freebits import FreeBits
from vaekit.objectives.iwae import IWAE
from vaekit.objectives.tcvae import ESTIMATORS, BetaTCVAE, log_importance_weights, tc_decomposition

# the registry in the order the objectives are declared (vaekit.config.OBJECTIVE_SETTINGS), the
# order every list of them shows, whatever order the family modules were imported in
for _name in sorted(OBJECTIVES, key=list(OBJECTIVE_SETTINGS).index):
    OBJECTIVES[_name] = OBJECTIVES.pop(_name)
del _name

__all__ = [
    "LossOutput",
    "Objective",
    "attach",
    "beta_of",
    "inner_model",
    "elbo_terms",
    "noise_generator",
    "require_standard_normal",
    "require_plain_beta",
    "KLScheduled",
    "default_name",
    "default_for",
    "make",
    "build",
    "for_model",
    "OBJECTIVES",
    "register",
    "BetaELBO",
    "ConditionedBetaELBO",
    "Reconstruction",
    "log_importance_weights",
    "tc_decomposition",
    "BetaTCVAE",
    "ESTIMATORS",
    "permute_dims",
    "Discriminator",
    "FactorVAE",
    "dip_covariance",
    "dip_penalty",
    "DIPVAE",
    "Capacity",
    "IWAE",
    "FreeBits",
]
