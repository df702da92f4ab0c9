"""EP vs HP Jensen gaps of a trained network as the prior's shrinkage E[ξ²] grows.

For each noise law (on one of the Figure 1 paths) and each target E[ξ²], a small ARD network
(noise on the input units of every linear layer) is trained on a UCI split by the MC objective,
and both Jensen gaps are computed on the trained weights: the EP gap (Prop. 4.1) on held-out
examples, the HP gap (Prop. 4.2) of the prior on the same weights. :func:`run_jensen` runs
one :class:`JensenSettings` on a UCI split; :func:`record_jensen` keeps its rows as a result
record under ``results/jensen/``, from which ``dropprior report`` builds
``docs/results/jensen.md``.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from dropprior._validation import check_int, check_number, check_seed
from dropprior.analysis import NoisePath, ep_gap, figure1_paths, hp_gap
from dropprior.noise import NoiseLaw

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["JensenRow", "JensenSettings", "jensen_sweep", "path_for", "run_jensen",
           "record_jensen", "rows_from_record", "write_jensen", "plot_jensen"]


@dataclass(frozen=True)
class JensenRow:
    """One (law, E[ξ²]) point of the sweep. Gaps are totals over the evaluated examples (EP) or
    over all weight groups (HP); ``inf`` where the gap is infinite."""

    path: str
    second_moment: float
    variance: float
    inverse_square_variance: float
    ep_gap: float
    ep_stderr: float
    ep_per_example: float
    ep_leading: float
    ep_converges: bool
    hp_gap: float
    hp_stderr: float
    hp_per_group: float
    hp_leading: float
    hp_converges: bool
    n_examples: int
    n_groups: int
    test_rmse: float  # MC prediction (100 draws) on the evaluation set, standardized units


@dataclass(frozen=True)
class JensenSettings:
    """One sweep: the UCI data set and split, the laws (law names or Figure 1 path keys, see
    :func:`path_for`), the target E[ξ²] levels, the network and training schedule, σ0, the
    noise draws of each gap and the seed (see :func:`jensen_sweep`)."""

    dataset: str
    laws: tuple[str, ...]
    levels: tuple[float, ...] = (0.9, 0.3, 0.05)
    split: int = 0
    hidden: int = 50
    epochs: int = 40
    sigma0: float = 1.0
    ep_samples: int = 1000
    hp_samples: int = 10_000
    seed: int = 0

    def __post_init__(self) -> None:
        if not isinstance(self.dataset, str) or not self.dataset:
            raise ValueError(f"dataset must be a UCI data set's folder name, got "
                             f"{self.dataset!r}")
        if isinstance(self.laws, str) or not self.laws:
            raise ValueError(f"laws must be a non-empty sequence of law names or path keys, "
                             f"got {self.laws!r}")
        for name in self.laws:
            path_for(name)
        if isinstance(self.levels, str) or not self.levels:
            raise ValueError(f"levels must be a non-empty sequence of E[ξ²] values, got "
                             f"{self.levels!r}")
        for level in self.levels:
            check_number("each level (E[ξ²])", level)
        check_int("split", self.split, 0)
        check_int("hidden", self.hidden, 1)
        check_int("epochs", self.epochs, 1)
        check_int("ep_samples", self.ep_samples, 2)
        check_int("hp_samples", self.hp_samples, 2)
        check_seed(self.seed, low=0)
        check_number("sigma0", self.sigma0)
        object.__setattr__(self, "laws", tuple(self.laws))
        object.__setattr__(self, "levels", tuple(float(v) for v in self.levels))


def path_for(key: str) -> NoisePath:
    """The Figure 1 path called ``key``, or the first path of the law named ``key``."""
    paths = figure1_paths()
    for p in paths:
        if p.key == key:
            return p
    for p in paths:
        if p.law_name == key:
            return p
    raise ValueError(f"unknown law or path {key!r}; expected one of "
                     f"{sorted({p.key for p in paths} | {p.law_name for p in paths})}")


def _network(d_in: int, hidden: int, law: NoiseLaw, seed: int) -> nn.Module:
    from dropprior.nn import NoisyLinear

    torch.manual_seed(seed)
    return nn.Sequential(NoisyLinear(d_in, hidden, law, structure="unit"), nn.ReLU(),
                         NoisyLinear(hidden, 1, law, structure="unit"))


def jensen_sweep(x_train: torch.Tensor, y_train: torch.Tensor, x_eval: torch.Tensor,
                 y_eval: torch.Tensor, paths: Sequence[NoisePath], levels: Sequence[float],
                 hidden: int = 50, epochs: int = 40, sigma0: float = 1.0,
                 ep_samples: int = 1000, hp_samples: int = 10_000, seed: int = 0,
                 progress: bool = True) -> list[JensenRow]:
    """Train one network per (path, level) and measure both gaps.

    Args:
        x_train, y_train: standardized training data.
        x_eval, y_eval: standardized held-out data on which the EP gap is computed.
        paths: Figure 1 paths (one per law).
        levels: target E[ξ²] values; a level outside a path's range is skipped.
        hidden: hidden units of the one-hidden-layer network.
        epochs: training epochs (Adam, lr 1e-3, minibatches of 32, MC objective, S = 1).
        sigma0: σ0 of the Gaussian prior on the EP weights (training and HP gap).
        ep_samples: noise draws for the EP gap; hp_samples: draws for the HP gap.
        seed: initialisation and training seed.

    Shape:
        x_*: (N, D) float; y_*: (N, 1) float.
    """
    from tqdm.auto import tqdm

    from dropprior.analysis import noisy_layers
    from dropprior.likelihoods import Gaussian as GaussianLikelihood
    from dropprior.prediction import RegressionPrediction, predict
    from dropprior.training import fit

    jobs = [(p, e) for p in paths for e in levels
            if p.low < e and (e < p.high if p.high_open else e <= p.high)]
    rows = []
    for path, level in tqdm(jobs, desc="jensen", disable=not progress):
        law = path.law(torch.tensor(level, dtype=torch.float64)).to(dtype=torch.float32)
        model = _network(x_train.shape[1], hidden, law, seed)
        likelihood = GaussianLikelihood(noise_std=0.5, learn=True)
        fit(model, likelihood, x_train, y_train, objective="mc", samples=1, sigma0=sigma0,
            lr=1e-3, epochs=epochs, batch_size=32, seed=seed, progress=False)
        model = model.double()
        for layer in noisy_layers(model):
            layer.noise = layer.noise.to(dtype=torch.float64)
        likelihood = likelihood.double()
        xe, ye = x_eval.double(), y_eval.double()
        pred = predict(model, xe, samples=100, likelihood=None)
        assert isinstance(pred, RegressionPrediction)
        rmse = float(((pred.mean.reshape(-1) - ye.reshape(-1)) ** 2).mean().sqrt())
        ep = ep_gap(model, xe, ye, likelihood, samples=ep_samples)
        hp = hp_gap(model, samples=hp_samples, sigma0=sigma0)
        assert ep.series is not None and hp.series is not None
        rows.append(JensenRow(
            path=path.key, second_moment=float(level),
            variance=float(law.variance), inverse_square_variance=float(
                law.to(dtype=torch.float64).inverse_square_variance),
            ep_gap=float(ep.value), ep_stderr=float(ep.stderr),
            ep_per_example=float(ep.value) / xe.shape[0], ep_leading=float(ep.series.leading),
            ep_converges=ep.series.converges,
            hp_gap=float(hp.value), hp_stderr=float(hp.stderr),
            hp_per_group=float(hp.value) / hp.parts.numel(), hp_leading=float(hp.series.leading),
            hp_converges=hp.series.converges,
            n_examples=int(xe.shape[0]), n_groups=int(hp.parts.numel()), test_rmse=rmse,
        ))
    return rows


def run_jensen(data_dir: str | Path | None, settings: JensenSettings,
               progress: bool = True) -> list[JensenRow]:
    """:func:`jensen_sweep` on split ``settings.split`` of UCI data set ``settings.dataset``:
    inputs and targets standardised by the training rows' mean and std, the gaps measured on
    the split's test rows, one thread. Raises ValueError where no level lies on any law's
    path."""
    from dropprior.data import load_uci
    from dropprior.experiments.uci import standardise

    paths = [path_for(name) for name in settings.laws]
    x_tr, y_tr, x_te, y_te = load_uci(data_dir, settings.dataset).split(settings.split)
    x_tr, x_te, _, _ = standardise(x_tr, x_te)
    y_tr, y_te, _, _ = standardise(y_tr.reshape(-1, 1), y_te.reshape(-1, 1))

    def tensor(a: Any) -> torch.Tensor:
        return torch.as_tensor(a, dtype=torch.float32)

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        rows = jensen_sweep(tensor(x_tr), tensor(y_tr), tensor(x_te), tensor(y_te), paths,
                            settings.levels, hidden=settings.hidden, epochs=settings.epochs,
                            sigma0=settings.sigma0, ep_samples=settings.ep_samples,
                            hp_samples=settings.hp_samples, seed=settings.seed,
                            progress=progress)
    finally:
        torch.set_num_threads(threads)
    if not rows:
        raise ValueError(f"no level in {list(settings.levels)} lies on the paths "
                         f"{[p.key for p in paths]}")
    return rows


def _json_number(value: Any) -> Any:
    """A float that JSON holds (``inf``, ``-inf`` and ``nan`` as those strings)."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


