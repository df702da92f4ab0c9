"""Summaries over splits (mean ± standard error) and the Markdown / CSV tables of the commands."""

from __future__ import annotations

import csv
import math
import os
import re
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

__all__ = ["mean_se", "paired_mean_se", "format_mean_se", "format_spread", "format_seeds",
           "markdown_table", "write_csv", "beats", "combined_se", "minus"]

# a hyphen-minus that is a number's sign: at the start or after a space, "(", "[", "|", "," or
# "±", before a digit, a point or "inf" (an exponent's "e-03" keeps its hyphen)
_SIGN = re.compile(r"(^|[\s(\[|,±])-(?=[\d.]|inf)")


def mean_se(values: Sequence[float]) -> tuple[float, float]:
    """Mean and standard error s/√n (s the sample standard deviation, ddof = 1; 0 when n = 1)."""
    array = np.asarray(values, dtype=np.float64)
    if array.size == 0:
        raise ValueError("mean_se needs at least one value")
    if array.size == 1:
        return float(array[0]), 0.0
    return float(array.mean()), float(array.std(ddof=1) / math.sqrt(array.size))


def paired_mean_se(values: Sequence[float], reference: Sequence[float]) -> tuple[float, float]:
    """Mean and standard error (:func:`mean_se`) of the pairwise differences ``values[i] −
    reference[i]``: the paired comparison of two runs that share their i-th condition (a seed, a
    split), in which what the condition does to both cancels."""
    mine = np.asarray(values, dtype=np.float64)
    ref = np.asarray(reference, dtype=np.float64)
    if mine.shape != ref.shape or mine.ndim != 1:
        raise ValueError(f"paired_mean_se needs two equally long sequences, got {mine.shape} "
                         f"and {ref.shape}")
    return mean_se((mine - ref).tolist())


def combined_se(se: float, anchor_se: float) -> float:
    """The standard error of a difference of two independent estimates: √(se² + anchor_se²)."""
    return math.hypot(se, anchor_se)


def beats(mean: float, se: float, anchor_mean: float, anchor_se: float) -> bool:
    """Whether ``mean`` ± ``se`` beats ``anchor_mean`` ± ``anchor_se`` (higher is better): the
    difference exceeds the combined standard error (:func:`combined_se`)."""
    return mean - anchor_mean > combined_se(se, anchor_se)


def format_mean_se(mean: float, se: float) -> str:
    """``mean±se`` as in the published tables: 2 decimals, more when the values are small."""
    scale = max(abs(mean), abs(se))
    digits = 2 if scale >= 0.1 or scale == 0 else min(6, 1 - int(math.floor(math.log10(scale))) + 1)
    return minus(f"{mean:.{digits}f}±{se:.{digits}f}")


def minus(text: str) -> str:
    """``text`` with each number's sign written as the typographic minus "−" of the published
    tables; hyphens elsewhere (an exponent's ``e-03``, a word's) are kept."""
    return _SIGN.sub(r"\1−", text)


def format_spread(values: Sequence[float], fmt: str = "{:.2f}", spread_fmt: str | None = None,
                  spread: str = "se") -> str:
    """``mean ± spread`` of ``values``, each formatted with ``fmt`` (the spread with
    ``spread_fmt``, default ``fmt``): the standard error (``spread="se"``, :func:`mean_se`) or
    the sample standard deviation (``"sd"``, ddof = 1); one value alone, without a spread."""
    if spread not in ("se", "sd"):
        raise ValueError(f"spread must be 'se' or 'sd', got {spread!r}")
    mean, se = mean_se(values)
    if len(values) == 1:
        return fmt.format(mean)
    width = se * math.sqrt(len(values)) if spread == "sd" else se
    return f"{fmt.format(mean)} ± {(spread_fmt or fmt).format(width)}"


def format_seeds(seeds: Iterable[int]) -> str:
    """The seeds, sorted and without repeats, with each run of three or more consecutive seeds
    written as ``first–last``: ``[4, 0, 1, 2, 7, 8]`` → ``"0–2, 4, 7, 8"``."""
    ordered = sorted(set(int(s) for s in seeds))
    runs: list[list[int]] = []
    for seed in ordered:
        if runs and seed == runs[-1][-1] + 1:
            runs[-1].append(seed)
        else:
            runs.append([seed])
    return ", ".join(f"{r[0]}–{r[-1]}" if len(r) >= 3 else ", ".join(map(str, r)) for r in runs)


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A GitHub-flavoured Markdown table."""
    lines = ["| " + " | ".join(map(str, header)) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(map(str, row)) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def write_csv(path: str | os.PathLike[str], header: Sequence[str],
              rows: Sequence[Sequence[Any]]) -> None:
    """Write ``rows`` under ``header`` as CSV."""
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
