r"""A group's scale and the parametrization that applies it: type-II MAP and variational forms.

* :class:`LearnedScale` (type-II MAP, expanded form): s = exp(u), u a parameter learned with the
  weights; the tensor becomes w = s · z (:class:`ScaledTensor`), the layer's noise ε still
  multiplies, so w_g = s_g ε_g z_g. Penalty: −Σ log p(s_g) of the hyperprior, in s.
* :class:`ScaleVariance` (VI): v = s², a buffer set in closed form by the hyperprior's update
  from the posterior second moments; the tensor becomes a draw from q(w) = N(μ, σ²)
  (:class:`GaussianTensor`) with prior N(0, σ0² ∏ v). Penalty: −Σ log p(v_g).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dropprior._validation import check_generator
from dropprior.hyperpriors import ScaleHyperprior
from dropprior.nn import Stochastic
from dropprior.scales._groups import ScaleGroup

__all__ = ["GroupScale", "LearnedScale", "ScaleVariance", "ScaledTensor", "GaussianTensor",
           "MIN_VARIANCE"]

MIN_VARIANCE = 1e-12
"""The floor of a closed-form variance: a group switched off sits there instead of at 0, where
the prior's log density is −∞."""


class GroupScale(nn.Module):
    """Abstract base: the scale s (shape ``group.shape``) of one :class:`ScaleGroup`.

    Attributes:
        group_name, kind: the group's ``name`` and ``kind``.
        hyperprior: the prior on s.
    """

    def __init__(self, group: ScaleGroup, hyperprior: ScaleHyperprior) -> None:
        super().__init__()
        self.group_name, self.kind, self.hyperprior = group.name, group.kind, hyperprior

    def scale(self) -> Tensor:
        """s, shape ``group.shape``."""
        raise NotImplementedError

    def penalty(self) -> Tensor:
        """−log p(s) summed over the group's entries (up to a constant for an improper prior)."""
        raise NotImplementedError

    def extra_repr(self) -> str:
        return f"{self.group_name!r}, hyperprior={self.hyperprior!r}"


class LearnedScale(GroupScale):
    """s = exp(u) with u a learned parameter (initial s = ``init``)."""

    def __init__(self, group: ScaleGroup, hyperprior: ScaleHyperprior, init: float = 1.0,
                 dtype: torch.dtype | None = None, device: torch.device | None = None) -> None:
        super().__init__(group, hyperprior)
        self.log_scale = nn.Parameter(torch.full(group.shape, math.log(init), dtype=dtype,
                                                 device=device))

    def scale(self) -> Tensor:
        return self.log_scale.exp()

    def penalty(self) -> Tensor:
        return -self.hyperprior.log_prob(self.scale()).sum()


class ScaleVariance(GroupScale):
    """v = s² held as a buffer and set by :meth:`update` (initial v = ``init``²)."""

    variance: Tensor

    def __init__(self, group: ScaleGroup, hyperprior: ScaleHyperprior, init: float = 1.0,
                 dtype: torch.dtype | None = None, device: torch.device | None = None) -> None:
        super().__init__(group, hyperprior)
        self.register_buffer("variance", torch.full(group.shape, init**2, dtype=dtype,
                                                    device=device))

    def scale(self) -> Tensor:
        return self.variance.sqrt()

    def penalty(self) -> Tensor:
        return -self.hyperprior.log_prob_variance(self.variance).sum()

    @torch.no_grad()
    def update(self, sum_sq: Tensor, count: float) -> None:
        """v ← the hyperprior's closed-form update, floored at :data:`MIN_VARIANCE`."""
        self.variance.copy_(self.hyperprior.map_variance(sum_sq, count).clamp_min(MIN_VARIANCE))


def _broadcast(scale: Tensor, view: tuple[int, ...], shape: torch.Size) -> Tensor:
    """A group-shaped tensor broadcast over a parameter viewed as ``view``, in its own shape."""
    return scale.expand(view).reshape(shape)


