"""Figure 1 of the paper: Var[ξ] and Var[ξ⁻²] of each noise law against its second moment E[ξ²].

Prop. 4.1 says the expanded parametrization's (EP) Jensen gap is of order Var[ξ]; Prop. 4.2 says
the hierarchical parametrization's (HP) gap is of order Var[ξ⁻²]. Figure 1 plots both against
E[ξ²] — the shrinkage a law induces (E[ξ²] → 0 is strong shrinkage) — for the laws of Table 1.

Each law has several parameters, so "the" curve of a law is a choice of a one-parameter *path*
through its parameter space. Every path here is written as a map from the target second moment
e = E[ξ²] to the law's parameters, so that all laws are evaluated on one grid of e. Every plotted
value is a closed-form moment of the law itself (``law.variance``, ``law.inverse_square_variance``),
never a sample estimate; a moment that does not exist is ``inf`` and is drawn in a marked band at
the top of the plot instead of being dropped.

Half-Cauchy noise has E[ξ²] = ∞ for every scale, so it has no point on the x-axis and no path.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from dropprior._validation import check_choice, check_int
from dropprior.noise import NoiseLaw, law_by_name

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "NoisePath",
    "Figure1Curve",
    "figure1_paths",
    "figure1_curves",
    "figure1_grid",
    "plot_figure1",
    "write_figure1",
]

#: Grid of E[ξ²] used by the figure: 61 log-spaced points on [0.01, 2].
FIGURE1_RANGE = (0.01, 2.0)
FIGURE1_POINTS = 61


@dataclass(frozen=True)
class NoisePath:
    """A one-parameter family of one noise law, indexed by its second moment e = E[ξ²].

    Attributes:
        key: short identifier (CSV column ``path``).
        law_name: registered name of the law (``dropprior.noise.law_by_name``).
        label: legend label.
        parameter: which parameter is swept, and how it depends on e, in words.
        low: the path exists for e in the open-closed interval (low, high].
        high: see ``low``.
        params: e ↦ the law's constructor keyword arguments (tensors of e's shape).
        swept: e ↦ the value of the swept parameter (reported in the CSV).
        color: matplotlib colour; the paper's colours where the paper uses the law.
        in_paper: whether the paper's Figure 1 shows this law.
        high_open: whether ``high`` itself is excluded (the range is then (low, high)).
    """

    key: str
    law_name: str
    label: str
    parameter: str
    low: float
    high: float
    params: Callable[[Tensor], dict[str, Tensor]]
    swept: Callable[[Tensor], Tensor]
    color: str
    in_paper: bool
    high_open: bool = False

    def law(self, second_moment: Tensor) -> NoiseLaw:
        """The law on this path whose E[ξ²] equals ``second_moment`` (a batched law).

        Shape:
            second_moment: (P,) → a law with batch shape (P,).
        """
        e = torch.as_tensor(second_moment, dtype=torch.float64)
        outside = (e <= self.low) | (e >= self.high if self.high_open else e > self.high)
        if bool(outside.any()):
            close = ")" if self.high_open else "]"
            raise ValueError(
                f"path {self.key!r} covers E[xi^2] in ({self.low}, {self.high}{close}; "
                f"got {e[outside].tolist()!r}"
            )
        law_type = law_by_name(self.law_name)
        law: NoiseLaw = law_type(**self.params(e))
        return law


def _sqrt(e: Tensor) -> Tensor:
    return torch.sqrt(e)


# Inverse Nakagami: ξ = 1/η, η ~ Nakagami(m, Ω), E[η²] = Ω; ξ⁻² = η² ~ Gamma(m, rate m/Ω) and
# ξ² ~ InvGamma(m, m/Ω), so E[ξ²] = m/((m−1)Ω) for m > 1 and Var[ξ⁻²] = Ω²/m.
_NAKAGAMI_FIXED_SHAPE = 2.0
_NAKAGAMI_FIXED_SPREAD = 1.0
_LOG_NORMAL_SCALE = 0.5


def figure1_paths() -> list[NoisePath]:
    """Every path drawn in Figure 1, with the parameter swept along it.

    =========================  ==============================================  ============
    path                       law on the path (e = E[ξ²])                     e range
    =========================  ==============================================  ============
    ``bernoulli``              Bernoulli(keep π = e), not inverted             (0, 1)
    ``gaussian``               N(0, s²), s = √e                                (0, 2]
    ``gaussian_dropout``       N(1, s²), s = √(e − 1)                          (1, 2]
    ``rayleigh``               Rayleigh(scale s = √(e/2))                      (0, 2]
    ``inverse_nakagami_m2``    InvNakagami(m = 2, Ω = m/((m−1)e) = 2/e)        (0, 2]
    ``inverse_nakagami_omega1`` InvNakagami(m = e/(e−1), Ω = 1)                (1, 2]
    ``uniform``                Uniform(0, u), u = √(3e)                        (0, 2]
    ``log_normal``             LogNormal(μ = ½ log e − σ², σ = 0.5)            (0, 2]
    ``beta``                   Beta(α = 2e/(1−e), β = 1)                       (0, 1)
    =========================  ==============================================  ============
    """
    m, om, sig = _NAKAGAMI_FIXED_SHAPE, _NAKAGAMI_FIXED_SPREAD, _LOG_NORMAL_SCALE
    return [
        NoisePath("bernoulli", "bernoulli", "Bernoulli(π), π = E[ξ²]",
                  "keep probability π = e (inverted=False)", 0.0, 1.0,
                  lambda e: {"keep": e}, lambda e: e, "black", True, high_open=True),
        NoisePath("gaussian", "gaussian", "Gaussian N(0, s²)",
                  "std s = √e, mean 0", 0.0, 2.0,
                  lambda e: {"mean": torch.zeros_like(e), "std": _sqrt(e)}, _sqrt,
                  "green", True),
        NoisePath("gaussian_dropout", "gaussian", "Gaussian N(1, s²)",
                  "std s = √(e − 1), mean 1 (Srivastava's Gaussian dropout)", 1.0, 2.0,
                  lambda e: {"mean": torch.ones_like(e), "std": _sqrt(e - 1)},
                  lambda e: _sqrt(e - 1), "limegreen", True),
        NoisePath("rayleigh", "rayleigh", "Rayleigh(s)",
                  "scale s = √(e/2)", 0.0, 2.0,
                  lambda e: {"scale": _sqrt(e / 2)}, lambda e: _sqrt(e / 2), "red", True),
        NoisePath("inverse_nakagami_m2", "inverse_nakagami", f"inv. Nakagami(m={m:g}, Ω)",
                  f"spread Ω = m/((m−1)e) at fixed shape m = {m:g}", 0.0, 2.0,
                  lambda e: {"shape": torch.full_like(e, m), "spread": m / ((m - 1) * e)},
                  lambda e: m / ((m - 1) * e), "blue", True),
        NoisePath("inverse_nakagami_omega1", "inverse_nakagami",
                  f"inv. Nakagami(m, Ω={om:g})",
                  f"shape m = eΩ/(eΩ − 1) at fixed spread Ω = {om:g}", 1.0 / om, 2.0,
                  lambda e: {"shape": e * om / (e * om - 1), "spread": torch.full_like(e, om)},
                  lambda e: e * om / (e * om - 1), "deepskyblue", True),
        NoisePath("uniform", "uniform", "Uniform(0, u)",
                  "upper end u = √(3e), lower end 0", 0.0, 2.0,
                  lambda e: {"low": torch.zeros_like(e), "high": _sqrt(3 * e)},
                  lambda e: _sqrt(3 * e), "orange", False),
        NoisePath("log_normal", "log_normal", f"LogNormal(μ, σ={sig:g})",
                  f"log-location μ = ½ log e − σ² at fixed σ = {sig:g}", 0.0, 2.0,
                  lambda e: {"loc": 0.5 * torch.log(e) - sig**2,
                             "scale": torch.full_like(e, sig)},
                  lambda e: 0.5 * torch.log(e) - sig**2, "purple", False),
        NoisePath("beta", "beta", "Beta(α, 1)",
                  "concentration α = 2e/(1 − e), β = 1", 0.0, 1.0,
                  lambda e: {"concentration1": 2 * e / (1 - e),
                             "concentration0": torch.ones_like(e)},
                  lambda e: 2 * e / (1 - e), "saddlebrown", False, high_open=True),
    ]


@dataclass(frozen=True)
class Figure1Curve:
    """The exact moments of one path on the figure's grid.

    Shape:
        every tensor field: (P,), float64; ``inf`` marks a moment that does not exist.
    """

    path: NoisePath
    second_moment: Tensor
    swept: Tensor
    variance: Tensor
    inverse_square_mean: Tensor
    inverse_square_variance: Tensor


def figure1_grid(path: NoisePath, points: int = FIGURE1_POINTS,
                 span: tuple[float, float] = FIGURE1_RANGE) -> Tensor:
    """The grid of E[ξ²] on which ``path`` is drawn: the figure's log-spaced grid, clipped to the
    path's range (a path whose range starts above the grid's lower end gets its own log grid).

    Shape:
        returns (P,) float64 with P ≤ ``points``.
    """
    check_int("points", points, 2)
    lo, hi = span
    if not 0 < lo < hi:
        raise ValueError(f"span must satisfy 0 < low < high, got {span!r}")
    top = min(hi, path.high)
    if path.high_open and top == path.high:  # e.g. Bernoulli's π < 1: stop 1% short of the end
        top = path.high - 1e-2 * (path.high - max(path.low, lo))
    if path.low > 0:  # e.g. Gaussian dropout on (1, 2]: start just inside the open end
        bottom = max(lo, path.low + 1e-2 * (top - path.low))
    else:
        bottom = lo
    grid = torch.logspace(math.log10(bottom), math.log10(top), points, dtype=torch.float64)
    return grid


def figure1_curves(paths: Sequence[NoisePath] | None = None,
                   points: int = FIGURE1_POINTS) -> list[Figure1Curve]:
    """Evaluate the exact moments of every path on its grid.

    Raises:
        RuntimeError: if a law's ``second_moment`` disagrees with the path's target E[ξ²] (the
            path's inversion is wrong) — the figure would otherwise be silently mislabelled.
    """
    curves = []
    for path in paths if paths is not None else figure1_paths():
        e = figure1_grid(path, points)
        law = path.law(e)
        got = law.second_moment.to(torch.float64)
        if not torch.allclose(got, e, rtol=1e-8, atol=0.0):
            raise RuntimeError(f"path {path.key!r}: law.second_moment {got.tolist()} != {e}")
        curves.append(Figure1Curve(
            path=path,
            second_moment=e,
            swept=path.swept(e),
            variance=law.variance.to(torch.float64),
            inverse_square_mean=law.inverse_square_mean.to(torch.float64),
            inverse_square_variance=law.inverse_square_variance.to(torch.float64),
        ))
    return curves


def plot_figure1(curves: Sequence[Figure1Curve], xscale: str = "log") -> Figure:
    """Draw Var[ξ] (solid) and Var[ξ⁻²] (dashed) against E[ξ²] on a log y-axis.

    Infinite values are drawn inside a grey band at the top of the axes labelled "∞", one dashed
    line per law at its own height in the band, so that laws whose Var[ξ⁻²] does not exist stay
    visible. Laws not in the paper's Figure 1 are drawn thinner.

    Args:
        curves: output of :func:`figure1_curves`.
        xscale: ``"log"`` or ``"linear"`` x-axis.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    check_choice("xscale", xscale, ["log", "linear"])
    finite_vals = torch.cat([
        torch.cat([c.variance, c.inverse_square_variance]) for c in curves
    ])
    finite_vals = finite_vals[torch.isfinite(finite_vals) & (finite_vals > 0)]
    y_lo = float(finite_vals.min()) / 2 if finite_vals.numel() else 1e-3
    y_hi = float(finite_vals.max()) * 2 if finite_vals.numel() else 1e3
    band_lo, band_hi = y_hi * 3, y_hi * 3 * 10 ** (0.12 * math.log10(y_hi * 3 / y_lo) + 1)

    fig, ax = plt.subplots(figsize=(10, 5.5))
    ax.axhspan(band_lo, band_hi, color="0.9", zorder=0)
    ax.text(0.5, band_lo * 1.15, "Var[ξ⁻²] = ∞ (the moment does not exist)",
            transform=ax.transData, ha="center",
            va="bottom", fontsize=8, color="0.2", zorder=5,
            bbox={"facecolor": "0.9", "edgecolor": "none", "pad": 1})
    n_inf = sum(bool(torch.isinf(c.inverse_square_variance).any()) for c in curves)
    slot = 0
    for c in curves:
        x = c.second_moment.numpy()
        lw = 2.0 if c.path.in_paper else 1.0
        color = c.path.color
        var = c.variance.numpy()
        ax.plot(x, var, "-", color=color, lw=lw, label=f"{c.path.label}")
        inv = c.inverse_square_variance.clone()
        inf = torch.isinf(inv)
        if bool((~inf).any()):
            finite = inv.masked_fill(inf, float("nan")).numpy()
            ax.plot(x, finite, "--", color=color, lw=lw)
        if bool(inf.any()):
            slot += 1
            height = band_lo * (band_hi / band_lo) ** ((slot + 0.5) / (n_inf + 1.5))
            xs = x[inf.numpy()]
            ax.plot(xs, [height] * len(xs), "--", color=color, lw=lw)
            ax.plot(xs[[0, -1]], [height] * 2, "x", color=color, ms=5)
    ax.set_yscale("log")
    ax.set_xscale(xscale)
    ax.set_ylim(y_lo, band_hi)
    ax.set_xlabel("E[ξ²]  (small = strong shrinkage)")
    ax.set_ylabel("variance")
    ax.set_title("Noise variances: Var[ξ] (solid), Var[ξ⁻²] (dashed); exact closed forms")
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)
    fig.tight_layout()
    return fig


