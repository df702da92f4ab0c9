"""Group values in the layout of each layer's ``group_norms()``, the layout ``prune`` reads.

=============================  ============================  ==================================
layer, structure                groups (shapes)               layout
=============================  ============================  ==================================
NoisyLinear unit / weight       unit (1, in) / weight          (in,) / (out, in)
NoisyEmbedding                  unit (V, 1)                    (V,)
NoisyConv channel               channel (F, C, 1)              (C, F)
NoisyConv filter                filter (F, 1)                  (F,)
NoisyConv channel+filter        channel, filter                (C, F)
NoisyConv weight                weight                         the weight's shape
NoisyLSTM tied / untied         (1, D) / (4, 1, D)             (D,) / (4, D)
Residual layer / unit+layer     layer (1,)                     (1,)
Residual unit                   unit (1, in) or (1, C, 1)      (in,) or (C,)
=============================  ============================  ==================================

Where a layer has two groups, ``combine="product"`` multiplies them (scales compose) and
``"coarse"`` takes the coarser one (the filter's, the block's) broadcast to the layout.
"""

from __future__ import annotations

from torch import Tensor, nn

from dropprior._validation import check_choice

__all__ = ["layer_layout", "COMBINE"]

COMBINE = {"product": "multiply the two groups' values", "coarse": "the coarser group's value"}


def _conv(values: dict[str, Tensor], combine: str) -> Tensor:
    if "weight" in values:
        return values["weight"]
    if "channel" not in values:
        return values["filter"].reshape(-1)
    pairs = values["channel"].squeeze(-1)  # (F, C)
    if "filter" in values:
        filt = values["filter"]  # (F, 1)
        pairs = pairs * filt if combine == "product" else filt.expand_as(pairs)
    return pairs.T


def _residual(values: dict[str, Tensor], combine: str) -> Tensor:
    if "layer" not in values:
        return values["unit"].reshape(-1)
    if "unit" in values and combine == "product":
        return values["layer"] * values["unit"].max()
    return values["layer"]


def layer_layout(model: nn.Module, values: dict[str, Tensor], combine: str = "product"
                 ) -> dict[str, Tensor]:
    """``{layer name: tensor}`` from ``{group name: tensor}`` (group names ``"<layer>:<kind>"``
    from :func:`dropprior.scales.scale_groups`), in the layouts of the module table.

    Residual ``unit+layer`` with ``"product"``: the block scale times its largest unit scale
    (the layout has one entry per block).
    """
    from dropprior.nn import NoisyConvNd, NoisyEmbedding, NoisyLinear, NoisyLSTM, Residual

    check_choice("combine", combine, COMBINE)
    by_layer: dict[str, dict[str, Tensor]] = {}
    for group, value in values.items():
        layer, kind = group.rsplit(":", 1)
        by_layer.setdefault(layer, {})[kind] = value
    modules = dict(model.named_modules())
    modules["<root>"] = model
    out: dict[str, Tensor] = {}
    for layer, vals in by_layer.items():
        m = modules[layer]
        if isinstance(m, NoisyLinear):
            out[layer] = vals["unit"].reshape(-1) if "unit" in vals else vals["weight"]
        elif isinstance(m, NoisyEmbedding):
            out[layer] = vals["unit"].reshape(-1)
        elif isinstance(m, NoisyConvNd):
            out[layer] = _conv(vals, combine)
        elif isinstance(m, NoisyLSTM):
            out[layer] = vals["tied"].reshape(-1) if "tied" in vals else vals["untied"].squeeze(1)
        elif isinstance(m, Residual):
            out[layer] = _residual(vals, combine)
        else:  # pragma: no cover - scale_groups makes groups only for the kinds above
            raise TypeError(f"no layout for {type(m).__name__}")
    return out