def record_jensen(settings: JensenSettings, rows: Sequence[JensenRow], seconds: float,
                  command: str, commit: str | None, root: str | Path) -> Path:
    """Write the sweep's result record to ``<root>/jensen/`` (one per settings, replacing an
    earlier one), every row's fields as :class:`JensenRow` names them. Returns its file."""
    from dropprior.experiments.records import make_record, record_store, settings_key

    store = record_store("jensen", root)
    key = settings_key("jensen", settings)
    metrics = {"rows": [{k: _json_number(v) for k, v in asdict(r).items()} for r in rows]}
    store.put(key, make_record(command, asdict(settings), settings.seed, metrics, seconds,
                               commit), replace=True)
    return store.path(key)


def rows_from_record(record: Mapping[str, Any]) -> list[JensenRow]:
    """The rows of a record written by :func:`record_jensen`."""
    names = {f.name: f.type for f in fields(JensenRow)}
    rows = []
    for raw in record["metrics"]["rows"]:
        values: dict[str, Any] = {k: float(v) if names[k] == "float" else v
                                  for k, v in raw.items()}
        rows.append(JensenRow(**values))
    return rows


def plot_jensen(rows: Sequence[JensenRow]) -> Figure:
    """EP gap (solid, per example) and HP gap (dashed, per weight group) against E[ξ²]; an
    infinite HP gap is drawn in a grey band at the top."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5))
    keys = list(dict.fromkeys(r.path for r in rows))
    colors = {p.key: p.color for p in figure1_paths()}
    finite = [v for r in rows for v in (r.ep_per_example, r.hp_per_group)
              if math.isfinite(v) and v > 0]
    lo = min(finite) / 3 if finite else 1e-4
    hi = max(finite) * 3 if finite else 1.0
    band_lo, band_hi = hi * 2, hi * 20
    ax.axhspan(band_lo, band_hi, color="0.9", zorder=0)
    ax.text(0.5, band_lo * 1.3, "HP gap = ∞", transform=ax.get_yaxis_transform(),
            ha="center", fontsize=8, color="0.3")
    for i, key in enumerate(keys):
        sel = sorted((r for r in rows if r.path == key), key=lambda r: r.second_moment)
        x = [r.second_moment for r in sel]
        c = colors.get(key, None)
        ax.plot(x, [max(r.ep_per_example, lo) for r in sel], "o-", color=c,
                label=f"{key}: EP")
        hp = [r.hp_per_group if math.isfinite(r.hp_per_group)
              else band_lo * (band_hi / band_lo) ** ((i + 1) / (len(keys) + 1)) for r in sel]
        ax.plot(x, hp, "s--", color=c, label=f"{key}: HP")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_ylim(lo, band_hi)
    ax.set_xlabel("E[ξ²] of the noise law (small = strong shrinkage)")
    ax.set_ylabel("Jensen gap (EP: per example; HP: per weight group)")
    ax.set_title("Jensen gaps of a trained network: EP (solid) vs HP (dashed)")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    return fig


def write_jensen(rows: Sequence[JensenRow], out_dir: str | Path) -> dict[str, Path]:
    """Write ``jensen.csv``, ``jensen.png`` and ``jensen.md`` (Markdown table) into ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files = {"csv": out / "jensen.csv", "png": out / "jensen.png", "md": out / "jensen.md"}
    with files["csv"].open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(asdict(rows[0])) if rows else [])
        writer.writeheader()
        for r in rows:
            writer.writerow(asdict(r))
    files["md"].write_text(markdown_table(rows))
    import matplotlib.pyplot as plt

    fig = plot_jensen(rows)
    fig.savefig(files["png"], dpi=120, metadata={"Software": None})
    plt.close(fig)
    return files