def _fmt(v: float | Tensor) -> str:
    value = float(v)
    return "inf" if math.isinf(value) else repr(value)


def write_figure1(out_dir: str | Path, points: int = FIGURE1_POINTS,
                  xscale: str = "log") -> dict[str, Path]:
    """Write ``figure1.png``, ``figure1.svg`` and ``figure1.csv`` into ``out_dir``.

    The CSV has one row per (path, grid point): ``path, law, parameter, swept_value,
    second_moment, variance, inverse_square_mean, inverse_square_variance``; ``inf`` is written
    literally for a moment that does not exist.

    Returns:
        the written files keyed by ``"png"``, ``"svg"``, ``"csv"``.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    curves = figure1_curves(points=points)
    files = {"png": out / "figure1.png", "svg": out / "figure1.svg", "csv": out / "figure1.csv"}
    with files["csv"].open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "law", "parameter", "swept_value", "second_moment", "variance",
                         "inverse_square_mean", "inverse_square_variance"])
        for c in curves:
            for i in range(c.second_moment.numel()):
                writer.writerow([
                    c.path.key, c.path.law_name, c.path.parameter, _fmt(c.swept[i]),
                    _fmt(c.second_moment[i]), _fmt(c.variance[i]),
                    _fmt(c.inverse_square_mean[i]), _fmt(c.inverse_square_variance[i]),
                ])
    fig = plot_figure1(curves, xscale=xscale)
    import matplotlib.pyplot as plt

    fig.savefig(files["png"], dpi=130, metadata={"Software": None})
    fig.savefig(files["svg"], metadata={"Date": None})
    plt.close(fig)
    return files
