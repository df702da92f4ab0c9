r"""Convolutions with the structured priors of paper Section 5.3 (eq. 21–25).

For input channel c and filter f, the EP computation is a_f = Σ_c (X_c * W_{f,c}) · s_{c,f}:

* ``"channel"`` (eq. 21–22): s = ξ_{c,f}, one per (channel, filter) pair, shared across space;
* ``"filter"`` (eq. 23): s = τ_f, one per filter — SpatialDropout / ``nn.Dropout2d`` on the
  output;
* ``"channel+filter"`` (eq. 24–25): s = τ_f ξ_{c,f};
* ``"weight"``: one ξ per kernel entry (DropConnect).

Biases: the paper subsumes a filter's bias into its weights, so a filter scale τ_f multiplies the
bias b_f too: ``"filter"`` gives τ_f (X * W_f + b_f), which is ``nn.Dropout2d(conv(x))`` — bias
included — with inverted Bernoulli τ, and ``"channel+filter"`` gives
τ_f (Σ_c (X_c * W_{f,c}) ξ_{c,f} + b_f); τ_f = 0 switches the filter off exactly. The
(channel, filter) and per-weight scales ξ do not touch the bias (it is not a channel's weight).

Per-example pair/weight noise is applied exactly by a grouped convolution
(:func:`dropprior.functional.per_example_conv`). DropConnect's Ξ is drawn by the fused kernel
where it draws the law (:func:`~dropprior.functional.fused_plan`: float32 on the CPU), as
:func:`~dropprior.functional.dropconnect_linear`'s; the other structures' draws, one per
(channel, filter) pair or filter, by the law's own ``sample``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dropprior._validation import check_bool, check_choice, check_generator
from dropprior.functional import (
    draw_generator,
    draw_noise,
    multiplicative_noise,
    noise_mean,
    per_example_conv,
)
from dropprior.nn._init import reset_like_torch
from dropprior.nn._module import NoisyModule, check_law
from dropprior.noise import NoiseLaw

__all__ = ["NoisyConvNd", "NoisyConv1d", "NoisyConv2d"]

CONV_STRUCTURES = {
    "channel": "one ξ per (input channel, filter) pair, shared across space (eq. 21-22)",
    "filter": "one τ per filter, shared across channels and space (eq. 23; SpatialDropout)",
    "channel+filter": "τ_f ξ_{c,f}: both, multiplicatively (eq. 24-25)",
    "weight": "one ξ per kernel entry (DropConnect)",
}

_Size = int | tuple[int, ...]


def _tuple(value: _Size, n: int, name: str, low: int) -> tuple[int, ...]:
    bad = ValueError(f"{name} must be an int >= {low} or a tuple of {n} such ints, got {value!r}")
    if isinstance(value, bool) or not isinstance(value, (int, tuple, list)):
        raise bad
    out = (value,) * n if isinstance(value, int) else tuple(value)
    if len(out) != n or not all(isinstance(v, int) and not isinstance(v, bool) and v >= low
                                for v in out):
        raise bad
    return out


class NoisyConvNd(NoisyModule):
    """The base of :class:`NoisyConv1d` and :class:`NoisyConv2d`: test ``isinstance`` against it
    for any noisy convolution."""

    _dims: int = 0

    def __init__(self, in_channels: int, out_channels: int, kernel_size: _Size, noise: NoiseLaw,
                 structure: str = "channel", granularity: str = "example", stride: _Size = 1,
                 padding: _Size | str = 0, dilation: _Size = 1, groups: int = 1, bias: bool = True,
                 filter_noise: NoiseLaw | None = None, generator: torch.Generator | None = None,
                 device: torch.device | str | None = None,
                 dtype: torch.dtype | None = None) -> None:
        super().__init__()
        for name, value in (("in_channels", in_channels), ("out_channels", out_channels),
                            ("groups", groups)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if in_channels % groups or out_channels % groups:
            raise ValueError(
                f"in_channels={in_channels} and out_channels={out_channels} must both be "
                f"divisible by groups={groups}"
            )
        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, groups
        self.kernel_size = _tuple(kernel_size, self._dims, "kernel_size", 1)
        self.stride = _tuple(stride, self._dims, "stride", 1)
        self.dilation = _tuple(dilation, self._dims, "dilation", 1)
        if isinstance(padding, str):
            check_choice("padding", padding, ["same", "valid"])
            if padding == "same" and any(s != 1 for s in self.stride):
                raise ValueError(f"padding='same' needs stride 1 (as torch's convolutions), got "
                                 f"stride={stride!r}")
            self.padding: tuple[int, ...] | str = padding
        else:
            self.padding = _tuple(padding, self._dims, "padding", 0)
        check_bool("bias", bias)
        self.noise = check_law("noise", noise)  # type: ignore[assignment]
        self.structure = check_choice("structure", structure, CONV_STRUCTURES)
        self.granularity = check_choice("granularity", granularity, ["example", "batch"])
        if filter_noise is not None and structure != "channel+filter":
            raise ValueError("filter_noise applies only to structure='channel+filter'")
        self.filter_noise = check_law("filter_noise", filter_noise, required=False) or self.noise
        self.generator = check_generator(generator)
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels // groups,
                                               *self.kernel_size, device=device, dtype=dtype))
        self.bias = nn.Parameter(torch.empty(out_channels, device=device, dtype=dtype)) \
            if bias else None
        reset_like_torch(self.weight, self.bias)

    def _conv(self, x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
        conv = F.conv1d if self._dims == 1 else F.conv2d
        return conv(x, weight, bias, self.stride, self.padding, self.dilation, self.groups)

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != self._dims + 2 or x.shape[1] != self.in_channels:
            spatial = ", ".join(["L"] if self._dims == 1 else ["H", "W"])
            raise ValueError(
                f"{type(self).__name__} expects input of shape (N, {self.in_channels}, {spatial})"
                f", got {tuple(x.shape)}"
            )
        amp = self._compute_dtype(x, self._raw("weight"))
        if x.shape[0] == 0:  # an empty batch: no noise to draw, torch's own empty result
            return self._conv(x, self.weight, self.bias)
        if self.structure == "filter":
            y = self._conv(x, self.weight, self.bias)
            return multiplicative_noise(y, self.noise, "channel", self.granularity,
                                        generator=self.generator, training=self.sampling)
        if not self.sampling:
            y = self._conv(x, self.weight * noise_mean(self.noise, x.dtype, x.device), self.bias)
            if self.structure == "channel+filter":
                y = y * noise_mean(self.filter_noise, y.dtype, y.device)
            return y
        if amp is None:
            xi, tau = self._draw(x)
            y = per_example_conv(x, self.weight, xi, self.bias, self.stride, self.padding,
                                 self.dilation, self.groups)
            return y if tau is None else y * tau
        # Under autocast: the grouped convolution in autocast's dtype, as F.conv's; the casts are
        # differentiable, so the parameters keep their dtype and gradients.
        with torch.autocast(x.device.type, enabled=False):
            x = x.to(amp)
            xi, tau = self._draw(x)
            y = per_example_conv(x, self.weight.to(amp), xi,
                                 None if self.bias is None else self.bias.to(amp),
                                 self.stride, self.padding, self.dilation, self.groups)
            return y if tau is None else y * tau

    def _draw(self, x: Tensor) -> tuple[Tensor, Tensor | None]:
        """ξ of shape (N or nothing, F, C, *kernel) and, for ``"channel+filter"``, τ shaped to
        multiply the output, (N or 1, F, 1, ...); drawn in that order."""
        f, c = self.weight.shape[:2]
        lead = (x.shape[0],) if self.granularity == "example" else ()
        kernel = tuple(self.kernel_size) if self.structure == "weight" else (1,) * self._dims
        gen = None if torch.compiler.is_compiling() and self.generator is None \
            else draw_generator(x.device, self.generator)
        # DropConnect's Ξ (an entry per kernel entry and example) by the fused kernel where it
        # draws the law; the small per-pair draws by the law's own sample
        xi = draw_noise(self.noise, (*lead, f, c, *kernel), x.device, x.dtype, gen,
                        fused=self.structure == "weight")
        if self.structure != "channel+filter":
            return xi, None
        tau = draw_noise(self.filter_noise, (*lead, f, 1, *kernel), x.device, x.dtype, gen)
        return xi, tau.reshape(lead[0] if lead else 1, f, *([1] * self._dims))

    def group_norms(self) -> Tensor:
        """channel and channel+filter: ‖W_{f,c,:}‖ over kernel space, shape
        (in_channels / groups, out_channels); filter: ‖W_f‖, (out_channels,);
        weight: |W|, the weight's shape. (For channel+filter the filter groups' norms are the
        root-sum-square of each column.)"""
        w = self.weight.detach()
        if self.structure == "filter":
            return w.flatten(1).norm(dim=1)
        if self.structure == "weight":
            return w.abs()
        return w.flatten(2).norm(dim=2).T

    def extra_repr(self) -> str:
        return f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, " \
               f"stride={self.stride}, padding={self.padding}, " + super().extra_repr()


class NoisyConv1d(NoisyConvNd):
    """``nn.Conv1d`` with structured noise; see the module docstring for the structures.

    Args:
        in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias: as
            ``nn.Conv1d`` (zero padding).
        noise: the law of ξ (of τ for ``"filter"``).
        structure: ``"channel"``, ``"filter"``, ``"channel+filter"`` or ``"weight"``.
        granularity: ``"example"`` or ``"batch"``.
        filter_noise: the law of τ for ``"channel+filter"`` (default: ``noise``).
        generator: the generator of the draws.

    Shape:
        input: (N, C_in, L); output: (N, C_out, L_out).
    """

    _dims = 1


class NoisyConv2d(NoisyConvNd):
    """``nn.Conv2d`` with structured noise; see the module docstring for the structures.

    Args:
        in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias: as
            ``nn.Conv2d`` (zero padding).
        noise: the law of ξ (of τ for ``"filter"``).
        structure: ``"channel"``, ``"filter"``, ``"channel+filter"`` or ``"weight"``.
        granularity: ``"example"`` or ``"batch"``.
        filter_noise: the law of τ for ``"channel+filter"`` (default: ``noise``).
        generator: the generator of the draws.

    Shape:
        input: (N, C_in, H, W); output: (N, C_out, H_out, W_out).

    Example:
        >>> from dropprior.noise import Bernoulli
        >>> conv = NoisyConv2d(3, 8, 3, Bernoulli(0.9, inverted=True), structure="filter")
        >>> conv(torch.randn(2, 3, 16, 16)).shape
        torch.Size([2, 8, 14, 14])
    """

    _dims = 2