def _num(v: float, se: float | None = None) -> str:
    if math.isinf(v):
        return "∞"
    if math.isnan(v):
        return "n/a"
    text = f"{v:.4g}"
    return text if se is None else f"{text} ± {se:.2g}"


def markdown_table(rows: Sequence[JensenRow]) -> str:
    """The sweep as a Markdown table (per-example EP gap, per-group HP gap, series flags)."""
    head = ("| law path | E[ξ²] | Var[ξ] | Var[ξ⁻²] | EP gap / example | Prop. 4.1 leading "
            "/ example | HP gap / group | Prop. 4.2 leading / group | HP series converges "
            "| test RMSE |\n|---|---|---|---|---|---|---|---|---|---|\n")
    lines = []
    for r in rows:
        n, g = r.n_examples, r.n_groups
        lines.append(
            f"| {r.path} | {r.second_moment:g} | {_num(r.variance)} | "
            f"{_num(r.inverse_square_variance)} | {_num(r.ep_per_example, r.ep_stderr / n)} | "
            f"{_num(r.ep_leading / n)} | {_num(r.hp_per_group, r.hp_stderr / g)} | "
            f"{_num(r.hp_leading / g)} | {'yes' if r.hp_converges else 'no'} | "
            f"{_num(r.test_rmse)} |")
    return head + "\n".join(lines) + "\n"


