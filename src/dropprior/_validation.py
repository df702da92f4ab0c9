"""Argument checks shared by the whole package.

Every error names the bad value and what is accepted.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable
from typing import TypeVar

import numpy as np
import torch
from torch import Tensor

__all__ = ["type_name", "check_bool", "check_int", "check_choice", "check_positive",
           "check_in_interval", "as_param", "check_finite", "check_finite_data", "check_at_least",
           "check_less", "check_chain_lengths", "regression_data", "check_float_dtype",
           "check_generator", "check_seed", "offset_seed", "check_sigma0",
           "check_number", "class_labels", "shape_or_type"]

T = TypeVar("T")


def check_choice(name: str, value: T, choices: Iterable[T]) -> T:
    """Return ``value`` if it is one of ``choices``; else raise a ValueError listing them."""
    options = list(choices)
    if value not in options:
        raise ValueError(f"{name}={value!r} is not valid; expected one of {options}")
    return value


def type_name(value: object) -> str:
    """The type of ``value`` as an error should name it: module-qualified outside the builtins,
    so ``dropprior.likelihoods.Gaussian`` and ``dropprior.noise.gaussian.Gaussian`` differ."""
    cls = type(value)
    if cls.__module__ == "builtins":
        return cls.__qualname__
    return f"{cls.__module__}.{cls.__qualname__}"


def shape_or_type(value: object) -> str:
    """What an error says it got where a tensor was wanted: a tensor's shape, else the type."""
    return str(tuple(value.shape)) if isinstance(value, Tensor) else type_name(value)


def check_bool(name: str, value: object) -> bool:
    """``value`` if it is a bool; else a TypeError quoting it (``"no"`` and ``1`` are not flags)."""
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be True or False, got {value!r}")
    return value


def check_int(name: str, value: object, low: int) -> int:
    """``value`` if it is an int (not a bool) >= ``low``; else a ValueError quoting it."""
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{name} must be an int >= {low}, got {value!r}")
    return value


def as_param(value: float | Tensor, dtype: torch.dtype | None = None) -> Tensor:
    """A law parameter as a floating tensor (python floats become the default dtype).

    Raises:
        TypeError: a bool, a string, None, a complex number or another non-number, quoting it
            (``True`` is not the number 1 here, and ``"no"`` is not a value).
    """
    if isinstance(value, np.ndarray):
        if value.dtype.kind not in "iuf":
            raise TypeError(f"expected a real number or a real tensor as a parameter, got an "
                            f"array of dtype {value.dtype}")
        return torch.as_tensor(value, dtype=dtype or torch.get_default_dtype())
    if isinstance(value, bool) or not isinstance(value, (numbers.Real, Tensor)):
        raise TypeError(f"expected a real number or a real tensor as a parameter, got {value!r} "
                        f"({type(value).__name__})")
    if isinstance(value, Tensor) and (value.is_complex() or value.dtype == torch.bool):
        raise TypeError(f"expected a real number or a real tensor as a parameter, got a "
                        f"{value.dtype} tensor")
    if isinstance(value, Tensor):
        return value if value.is_floating_point() else value.to(torch.get_default_dtype())
    return torch.as_tensor(float(value), dtype=dtype or torch.get_default_dtype())


def check_positive(name: str, value: Tensor) -> Tensor:
    """Raise a ValueError naming ``value`` unless every entry is finite and > 0."""
    ok = torch.isfinite(value) & (value > 0)
    if not bool(torch.all(ok)):
        raise ValueError(f"{name} must be finite and > 0, got {_show(value, ok)}")
    return value


def check_in_interval(name: str, value: Tensor, low: float, high: float,
                      low_open: bool = True, high_open: bool = False) -> Tensor:
    """Raise a ValueError naming ``value`` unless every entry lies in the stated interval."""
    lo_ok = value > low if low_open else value >= low
    hi_ok = value < high if high_open else value <= high
    if not bool(torch.all(lo_ok & hi_ok)):
        interval = f"{'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"
        raise ValueError(f"{name} must lie in {interval}, got {_show(value, lo_ok & hi_ok)}")
    return value


