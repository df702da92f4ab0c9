"""dropprior: dropout and its relatives as Gaussian scale-mixture priors on the weights."""

from dropprior import noise

__version__ = "0.1.0"

__all__ = ["noise", "__version__"]
