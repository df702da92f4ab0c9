r"""Attach learned group scales to a model, update them, and read them back.

* :func:`learn_scales` — type-II MAP in the expanded form: every group gets s_g (a parameter) and
  its weights become w = s_g · z; the layer's noise stays on. Train with ``fit`` (any objective):
  :func:`scale_penalty` adds −Σ log p(s_g).
* :func:`variational` — mean-field VI with closed-form scales (Nalisnick et al., ICML 2019):
  every parameter θ becomes a draw from q(θ) = N(μ, σ²); the groups' variances v_g are set by the
  hyperprior's closed-form update at each evaluation of :func:`scale_penalty`, which returns
  KL(q ‖ N(0, σ0² ∏ v)) − Σ log p(v_g). The layers' multiplicative noise is switched off (its law
  is replaced by the point mass at 1): the noise law has become the scales' hyperprior. ``fit``
  with ``objective="mc"`` then maximises the ELBO (one draw of the weights per forward pass).

Both register ``torch.nn.utils.parametrize`` parametrizations, so the model stays an ordinary
module for a plain PyTorch or Lightning loop: add ``scale_penalty(model, sigma0) / n_train`` to
the loss (``dropprior.objectives.prior_penalty`` adds the Gaussian on the remaining parameters).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

import torch
from torch import Tensor, nn
from torch.nn.utils import parametrize

from dropprior._validation import check_bool, check_choice, check_sigma0
from dropprior.hyperpriors import ScaleHyperprior, resolve_hyperprior
from dropprior.nn import NoisyModule
from dropprior.noise import Bernoulli, NoiseLaw
from dropprior.scales._groups import ScaleGroup, scale_groups
from dropprior.scales._local_reparam import local_reparam_eligible, register_local_reparam
from dropprior.scales._scale import (
    GaussianTensor,
    GroupScale,
    LearnedScale,
    ScaledTensor,
    ScaleVariance,
)

__all__ = ["attach_scales", "learn_scales", "variational", "update_scales", "scale_penalty",
           "learned_scales", "group_snr", "has_scales", "covered_parameters", "collapse",
           "INFERENCE", "noise_off"]

INFERENCE = {
    "map": "type-II MAP: learned scales s_g, w = s_g·ε·z, the noise stays on (learn_scales)",
    "vi": "mean-field VI on the weights, closed-form scales, noise off (variational)",
}


def _check_module(model: object) -> None:
    if not isinstance(model, nn.Module):
        raise TypeError(f"expected a torch.nn.Module, got {type(model).__name__}")


def _check_fresh(model: nn.Module) -> None:
    if has_scales(model):
        raise ValueError("the model already has learned scales (learn_scales or variational was "
                         "called on it); build a fresh model to change the inference")


def _resolve(group: ScaleGroup, hyperprior: str | ScaleHyperprior) -> ScaleHyperprior:
    try:
        return resolve_hyperprior(hyperprior, group.law)
    except ValueError as err:
        raise ValueError(f"scale group {group.name!r}: {err}") from None


def _first_tensor(group: ScaleGroup) -> Tensor:
    t = group.targets[0]
    return getattr(t.module, t.name)


def _by_tensor(groups: Sequence[tuple[ScaleGroup, GroupScale]]
               ) -> dict[tuple[int, str], tuple[nn.Module, str, list[tuple[GroupScale, tuple]]]]:
    out: dict[tuple[int, str], tuple[nn.Module, str, list[tuple[GroupScale, tuple]]]] = {}
    for group, scale in groups:
        for t in group.targets:
            entry = out.setdefault((id(t.module), t.name), (t.module, t.name, []))
            entry[2].append((scale, t.view))
    return out


def learn_scales(model: nn.Module, hyperprior: str | ScaleHyperprior = "auto",
                 init: float = 1.0) -> list[LearnedScale]:
    """Type-II MAP: give every scale group of ``model`` a learned scale s_g (in place).

    Args:
        model: a model with dropprior noisy layers (see :func:`scale_groups` for the groups).
        hyperprior: ``"auto"`` (each group's noise law read as its hyperprior), a name of
            :data:`dropprior.hyperpriors.HYPERPRIORS`, or a ``ScaleHyperprior``.
        init: the initial scale, > 0.

    Returns:
        the new :class:`LearnedScale` modules, one per group.
    """
    _check_fresh(model)
    if isinstance(init, bool) or not isinstance(init, (int, float)) or not (0 < init < math.inf):
        raise ValueError(f"init must be a finite scale > 0, got {init!r}")
    pairs = []
    for group in scale_groups(model):
        ref = _first_tensor(group)
        pairs.append((group, LearnedScale(group, _resolve(group, hyperprior), init, ref.dtype,
                                          ref.device)))
    for module, name, scales in _by_tensor(pairs).values():
        parametrize.register_parametrization(module, name, ScaledTensor(scales))  # type: ignore
    return [s for _, s in pairs]


def attach_scales(model: nn.Module, inference: str, hyperprior: str | ScaleHyperprior,
                  init_std: float = 1e-3, local_reparam: bool = False) -> list[GroupScale]:
    """:func:`variational` (``inference="vi"``, with ``init_std`` and ``local_reparam``) or
    :func:`learn_scales` (``"map"``; ``local_reparam`` must then be False) on ``model``."""

    check_choice("inference", inference, INFERENCE)
    check_bool("local_reparam", local_reparam)
    if inference == "vi":
        return list(variational(model, hyperprior, init_std=init_std,
                                local_reparam=local_reparam))
    if local_reparam:
        raise ValueError("local_reparam=True applies to variational weights (inference='vi'); "
                         "type-II MAP (inference='map') has none")
    return list(learn_scales(model, hyperprior))


def noise_off(model: nn.Module) -> None:
    _check_module(model)
    for module in model.modules():
        if isinstance(module, NoisyModule):
            for key, value in list(vars(module).items()):
                if isinstance(value, NoiseLaw):
                    setattr(module, key, Bernoulli(1.0))


def variational(model: nn.Module, hyperprior: str | ScaleHyperprior = "auto",
                init_std: float = 1e-3, generator: torch.Generator | None = None,
                local_reparam: bool = False) -> list[ScaleVariance]:
    """Mean-field VI with closed-form group scales (in place).

    Every parameter that requires grad gets q = N(μ, σ²) with μ its current value and
    σ = ``init_std``; each scale group gets a variance v_g (initially 1), and the noise of every
    noisy layer is switched off (module docstring).

    Args:
        model: a model with dropprior noisy layers.
        hyperprior: as :func:`learn_scales`.
        init_std: the initial posterior standard deviation, > 0.
        generator: the generator of the weight draws.
        local_reparam: in training mode, draw the outputs of every linear map
            (``nn.Linear``, ``NoisyLinear``) by the local reparametrization, one independent
            draw per example, instead of one weight draw per minibatch (the same ELBO with a
            lower-variance gradient; ``dropprior.scales._local_reparam``). Other layers, and
            every layer under ``mc``, still draw their weights.

    Returns:
        the new :class:`ScaleVariance` modules, one per group.
    """

    _check_fresh(model)
    check_bool("local_reparam", local_reparam)
    if isinstance(init_std, bool) or not isinstance(init_std, (int, float)) \
            or not (0 < init_std < math.inf):
        raise ValueError(f"init_std must be a finite standard deviation > 0, got {init_std!r}")
    pairs = []
    for group in scale_groups(model):
        ref = _first_tensor(group)
        pairs.append((group, ScaleVariance(group, _resolve(group, hyperprior), 1.0, ref.dtype,
                                           ref.device)))
    grouped = _by_tensor(pairs)
    noise_off(model)
    for module in list(model.modules()):
        for name, param in list(module._parameters.items()):
            if param is None or not param.requires_grad:
                continue
            scales = grouped.get((id(module), name), (None, None, []))[2]
            parametrize.register_parametrization(
                module, name, GaussianTensor(param, scales, init_std,  # type: ignore[arg-type]
                                             generator))
    if local_reparam:
        for module in model.modules():
            if local_reparam_eligible(module):
                register_local_reparam(module)
    return [s for _, s in pairs]


# ---- reading the parametrizations back ------------------------------------------------------

def _parametrized(model: nn.Module) -> Iterator[tuple[nn.Module, str, nn.Module, Tensor]]:
    """(module, tensor name, its parametrization, the raw tensor) for every parametrized tensor
    of ours."""
    _check_module(model)
    for module in model.modules():
        if not parametrize.is_parametrized(module):
            continue
        for name, plist in module.parametrizations.items():  # type: ignore[union-attr,operator]
            for p in plist:
                if isinstance(p, (ScaledTensor, GaussianTensor)):
                    yield module, name, p, plist.original


def _scales(model: nn.Module) -> list[GroupScale]:
    _check_module(model)
    seen: dict[int, GroupScale] = {}
    for m in model.modules():
        if isinstance(m, GroupScale):
            seen.setdefault(id(m), m)
    return list(seen.values())


def has_scales(model: nn.Module) -> bool:
    """Whether :func:`learn_scales` or :func:`variational` was applied to ``model``."""
    return any(True for _ in _parametrized(model))


def covered_parameters(model: nn.Module) -> set[int]:
    """ids of the parameters whose prior :func:`scale_penalty` states (the scales, and for VI
    the means and σ's); the Gaussian on the EP weights covers the rest."""
    out: set[int] = set()
    for _, _, p, raw in _parametrized(model):
        if isinstance(p, GaussianTensor):
            out.update({id(raw), id(p.rho)})
    out.update(id(s.log_scale) for s in _scales(model) if isinstance(s, LearnedScale))
    return out


def _reduce(t: Tensor, shape: tuple[int, ...]) -> Tensor:
    dims = [i for i, (a, b) in enumerate(zip(t.shape, shape, strict=True)) if b == 1 and a != 1]
    return t.sum(dim=dims, keepdim=True) if dims else t


@torch.no_grad()
def update_scales(model: nn.Module, sigma0: float) -> None:
    """VI: set every group variance to its hyperprior's closed-form update from the current
    q(θ) (one coordinate-ascent sweep over the groups, in order)."""
    _check_sigma0(sigma0)
    users: dict[int, list[tuple[GaussianTensor, Tensor, int, tuple[int, ...]]]] = {}
    variances: dict[int, ScaleVariance] = {}
    for _, _, p, raw in _parametrized(model):
        if isinstance(p, GaussianTensor):
            for k, (var, view) in enumerate(zip(p.variances, p.views, strict=True)):
                users.setdefault(id(var), []).append((p, raw, k, view))
                variances[id(var)] = var  # type: ignore[assignment]
    for key, var in variances.items():
        total = torch.zeros(var.variance.shape, dtype=var.variance.dtype,
                            device=var.variance.device)
        count = 0.0
        for p, raw, k, view in users[key]:
            second = (raw.square() + p.std().square()) / p.prior_variance(sigma0, raw.shape, k)
            total = total + _reduce(second.reshape(view), var.variance.shape)
            count += math.prod(view) / math.prod(var.variance.shape)
        var.update(total, count)


def _check_sigma0(sigma0: float) -> float:
    return check_sigma0(sigma0, finite=True, role=" (the prior N(0, σ0² s²) of learned scales)")


def scale_penalty(model: nn.Module, sigma0: float) -> Tensor:
    """−log p of everything the scales add, up to constants: VI: KL(q ‖ prior) after
    :func:`update_scales`, minus Σ log p(v_g); MAP: −Σ log p(s_g). 0 for a model without scales.

    Shape:
        result: scalar.
    """
    total = torch.zeros(())
    parametrized = list(_parametrized(model))
    if not parametrized:
        return total
    _check_sigma0(sigma0)
    if any(isinstance(p, GaussianTensor) for _, _, p, _ in parametrized):
        update_scales(model, sigma0)
    for _, _, p, raw in parametrized:
        if isinstance(p, GaussianTensor):
            total = total + p.kl(raw, sigma0)
    for scale in _scales(model):
        total = total + scale.penalty()
    return total


def learned_scales(model: nn.Module) -> dict[str, Tensor]:
    """``{group name: s_g}`` (MAP: the learned scale; VI: √v_g), each of the group's shape."""
    return {s.group_name: s.scale().detach() for s in _scales(model)}


@torch.no_grad()
def group_snr(model: nn.Module) -> dict[str, Tensor]:
    r"""VI: each group's posterior signal-to-noise ratio :math:`\sqrt{\sum\mu^2/\sum\sigma^2}`
    over its weights, ``{group name: SNR}`` of the group's shape.

    Raises:
        ValueError: the model has no variational weights.
    """
    sums: dict[str, list[Tensor]] = {}
    for _, _, p, raw in _parametrized(model):
        if isinstance(p, GaussianTensor):
            for var, view in zip(p.variances, p.views, strict=True):
                shape = tuple(var.variance.shape)  # type: ignore[union-attr,arg-type]
                mu2 = _reduce(raw.square().reshape(view), shape)
                s2 = _reduce(p.std().square().reshape(view), shape)
                acc = sums.setdefault(var.group_name,  # type: ignore[arg-type]
                                      [torch.zeros_like(mu2), torch.zeros_like(s2)])
                acc[0] += mu2
                acc[1] += s2
    if not sums:
        raise ValueError("group_snr needs a variational model (dropprior.scales.variational)")
    return {name: (mu2 / s2).sqrt() for name, (mu2, s2) in sums.items()}


def _own_class(module: nn.Module) -> None:
    """Give a parametrized module a class of its own. ``parametrize`` creates one class per
    module and a deepcopy shares it; ``remove_parametrizations`` deletes the tensor's property
    from that class, which would break every other module sharing it."""
    cls = type(module)
    body = {k: v for k, v in cls.__dict__.items() if k not in ("__dict__", "__weakref__")}
    module.__class__ = type(cls.__name__, cls.__bases__, body)


@torch.no_grad()
def collapse(model: nn.Module) -> nn.Module:
    """Replace every parametrized tensor by its point value, in place: MAP w = s·z, VI the
    posterior mean μ. The scales are gone afterwards (read them first). Safe on a deepcopy of a
    model: the original keeps its parametrizations."""
    entries = list(_parametrized(model))
    for module in {id(m): m for m, _, _, _ in entries}.values():
        _own_class(module)
    for module, name, p, _ in entries:
        was = p.training
        p.train(False)
        depth = getattr(p, "_mc_depth", 0)
        if isinstance(p, GaussianTensor):
            p._mc_depth = 0
        parametrize.remove_parametrizations(module, name, leave_parametrized=True)
        if isinstance(p, GaussianTensor):
            p._mc_depth = depth
        p.train(was)
    return model
