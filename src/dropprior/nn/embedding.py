r"""An embedding with multiplicative noise per word type (ARD over the vocabulary).

An embedding is a linear map of a one-hot input: row v of E is the outgoing weights of input unit
v, so unit-structured noise on that input (paper eq. 8) is one ξ_v per word type, shared by every
coordinate of its row, i.e. e_v ~ N(0, σ0² ξ_v² I). A token's output is ξ_v · E_v, and the
granularity says which occurrences of a word type share one ξ:

* ``"sequence"``: one draw per word type and sequence, tied over its repeats in the sequence
  (Gal & Ghahramani's embedding dropout);
* ``"batch"``: one draw per word type for the whole call (AWD-LSTM's ``embedded_dropout``);
* ``"example"``: one draw per token occurrence (word dropout without tying).

Only the (sequence, word) pairs that occur are drawn: ξ is drawn once per distinct key of the
call and gathered back to the tokens, which is the same law as a draw for the whole vocabulary
followed by a lookup.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dropprior._validation import check_bool, check_choice, check_generator, check_int
from dropprior.functional import GRANULARITIES, draw_generator, draw_noise, noise_mean
from dropprior.nn._module import NoisyModule, check_law
from dropprior.noise import NoiseLaw

__all__ = ["NoisyEmbedding"]


class NoisyEmbedding(NoisyModule):
    r"""``nn.Embedding`` with one noise variable ξ per word type (module docstring).

    .. math:: y_{t,n} = \xi_{k(t,n)} \, E_{x_{t,n}}, \qquad \xi_k \sim p(\xi) \text{ i.i.d.},

    where k(t, n) is the token's word type together with its sequence (``"sequence"``), the word
    type alone (``"batch"``) or the token itself (``"example"``). In eval mode ξ is E[ξ].

    Args:
        num_embeddings, embedding_dim, padding_idx: as ``nn.Embedding`` (the padding row gets
            no gradient).
        noise: the law of ξ.
        granularity: ``"sequence"`` (default), ``"batch"`` or ``"example"``.
        batch_first: for ``"sequence"``, whether the input is (N, T) instead of (T, N).
        generator: the generator of the draws.

    Attributes:
        structure: ``"unit"``: the one-hot input unit, i.e. the word type.

    Shape:
        input: integer tokens (T, N), or (N, T) with ``batch_first``, or (T,) for one sequence;
        with ``"batch"`` or ``"example"`` any shape. Output: input's shape + (embedding_dim,).

    Example:
        >>> from dropprior.noise import Bernoulli
        >>> embed = NoisyEmbedding(100, 8, Bernoulli(0.9, inverted=True))
        >>> embed(torch.randint(0, 100, (35, 4))).shape
        torch.Size([35, 4, 8])
    """

    structure = "unit"

    def __init__(self, num_embeddings: int, embedding_dim: int, noise: NoiseLaw,
                 granularity: str = "sequence", padding_idx: int | None = None,
                 batch_first: bool = False, generator: torch.Generator | None = None,
                 device: torch.device | str | None = None,
                 dtype: torch.dtype | None = None) -> None:
        super().__init__()
        self.num_embeddings = check_int("num_embeddings", num_embeddings, 1)
        self.embedding_dim = check_int("embedding_dim", embedding_dim, 1)
        self.noise = check_law("noise", noise)  # type: ignore[assignment]
        self.granularity = check_choice("granularity", granularity, GRANULARITIES)
        self.batch_first = check_bool("batch_first", batch_first)
        self.generator = check_generator(generator)
        if padding_idx is not None:
            if isinstance(padding_idx, bool) or not isinstance(padding_idx, int) or \
                    not -num_embeddings <= padding_idx < num_embeddings:
                raise ValueError(f"padding_idx must be None or an int in [{-num_embeddings}, "
                                 f"{num_embeddings - 1}], got {padding_idx!r}")
            padding_idx %= num_embeddings
        self.padding_idx = padding_idx
        self.weight = nn.Parameter(torch.empty(num_embeddings, embedding_dim, device=device,
                                               dtype=dtype))
        nn.init.normal_(self.weight)  # nn.Embedding's initialisation
        if padding_idx is not None:
            with torch.no_grad():
                self.weight[padding_idx].zero_()

    def forward(self, tokens: Tensor) -> Tensor:
        self._check_tokens(tokens)
        y = F.embedding(tokens, self.weight, self.padding_idx)
        if not self.sampling:
            return y * noise_mean(self.noise, y.dtype, y.device)
        keys, count = self._keys(tokens)
        compiling = torch.compiler.is_compiling()
        gen = self.generator if compiling else draw_generator(tokens.device, self.generator)
        if compiling or self.granularity == "example":
            # a draw for every possible key, gathered (every key occurs under "example"; under
            # torch.compile the shapes stay static)
            xi = draw_noise(self.noise, (count,), y.device, y.dtype, gen)
            return y * xi[keys].unsqueeze(-1)
        unique, inverse = torch.unique(keys, return_inverse=True)
        xi = draw_noise(self.noise, (unique.numel(),), y.device, y.dtype, gen)
        return y * xi[inverse].unsqueeze(-1)

    def _keys(self, tokens: Tensor) -> tuple[Tensor, int]:
        """The id of the ξ each token takes (module docstring), of the tokens' shape, and the
        number of possible ids."""
        if self.granularity == "example":
            count = tokens.numel()
            return torch.arange(count, device=tokens.device).view(tokens.shape), count
        if self.granularity == "batch" or tokens.dim() == 1:
            return tokens, self.num_embeddings
        # (T, N) or (N, T): sequence n's tokens get keys n·V + token
        n = tokens.shape[0 if self.batch_first else 1]
        seq = torch.arange(n, device=tokens.device)
        seq = seq.unsqueeze(1) if self.batch_first else seq.unsqueeze(0)
        return seq * self.num_embeddings + tokens, n * self.num_embeddings

    def _check_tokens(self, tokens: Tensor) -> None:
        if not isinstance(tokens, Tensor) or tokens.dtype not in (torch.long, torch.int32):
            got = tokens.dtype if isinstance(tokens, Tensor) else type(tokens).__name__
            raise TypeError(f"NoisyEmbedding takes integer tokens (torch.long or torch.int32), "
                            f"got {got}")
        if self.granularity == "sequence" and tokens.dim() not in (1, 2):
            raise ValueError(f"NoisyEmbedding with granularity='sequence' takes tokens of shape "
                             f"(T, N), (N, T) with batch_first, or (T,), got "
                             f"{tuple(tokens.shape)}; granularity='batch' or 'example' takes any "
                             "shape")
        self._check_materialised(tokens, self.weight)
        if tokens.numel() and not torch.compiler.is_compiling():
            low, high = (int(v) for v in torch.aminmax(tokens))  # one pass, one sync
            if low < 0 or high >= self.num_embeddings:
                bad = low if low < 0 else high
                raise ValueError(f"NoisyEmbedding got token {bad}, outside [0, "
                                 f"{self.num_embeddings - 1}] (num_embeddings="
                                 f"{self.num_embeddings})")

    def group_norms(self) -> Tensor:
        """‖E_v‖ per word type v, shape (num_embeddings,)."""
        return self.weight.detach().norm(dim=1)

    def extra_repr(self) -> str:
        pad = "" if self.padding_idx is None else f", padding_idx={self.padding_idx}"
        return f"{self.num_embeddings}, {self.embedding_dim}{pad}, " + super().extra_repr() + \
            (", batch_first=True" if self.batch_first else "")