def class_labels(y: object, shape: tuple[int, ...], classes: int, name: str = "y") -> Tensor:
    """``y`` as torch.long if it is an integer tensor of ``shape`` whose entries lie in
    [0, ``classes`` − 1]; else a TypeError (not an integer tensor) or a ValueError (its shape,
    its range) saying what it got. Labels of any integer dtype are taken, so int32 labels work
    wherever torch wants a long index."""
    if not isinstance(y, Tensor):
        raise TypeError(f"labels {name} must be a torch.Tensor of integers, got {type_name(y)}")
    if y.is_floating_point() or y.is_complex() or y.dtype == torch.bool:
        raise TypeError(f"labels {name} must be integers (torch.long), got dtype {y.dtype}; use "
                        f"{name}.long() for labels stored as floats")
    if tuple(y.shape) != tuple(shape):
        raise ValueError(f"labels {name} of shape {tuple(y.shape)} must have shape "
                         f"{tuple(shape)}, one label per example")
    if y.numel() and (int(y.min()) < 0 or int(y.max()) >= classes):
        raise ValueError(f"labels must lie in [0, {classes - 1}] for {classes} classes, got "
                         f"[{int(y.min())}, {int(y.max())}]")
    return y.long()


def check_finite(name: str, value: Tensor) -> Tensor:
    """Raise a ValueError naming ``value`` unless every entry is finite (not nan, not ±inf)."""
    ok = torch.isfinite(value)
    if not bool(torch.all(ok)):
        raise ValueError(f"{name} must be finite, got {_show(value, ok)}")
    return value


def check_finite_data(name: str, value: Tensor) -> Tensor:
    """Raise a ValueError if the floating-point data ``value`` holds nan or ±inf, saying how
    many and in which example (index along dim 0) the first is; other dtypes pass."""
    if value.is_floating_point():
        bad = ~torch.isfinite(value)
        if bool(bad.any()):
            first = int(bad.reshape(value.shape[0], -1).any(dim=1).nonzero()[0, 0])
            raise ValueError(f"{name} holds {int(bad.sum())} non-finite value(s) (nan or ±inf), "
                             f"the first in example {first}; remove or impute them first")
    return value


def check_at_least(name: str, value: Tensor, low: float) -> Tensor:
    """Raise a ValueError naming ``value`` unless every entry is finite and >= ``low``."""
    ok = torch.isfinite(value) & (value >= low)
    if not bool(torch.all(ok)):
        raise ValueError(f"{name} must be finite and >= {low}, got {_show(value, ok)}")
    return value


def check_less(low_name: str, low: Tensor, high_name: str, high: Tensor) -> None:
    """Raise a ValueError naming both values unless ``low < high`` entrywise."""
    if not bool(torch.all(low < high)):
        raise ValueError(
            f"{low_name} must be < {high_name}, got {low_name}={_show(low)}, "
            f"{high_name}={_show(high)}"
        )


def _show(value: Tensor, ok: Tensor | None = None) -> str:
    """The value as the user typed it: the shortest repr at the tensor's own precision
    (a float32 0.3 shows as 0.3, not 0.30000001192092896). Of more than eight entries, with
    ``ok`` (which entries pass), it names how many fail and the first of them with its index."""
    array = value.detach().cpu()
    if array.dtype == torch.bfloat16:
        array = array.float()
    numbers = array.numpy().reshape(-1)
    shown = [str(v) for v in numbers[:8]]  # numpy prints the shortest repr of its own dtype
    if numbers.size == 1:
        return shown[0]
    if numbers.size > 8 and ok is not None:
        bad = ~ok.detach().cpu().expand(value.shape).reshape(-1)
        if bool(bad.any()):
            first = int(bad.nonzero()[0, 0])
            index = tuple(int(i) for i in np.unravel_index(first, tuple(value.shape)))
            return (f"{int(bad.sum())} of {numbers.size} entries, the first "
                    f"{str(numbers[first])} at index {index}")
    return "[" + ", ".join(shown) + (", ...]" if numbers.size > 8 else "]")


