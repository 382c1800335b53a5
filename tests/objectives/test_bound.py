"""discrete_bound: exact enumeration references on tiny models, streaming log-mean-exp, chunking.

Statistical checks use fixed seeds; each tolerance is a stated number of standard errors (4 or more),
computed from the exact variance where enumeration gives it, so a correct implementation fails with
probability below about 1e-4 per check, and the fixed seeds make the outcome deterministic.
"""

from __future__ import annotations

import math

import pytest
import torch

from concretelab.models import build_model
from concretelab.objectives import StreamingLogMeanExp, default_chunk_size, discrete_bound

from ._exact import all_states, exact_log_marginal, exact_terms


def _tiny(spec: str, categories: int = 2, seed: int = 0, scale: float = 0.5):
    torch.manual_seed(seed)
    model = build_model(spec, categories=categories).double()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(scale * torch.randn_like(p))
    return model


def _data(batch: int, dim: int, seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(batch, dim, generator=g, dtype=torch.float64) < 0.5).double()


@pytest.mark.parametrize(
    ("spec", "categories", "dim"),
    [("2H-3H-5V", 2, 5), ("4H-6V", 4, 6), ("3V-3H-2H-3V", 2, 6), ("2H~3H~5V", 2, 5), ("4H~4H-6V", 4, 6)],
    ids=["binary two-layer linear", "4-ary one-layer", "structured", "binary two-layer nonlinear", "4-ary two-layer"],
)
def test_large_k_approaches_exact_log_marginal(spec, categories, dim, generator):
    model = _tiny(spec, categories)
    x = _data(3, dim)
    log_joint, log_q = exact_terms(model, x)
    log_p = torch.logsumexp(log_joint, 0)
    q = log_q.exp()
    assert torch.allclose(q.sum(0), torch.ones(3, dtype=torch.float64))
    # relative variance of the weight w = p(x, h) / q(h | x) under q, exactly
    rho = torch.logsumexp(log_q + 2 * (log_joint - log_q), 0).sub(2 * log_p).exp() - 1
    elbo = (q * (log_joint - log_q)).sum(0)
    k = 20_000
    lk = discrete_bound(model, x, k, generator=generator(3))
    # delta method: L_k - log p(x) ~ N(-rho / 2k, rho / k); 5 sd plus the bias term
    tol = 5 * (rho / k).sqrt() + rho / k + 1e-9
    assert ((lk - log_p).abs() < tol).all(), (lk, log_p, tol)
    if spec != "3V-3H-2H-3V":  # the structured model's proposal is the prior: there is still a gap
        assert ((log_p - elbo) > 5 * tol).all()  # the check separates L_k from the ELBO


def test_average_is_below_log_marginal_and_increases_with_k(generator):
    model = _tiny("2H-3H-5V")
    x1 = _data(1, 5)
    log_joint, log_q = exact_terms(model, x1)
    log_p = float(torch.logsumexp(log_joint, 0))
    elbo = float((log_q.exp() * (log_joint - log_q)).sum())
    x = x1.expand(4000, 5)
    l1 = discrete_bound(model, x, 1, generator=generator(4))
    l10 = discrete_bound(model, x, 10, generator=generator(5))
    se1, se10 = float(l1.std()) / math.sqrt(4000), float(l10.std()) / math.sqrt(4000)
    assert abs(float(l1.mean()) - elbo) < 4 * se1  # E[L_1] is the exact ELBO
    assert float(l10.mean()) < log_p + 4 * se10  # E[L_k] <= log p(x)
    assert float(l10.mean()) - float(l1.mean()) > 4 * math.hypot(se1, se10)  # E[L_10] > E[L_1]


def test_chunked_and_unchunked_agree(generator):
    model = _tiny("2H-3H-5V")
    x = _data(1, 5).expand(3000, 5)
    # same chunking and seed: identical; one chunk of k and the default (k fits in one chunk): identical
    a = discrete_bound(model, x, 8, chunk_size=3, generator=generator(7))
    b = discrete_bound(model, x, 8, chunk_size=3, generator=generator(7))
    assert torch.equal(a, b)
    assert default_chunk_size(3000, 5, 8) == 8
    c = discrete_bound(model, x, 8, chunk_size=8, generator=generator(9))
    d = discrete_bound(model, x, 8, generator=generator(9))
    assert torch.equal(c, d)
    # different chunk sizes: the same distribution of L_8 (two-sample z-test at 4.5 sd)
    se = math.hypot(float(a.std()), float(c.std())) / math.sqrt(3000)
    assert abs(float(a.mean()) - float(c.mean())) < 4.5 * se


