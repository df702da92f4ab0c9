"""Likelihoods against torch's own losses and distributions; bad labels get clear errors."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch.testing import assert_close

from dropprior.likelihoods import Bernoulli, Categorical, Gaussian


def test_gaussian_matches_torch_normal() -> None:
    g = torch.Generator().manual_seed(0)
    out, y = torch.randn(7, 3, generator=g, dtype=torch.float64), torch.randn(7, 3, generator=g,
                                                                              dtype=torch.float64)
    lik = Gaussian(noise_std=0.7).double()
    ref = torch.distributions.Normal(out, 0.7).log_prob(y).sum(dim=1)
    assert_close(lik.log_prob(out, y), ref)
    assert lik.log_prob(out[:, 0], y[:, 0]).shape == (7,)


def test_gaussian_learned_std_is_a_parameter_and_heteroscedastic_split() -> None:
    lik = Gaussian(noise_std=2.0, learn=True)
    params = list(lik.parameters())
    assert len(params) == 1
    assert_close(lik.noise_std, torch.tensor(2.0))
    het = Gaussian(noise_std=None)
    out = torch.tensor([[0.5, 0.3], [-1.0, -2.0]], dtype=torch.float64)
    y = torch.tensor([1.0, 0.0], dtype=torch.float64)
    std = F.softplus(out[:, 1])
    ref = torch.distributions.Normal(out[:, 0], std).log_prob(y)
    assert_close(het.log_prob(out, y), ref)


def test_categorical_matches_cross_entropy() -> None:
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(9, 4, generator=g)
    y = torch.randint(0, 4, (9,), generator=g)
    assert_close(Categorical().log_prob(logits, y), -F.cross_entropy(logits, y, reduction="none"))
    seq_logits = torch.randn(3, 5, 4, generator=g)
    seq_y = torch.randint(0, 4, (3, 5), generator=g)
    ref = -F.cross_entropy(seq_logits.transpose(1, 2), seq_y, reduction="none").sum(dim=1)
    assert_close(Categorical().log_prob(seq_logits, seq_y), ref)


def test_bernoulli_matches_bce() -> None:
    g = torch.Generator().manual_seed(2)
    logits = 5 * torch.randn(11, generator=g)
    y = (torch.rand(11, generator=g) < 0.5).float()
    ref = -F.binary_cross_entropy_with_logits(logits, y, reduction="none")
    assert_close(Bernoulli().log_prob(logits, y), ref)


def test_bad_labels_raise_clear_errors() -> None:
    logits = torch.zeros(4, 3)
    with pytest.raises(TypeError, match=r"labels y must be integers \(torch.long\), got dtype"):
        Categorical().log_prob(logits, torch.zeros(4))
    with pytest.raises(ValueError, match=r"y has shape \(4, 1\)"):
        Categorical().log_prob(logits, torch.zeros(4, 1, dtype=torch.long))
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 2\]"):
        Categorical().log_prob(logits, torch.tensor([0, 1, 2, 3]))
    with pytest.raises(ValueError, match="must match"):
        Gaussian(1.0).log_prob(torch.zeros(4, 1), torch.zeros(4))
    with pytest.raises(TypeError, match="floating targets"):
        Gaussian(1.0).log_prob(torch.zeros(4), torch.zeros(4, dtype=torch.long))
    with pytest.raises(ValueError, match=r"0 or 1, got 2.0 \(1 such value\(s\)\)"):
        Bernoulli().log_prob(torch.zeros(3), torch.tensor([0.0, 1.0, 2.0]))
    with pytest.raises(ValueError, match=r"C >= 2 classes, got shape \(4, 1\)"):
        Categorical().log_prob(torch.zeros(4, 1), torch.zeros(4, dtype=torch.long))
    with pytest.raises(ValueError, match="noise_std must be finite and > 0"):
        Gaussian(noise_std=-1.0)
    with pytest.raises(ValueError, match="learn=True needs a float"):
        Gaussian(noise_std=None, learn=True)
