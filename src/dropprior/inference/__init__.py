"""Bayesian inference under the priors that multiplicative noise induces (paper Section 3).

The model (a structured Gaussian scale-mixture prior) is separate from inference:

* :func:`run_mcmc`: Pyro's NUTS / HMC on a :class:`LogDensity` (:class:`LinearRegression`,
  :class:`NetworkPosterior`, :class:`ScaleMixture1D`) or any Pyro model (e.g. one built with
  :func:`sample_scale_mixture`), in the EP (non-centred, w = ξ·z) or HP (centred) form, with
  R-hat, bulk ESS, ESS per gradient evaluation and divergences (:class:`MCMCResult`);
* :func:`posterior_from_model`: the posterior of a ``dropprior.nn`` network's architecture/prior;
* :func:`sgld`, :func:`sgld_network`: minibatch stochastic-gradient Langevin dynamics;
* :func:`kuo_mallick`: Kuo & Mallick's Gibbs sampler for Bernoulli noise in the EP
  (spike-and-slab variable selection, linear or probit regression);
* :func:`horseshoe_gibbs`: Makalic & Schmidt's horseshoe Gibbs sampler (a reference for HMC);
* :func:`inclusion_probabilities`: posterior inclusion probabilities of a trained network's
  Bernoulli groups, by Gibbs sweeps over the indicators or exact enumeration.
"""

from dropprior.inference._density import (
    LinearRegression,
    LogDensity,
    ScaleMixture1D,
    normal_log_prob,
    prior_log_prob,
)
from dropprior.inference._diagnostics import bulk_ess, rank_normalize, split_chains, split_rhat
from dropprior.inference._horseshoe import HorseshoeGibbsResult, horseshoe_gibbs
from dropprior.inference._inclusion import (
    INCLUSION_METHODS,
    InclusionResult,
    inclusion_probabilities,
)
from dropprior.inference._kuo_mallick import KuoMallickResult, kuo_mallick
from dropprior.inference._linear import linear_regression_model, scale_mixture_model
from dropprior.inference._mcmc import ALGORITHMS, MCMCResult, run_mcmc
from dropprior.inference._network import (
    POSTERIOR_STRUCTURES,
    LayerSpec,
    NetworkPosterior,
    posterior_from_model,
)
from dropprior.inference._prior import (
    PARAMETRIZATIONS,
    check_continuous,
    check_parametrization,
    sample_scale_mixture,
)
from dropprior.inference._sgld import sgld, sgld_network

__all__ = [
    "run_mcmc", "MCMCResult", "ALGORITHMS",
    "LogDensity", "ScaleMixture1D", "LinearRegression", "NetworkPosterior", "LayerSpec",
    "posterior_from_model", "POSTERIOR_STRUCTURES",
    "sample_scale_mixture", "linear_regression_model", "scale_mixture_model",
    "PARAMETRIZATIONS", "check_parametrization", "check_continuous",
    "prior_log_prob", "normal_log_prob",
    "sgld", "sgld_network",
    "kuo_mallick", "KuoMallickResult", "horseshoe_gibbs", "HorseshoeGibbsResult",
    "inclusion_probabilities", "InclusionResult", "INCLUSION_METHODS",
    "split_rhat", "bulk_ess", "split_chains", "rank_normalize",
]