class _TableModel(torch.nn.Module):
    """A user model with the bare protocol: its log-weights come from a fixed table, in order."""

    def __init__(self, table: torch.Tensor) -> None:
        super().__init__()
        self.table = table  # (k, batch)
        self.position = 0

    def sample_posterior(self, x, num_samples, *, generator=None):
        rows = torch.arange(self.position, self.position + num_samples)
        self.position += num_samples
        return [rows], torch.zeros(num_samples, x.shape[0], dtype=torch.float64)

    def log_joint(self, x, h):
        return self.table[h[0]]


@pytest.mark.parametrize("chunk_size", [1, 7, 100, None])
def test_streaming_matches_logsumexp_of_all_weights(chunk_size):
    g = torch.Generator().manual_seed(0)
    k = 100
    table = torch.randn(k, 4, generator=g, dtype=torch.float64) * 300  # weights spread over +-1000 nats
    table[:50, 1] = -math.inf  # the first 50 weights of example 1 are impossible
    table[:, 2] = -math.inf  # every weight of example 2 is impossible
    table[37, 3] = 5000.0  # one huge weight
    x = torch.zeros(4, 3, dtype=torch.float64)
    got = discrete_bound(_TableModel(table), x, k, chunk_size=chunk_size)
    want = torch.logsumexp(table, 0) - math.log(k)
    assert got[2] == -math.inf
    assert torch.allclose(got[[0, 1, 3]], want[[0, 1, 3]], rtol=1e-12, atol=1e-9)


def test_streaming_log_mean_exp_direct():
    stream = StreamingLogMeanExp()
    w = torch.tensor([[1e4, -1e4], [1e4 + 1, -1e4], [-math.inf, -1e4 + 2]], dtype=torch.float64)
    for row in w:
        stream.update(row[None])
    want = torch.logsumexp(w, 0) - math.log(3)
    assert torch.allclose(stream.value(), want, rtol=1e-14)
    with pytest.raises(ValueError, match="update"):
        StreamingLogMeanExp().value()


def test_bad_arguments():
    model = _tiny("2H-3H-5V")
    x = _data(2, 5)
    with pytest.raises(ValueError, match="k must"):
        discrete_bound(model, x, 0)
    with pytest.raises(ValueError, match="chunk_size"):
        discrete_bound(model, x, 5, chunk_size=0)
    with pytest.raises(ValueError, match="x must"):
        discrete_bound(model, x[0], 5)
    with pytest.raises(ValueError, match=r"\(batch, 5\)"):
        discrete_bound(model, _data(2, 6), 5)


def test_default_chunk_bounds_memory():
    assert default_chunk_size(100, 784, 50_000) * 100 * 784 <= 2**23
    assert default_chunk_size(100_000, 784, 50_000) == 1
    assert default_chunk_size(1, 1, 10) == 10


def test_structured_weights_are_the_lower_likelihood():
    model = _tiny("3V-3H-2H-3V")
    x = _data(2, 6)
    h, log_q = model.sample_posterior(x, 4)
    log_w = model.log_joint(x, h) - log_q
    assert torch.allclose(log_w, model.log_likelihood(x, h), atol=1e-12)
    # over every latent state: the proposal is a normalised distribution, and the marginal computed through
    # log_joint (the prior's logits) equals sum_h q(h | u) p(y | h) computed through the proposal's logits
    states = all_states(model, x.shape[0])
    _, log_q = exact_terms(model, x)
    torch.testing.assert_close(torch.logsumexp(log_q, 0), torch.zeros(2, dtype=log_q.dtype), rtol=0, atol=1e-12)
    via_proposal = torch.logsumexp(log_q + model.log_likelihood(x, states), 0)
    torch.testing.assert_close(exact_log_marginal(model, x), via_proposal, rtol=0, atol=1e-10)


def test_per_image_bound_is_discrete_bound_batch_by_batch():
    """discrete_bound_per_image: the same numbers as discrete_bound (tested against enumeration above) batch by
    batch with one generator, progress for every image, the module's mode restored."""
    from concretelab.objectives import discrete_bound_per_image

    model = _tiny("3H-5V")
    model.train()
    images = (_data(7, 5) > 0).to(torch.uint8)  # uint8 images, as the datasets hold them
    seen: list[int] = []
    per_image = discrete_bound_per_image(model, images, 64, batch_size=3, generator=torch.Generator().manual_seed(4),
                                         progress=seen.append)
    assert per_image.dtype == torch.float64 and per_image.shape == (7,) and seen == [3, 3, 1] and model.training
    g = torch.Generator().manual_seed(4)
    by_batch = torch.cat([discrete_bound(model, images[i : i + 3].double(), 64, generator=g) for i in (0, 3, 6)])
    torch.testing.assert_close(per_image, by_batch, rtol=0, atol=0)
    with pytest.raises(ValueError, match=r"images must be an \(N, D\) tensor"):
        discrete_bound_per_image(model, images[0], 5)
    with pytest.raises(ValueError, match="batch_size must be an integer >= 1"):
        discrete_bound_per_image(model, images, 5, batch_size=0)
