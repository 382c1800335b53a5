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
    equation numbers could not be checked here (its full text was not available); the formula was checked against
    the authors' released code (ML-KULeuven/catlog, synthetic/jointcategorical.py, which also uses one sample for
    every variable) and the estimator against exact enumeration in the tests.
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

from concretelab.estimators._base import Objective, SingleSampleEstimator, evaluate, exact_sample, mean_param

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
    off_sample_points = True  # f(b), then f at the changed points b^{i←c}

    def evaluations(self, logits: Tensor) -> int:
        n, k = _variables(logits, self.family)
        return 1 + n * (k - 1)

    def per_sample(self, f: Objective, logits: Tensor, num: int, generator: torch.Generator | None) -> Tensor:
        k = 2 if self.family == "bernoulli" else logits.shape[-1]
        b = exact_sample(logits, num, self.family, generator)  # (num, *shape)
        with torch.no_grad():
            f_b = evaluate(f, b).detach().to(logits.dtype)  # (num[, *batch])
        batch = f_b.shape[1:]  # () for one f per row; a per-example f's batch axes
        # each example's variables: (num, E, n) category indices, E examples (1 for one f per row), n variables each
        index = (b if self.family == "bernoulli" else b.argmax(-1)).long().reshape(num, batch.numel(), -1)
        n = index.shape[-1]
        table = self._changed_values(f, b, index, f_b.reshape(num, -1), k, logits)  # (num, E, n, K)
        probs = mean_param(logits, self.family)
        probs = torch.stack([1 - probs, probs], -1) if self.family == "bernoulli" else probs
        probs = probs.reshape(batch.numel(), n, k)
        grad = probs * table - probs * (probs * table).sum(-1, keepdim=True)  # (num, E, n, K): Σ_c F_c ∇_θ p(c)
        if self.family == "bernoulli":
            return grad[..., 1].reshape(num, *logits.shape)  # the logit is the category-1 coordinate of (0, θ)
        return grad.reshape(num, *logits.shape)

    def _changed_values(self, f: Objective, b: Tensor, index: Tensor, f_b: Tensor, k: int, logits: Tensor) -> Tensor:
        """F[s, e, i, c] = f_e(b^{i←c}) for sample s, example e, variable i and category c (F = f(b) at c = b_i).

        Variable i of *every* example moves at once, to category (b_i + j) mod K for j = 1..K−1, which differs
        from each example's own b_i; so a per-example f gives every example's changed values in n (K − 1)
        evaluations, and a per-row f (one example) in the same count as changing one variable at a time."""
        num, examples, n = index.shape
        table = f_b.reshape(num, examples, 1, 1).expand(num, examples, n, k).clone()
        step = max(1, CHUNK_ELEMENTS // (num * (k - 1) * max(1, b[0].numel())))  # variables per chunk
        offsets = torch.arange(1, k, device=b.device)  # j
        with torch.no_grad():
            for start in range(0, n, step):
                variables = torch.arange(start, min(n, start + step), device=b.device)
                v = variables.shape[0]
                moved = index.unsqueeze(1).unsqueeze(1).expand(num, v, k - 1, examples, n).clone()
                target = (index[:, :, variables].permute(0, 2, 1).unsqueeze(2) + offsets.reshape(1, 1, -1, 1)) % k
                moved[:, torch.arange(v), :, :, variables] = target.permute(1, 0, 2, 3)  # (v, num, K−1, E)
                points = self._points(moved, k, b, logits)  # (num · v · (K−1), *shape)
                values = evaluate(f, points).detach().to(logits.dtype).reshape(num, v, k - 1, examples)
                rows = torch.arange(num, device=b.device).reshape(num, 1, 1, 1)
                cols = torch.arange(examples, device=b.device).reshape(1, 1, 1, examples)
                table[rows, cols, variables.reshape(1, v, 1, 1), target] = values
        return table

    def _points(self, moved: Tensor, k: int, b: Tensor, logits: Tensor) -> Tensor:
        """Category indices (num, v, K−1, E, n) as points of the family, (num · v · (K−1), *logits.shape)."""
        flat = moved.reshape(-1, *moved.shape[-2:])
        if self.family == "bernoulli":
            return flat.to(b.dtype).reshape(-1, *logits.shape)
        return torch.nn.functional.one_hot(flat, k).to(b.dtype).reshape(-1, *logits.shape)