class ScaledTensor(nn.Module):
    """The parametrization w = z · ∏_k s_k (each s_k broadcast over the tensor's view k)."""

    def __init__(self, scales: list[tuple[LearnedScale, tuple[int, ...]]]) -> None:
        super().__init__()
        self.scales = nn.ModuleList([s for s, _ in scales])
        self.views = [v for _, v in scales]

    def factor(self, shape: torch.Size) -> Tensor:
        """∏_k s_k broadcast to the tensor's shape."""
        out = None
        for scale, view in zip(self.scales, self.views, strict=True):
            f = _broadcast(scale.scale(), view, shape)  # type: ignore[operator]
            out = f if out is None else out * f
        assert out is not None
        return out

    def forward(self, z: Tensor) -> Tensor:
        return z * self.factor(z.shape).to(z.dtype)


class GaussianTensor(Stochastic):
    r"""The parametrization w = μ + σ ⊙ ε, ε ~ N(0, I) drawn at every access while sampling
    (training mode or inside ``mc``), w = μ otherwise; μ is the parametrized tensor.

    Prior N(0, σ0² ∏_k v_k) with v_k the variances of the tensor's groups (none: N(0, σ0²)).
    σ = softplus(ρ), ρ initialised so that σ = ``init_std``.

    Attributes:
        trains_by_local_reparam: set by :func:`dropprior.scales.variational` on the weight and
            bias of a linear map: in training mode outside ``mc`` the tensor is μ and the
            layer's hook adds the output noise of the local reparametrization instead.
    """

    granularity = "batch"

    def __init__(self, mean: Tensor, variances: list[tuple[ScaleVariance, tuple[int, ...]]],
                 init_std: float = 1e-3, generator: torch.Generator | None = None) -> None:
        super().__init__()
        rho = math.log(math.expm1(init_std))
        self.rho = nn.Parameter(torch.full_like(mean.detach(), rho))
        self.variances = nn.ModuleList([v for v, _ in variances])
        self.views = [v for _, v in variances]
        self.generator = check_generator(generator)
        self.trains_by_local_reparam = False

    def local_reparam_active(self) -> bool:
        """Whether the layer's local-reparametrization hook draws instead of this tensor: in
        training mode outside ``mc``, and while sampling with per-example draws
        (:func:`dropprior.nn.per_example_draws`, which sets ``granularity`` to ``"example"``)."""
        return self.trains_by_local_reparam and (
            (self.training and self._mc_depth == 0)
            or (self.sampling and self.granularity == "example"))

    def std(self) -> Tensor:
        """σ, the tensor's shape."""
        return F.softplus(self.rho)

    def prior_variance(self, sigma0: float, shape: torch.Size, skip: int | None = None) -> Tensor:
        """σ0² ∏_k v_k broadcast to the tensor's shape (leaving out group ``skip``)."""
        out = torch.full(shape, sigma0**2, dtype=self.rho.dtype, device=self.rho.device)
        for k, (var, view) in enumerate(zip(self.variances, self.views, strict=True)):
            if k != skip:
                out = out * _broadcast(var.variance, view, shape)  # type: ignore[arg-type]
        return out

    def kl(self, mean: Tensor, sigma0: float) -> Tensor:
        r"""KL(q ‖ prior) = ½ Σ [(σ² + μ²)/P − 1 − log(σ²/P)], summed."""
        var = self.std().square()
        prior = self.prior_variance(sigma0, mean.shape)
        return 0.5 * ((var + mean.square()) / prior - 1 - torch.log(var / prior)).sum()

    def forward(self, mean: Tensor) -> Tensor:
        if not self.sampling or self.local_reparam_active():
            return mean
        eps = torch.randn(mean.shape, dtype=mean.dtype, device=mean.device,
                          generator=self.generator)
        return mean + self.std() * eps
