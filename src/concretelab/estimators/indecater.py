"""IndeCateR: the CatLog-derivative trick, Rao-Blackwellised over each variable's categories (De Smet et al. 2023).

Approximates
    ∂/∂θ E_{b ~ p_θ}[f(b)] for n independent categorical variables (or Bernoulli ones, K = 2 categories).
With
    one sample b ~ p_θ and, for every variable i and category c, the point b^{i←c} (b with variable i set to c,
    the others kept):
        ĝ_i = Σ_c f(b^{i←c}) ∇_{θ_i} p_i(c) = π_i ⊙ F_i − π_i ⟨π_i, F_i⟩,   F_i[c] = f(b^{i←c}), π_i = softmax(θ_i),
    the sum over variable i's categories done exactly given the others (∇_θ E[f] = Σ_i E_{b_{−i}}[Σ_c ∇p_i(c)
    f(b_{−i}, c)]: De Smet, Sansone & Zuidberg Dos Martires 2023, the CatLog-derivative trick and the IndeCateR
    estimator built on it). For a Bernoulli variable this is ĝ_i = σ'(θ_i) (f(b^{i←1}) − f(b^{i←0})). No baseline
    is needed: Σ_c ∇p_i(c) = 0 removes any constant. ``num_samples`` samples average their estimates. The paper's
    equation numbers could not be checked here (its text was not available); the estimator is checked against exact
    enumeration in the tests.
Requires
    f at exact points only (any f). Its cost grows with the problem: per sample f(b) once and f(b^{i←c}) for each of
    the n (K − 1) changes of one variable, so 1 + n (K − 1) evaluations (``evaluations(logits)``; the class
    attribute ``evaluations_per_sample`` is None). b^{i←b_i} = b is evaluated once, not n times. The points are
    built and evaluated in chunks of at most ``CHUNK_ELEMENTS`` entries. Both families; no options.

References
    [1] De Smet, Sansone & Zuidberg Dos Martires, "Differentiable Sampling of Categorical Distributions Using the
        CatLog-Derivative Trick", NeurIPS 2023.
"""

from __future__ import annotations

import torch
from torch import Tensor

from concretelab.estimators._base import Objective, SingleSampleEstimator, evaluate, exact_sample

__all__ = ["CHUNK_ELEMENTS", "IndeCateR"]

CHUNK_ELEMENTS = 2**24  # entries of the changed points built and passed to f at once (bounds memory)


def _variables(logits: Tensor, family: str) -> tuple[int, int]:
    """(n variables, K categories each)."""
    if family == "bernoulli":
        return logits.numel(), 2
    return logits.numel() // logits.shape[-1], logits.shape[-1]


class IndeCateR(SingleSampleEstimator):
    """IndeCateR (unbiased; both families; 1 + n (K − 1) f-evaluations per sample; no options)."""

    name = "indecater"
    unbiased = True
    evaluations_per_sample = None  # 1 + n (K − 1): see evaluations(logits)

    def evaluations(self, logits: Tensor) -> int:
        n, k = _variables(logits, self.family)
        return 1 + n * (k - 1)

    def per_sample(self, f: Objective, logits: Tensor, num: int, generator: torch.Generator | None) -> Tensor:
        n, k = _variables(logits, self.family)
        b = exact_sample(logits, num, self.family, generator)  # (num, *shape)
        # one-hot view (num, n, K) of the sample: for Bernoulli variables the categories are (0, 1)
        onehot = torch.stack([1 - b, b], dim=-1).reshape(num, n, 2) if self.family == "bernoulli" else b.reshape(
            num, n, k)
        with torch.no_grad():
            f_b = evaluate(f, b).detach().to(logits.dtype)  # (num,)
            if f_b.dim() > 1:
                raise ValueError(f"indecater needs one value of f per row, shape ({num},), got a per-example f with "
                                 f"values of shape {tuple(f_b.shape)}: sum f over the examples")
            table = f_b.reshape(num, 1, 1).expand(num, n, k).clone()  # F[s, i, c] = f(b^{i←c}); f(b) where c = b_i
            row = max(1, logits.numel())
            step = max(1, CHUNK_ELEMENTS // (num * k * row))  # variables per chunk
            eye = torch.eye(k, dtype=logits.dtype, device=logits.device)
            for start in range(0, n, step):
                stop = min(n, start + step)
                changed = onehot.unsqueeze(1).unsqueeze(1).expand(num, stop - start, k, n, k).clone()
                local = torch.arange(stop - start, device=logits.device)
                changed[:, local, :, start + local, :] = eye  # changed[s, v, c, start + v, :] = e_c
                keep = onehot[:, start:stop, :] == 0  # (num, v, K): c differs from b_i
                points = changed[keep]  # (rows, n, K)
                if self.family == "bernoulli":
                    points = points[..., 1].reshape(-1, *logits.shape)
                else:
                    points = points.reshape(-1, *logits.shape)
                values = evaluate(f, points).detach().to(logits.dtype)
                block = table[:, start:stop, :]
                block[keep] = values
        probs = torch.softmax(torch.stack([torch.zeros_like(logits), logits], -1), -1).reshape(n, 2) \
            if self.family == "bernoulli" else torch.softmax(logits, dim=-1).reshape(n, k)
        grad = probs * table - probs * (probs * table).sum(-1, keepdim=True)  # (num, n, K): Σ_c F_c ∇_θ p(c)
        if self.family == "bernoulli":
            return grad[..., 1].reshape(num, *logits.shape)  # the logit is the category-1 coordinate of (0, θ)
        return grad.reshape(num, *logits.shape)