def check_prior_weight(value: object, name: str = "prior_weight") -> float:
    """``value`` as a float if it is a finite number > 0 (the prior's weight β; 1 is the
    posterior); else a TypeError (not a number, or a bool) or a ValueError quoting it under
    ``name``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number, got {value!r}")
    if not 0 < float(value) < math.inf:
        raise ValueError(f"{name} must be a finite number > 0 (1: the posterior), got "
                         f"{value!r}")
    return float(value)


def check_chain_lengths(num_samples: object, warmup: object, num_chains: object) -> None:
    """Raise a ValueError quoting the bad value unless ``num_samples`` and ``num_chains`` are
    ints >= 1 and ``warmup`` an int >= 0 (the lengths of an MCMC run)."""
    for name, value in (("num_samples", num_samples), ("num_chains", num_chains)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}")
    if not isinstance(warmup, int) or isinstance(warmup, bool) or warmup < 0:
        raise ValueError(f"warmup must be a non-negative int, got {warmup!r}")


def regression_data(X: object, y: object, dtype: torch.dtype | None = torch.float64
                    ) -> tuple[Tensor, Tensor]:
    """A linear regression's design ``X`` (N, D) and targets ``y`` (N,) as tensors of ``dtype``
    (None: as given); a ValueError naming the shapes, or saying which holds nan or ±inf."""
    X_t, y_t = torch.as_tensor(X, dtype=dtype), torch.as_tensor(y, dtype=dtype)
    if X_t.ndim != 2 or y_t.shape != (X_t.shape[0],):
        raise ValueError(f"need X of shape (N, D) and y of shape (N,), got "
                         f"{tuple(X_t.shape)} and {tuple(y_t.shape)}")
    check_finite_data("X", X_t)
    check_finite_data("y", y_t)
    return X_t, y_t


def check_float_dtype(dtype: object) -> None:
    """Raise a TypeError unless ``dtype`` is None or a floating-point ``torch.dtype`` (the
    dtype a law's parameters and draws may take)."""
    if dtype is not None and (not isinstance(dtype, torch.dtype) or not dtype.is_floating_point):
        raise TypeError(f"dtype must be a floating-point torch.dtype, got {dtype!r}")


def check_generator(value: object, name: str = "generator") -> torch.Generator | None:
    """``value`` if it is a ``torch.Generator`` or None; else a TypeError quoting it (a seed is
    not a generator: ``torch.Generator().manual_seed(seed)`` makes one)."""
    if value is not None and not isinstance(value, torch.Generator):
        raise TypeError(f"{name} must be a torch.Generator or None, got {value!r}")
    return value


SEED_RANGE = (-(2**63), 2**64 - 1)
"""The seeds ``torch.manual_seed`` and ``torch.Generator.manual_seed`` take, ends included."""


def check_seed(value: object, low: int = SEED_RANGE[0]) -> int:
    """``value`` if it is an int (not a bool) from ``low`` to torch's largest seed (negative
    seeds are torch's too; the experiments, which seed numpy as well, pass ``low=0``); else a
    TypeError (not an int) or a ValueError (out of range) quoting it."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"seed must be an int, got {value!r}")
    high = SEED_RANGE[1]
    if not low <= value <= high:
        shown = "-2**63" if low == SEED_RANGE[0] else str(low)
        raise ValueError(f"seed must be an int in [{shown}, 2**64 - 1], got {value!r}")
    return value


def offset_seed(seed: int, offset: int) -> int:
    """The seed of a run derived from another (an ensemble member's, a split's, a refit's):
    ``seed + offset`` wrapped modulo 2**64, always one of torch's seeds. Torch reads every seed
    modulo 2**64 (``-1`` seeds as ``2**64 - 1`` does), so the result seeds torch as
    ``seed + offset`` itself would wherever that is in torch's range."""
    return (seed + offset) % (SEED_RANGE[1] + 1)


def check_sigma0(sigma0: object, *, finite: bool = False, role: str = "") -> float:
    """``sigma0`` (a prior's weight scale) as a float if it is a number > 0, finite when ``finite``
    (else ``math.inf`` stands for no prior); a TypeError (not a number) or a ValueError quoting it
    otherwise. ``role`` is added to the message, e.g. ``" (the fit's prior scale)"``."""
    if isinstance(sigma0, bool) or not isinstance(sigma0, (int, float)):
        raise TypeError(f"sigma0 must be a number > 0{role}, got {sigma0!r}")
    if finite and not 0 < sigma0 < math.inf:
        raise ValueError(f"sigma0 must be a finite number > 0{role}, got {sigma0!r}")
    if not sigma0 > 0:
        raise ValueError(f"sigma0 must be > 0 (math.inf for no prior){role}, got {sigma0!r}")
    return float(sigma0)


def check_number(name: str, value: object, low: float = 0.0, high: float = math.inf, *,
                 low_open: bool = True, high_open: bool = True) -> float:
    """``value`` as a float if it is a real number (not a bool) between ``low`` and ``high``
    (each end open or closed); else a TypeError (not a number) or a ValueError naming it and the
    accepted range. nan is never accepted, ±inf only at a closed infinite end."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number, got {value!r}")
    v = float(value)
    if not ((v > low if low_open else v >= low) and (v < high if high_open else v <= high)):
        if high == math.inf and high_open:
            accepted = f"a finite number {'>' if low_open else '>='} {low:g}"
        else:
            accepted = (f"a number in {'(' if low_open else '['}{low:g}, {high:g}"
                        f"{')' if high_open else ']'}")
        raise ValueError(f"{name} must be {accepted}, got {value!r}")
    return v