def jensen_findings(rows: Sequence[JensenRow], failed_rmse: float = 0.9) -> list[str]:
    """What a sweep's rows show, as Markdown list items computed from them: where the HP gap is
    infinite, how Prop. 4.1's leading term compares with the EP gap (rows whose network
    predicts no better than the mean, test RMSE ≥ ``failed_rmse`` in standardised units, are
    named apart), and how large the finite HP gaps are against the EP gaps."""
    out = []
    infinite = [r for r in rows if math.isinf(r.hp_gap)]
    if infinite:
        laws = ", ".join(dict.fromkeys(r.path for r in infinite))
        out.append(f"- The HP gap is +∞ in {len(infinite)} of {len(rows)} rows ({laws}): "
                   "these laws have E[ξ⁻²] = ∞, so E log N(w; 0, σ0²ξ²) = −∞ for any non-zero "
                   "weight group. This is exact, not an estimate.\n")
    learned = [r for r in rows if r.test_rmse < failed_rmse and r.ep_per_example > 0]
    failed = [r for r in rows if r not in learned]
    if learned:
        ratios = [r.ep_leading / r.ep_gap for r in learned]
        out.append(f"- Where the network learned (test RMSE < {failed_rmse:g}, {len(learned)} "
                   f"rows), Prop. 4.1's leading term is {_span(ratios, times=True)} the EP "
                   f"gap; the EP gap is {_span([r.ep_per_example for r in learned])} nats per "
                   "example.\n")
    if failed:
        cells = "; ".join(f"{r.path} at E[ξ²] = {r.second_moment:g}: RMSE {_num(r.test_rmse)}, "
                          f"leading term {_ratio(r.ep_leading, r.ep_gap)} the EP gap"
                          for r in failed)
        out.append(f"- Networks that predict no better than the mean (test RMSE ≥ "
                   f"{failed_rmse:g}): {cells}.\n")
    finite = [r for r in rows if math.isfinite(r.hp_gap) and r.ep_per_example > 0]
    if finite:
        ratios = [r.hp_per_group / r.ep_per_example for r in finite]
        out.append(f"- Where the HP gap is finite ({len(finite)} rows), it is "
                   f"{_span([r.hp_per_group for r in finite])} nats per weight group, "
                   f"{_span(ratios, times=True)} the per-example EP gap of the same network; "
                   f"its series converges in {sum(r.hp_converges for r in finite)} of them.\n")
    for key in dict.fromkeys(r.path for r in finite):
        sel = sorted((r for r in finite if r.path == key), key=lambda r: -r.second_moment)
        if len(sel) > 1:
            out.append(f"- {key}, from E[ξ²] = {sel[0].second_moment:g} to "
                       f"{sel[-1].second_moment:g}: Prop. 4.2's leading term per group goes "
                       f"from {_num(sel[0].hp_leading / sel[0].n_groups)} to "
                       f"{_num(sel[-1].hp_leading / sel[-1].n_groups)}, the EP gap per example "
                       f"from {_num(sel[0].ep_per_example)} to {_num(sel[-1].ep_per_example)}."
                       "\n")
    return out


def _span(values: Sequence[float], times: bool = False) -> str:
    lo, hi = min(values), max(values)
    if times:
        return f"{lo:.3g}×" if lo == hi else f"{lo:.3g}× to {hi:.3g}×"
    return f"{lo:.3g}" if lo == hi else f"{lo:.3g} to {hi:.3g}"


def _ratio(part: float, whole: float) -> str:
    return f"{part / whole:.3g}×" if whole > 0 else "n/a"
