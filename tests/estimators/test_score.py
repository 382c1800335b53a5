"""Score-function building blocks against torch.distributions and brute-force loops."""

from __future__ import annotations

import math

import pytest
import torch

from concretelab.estimators.score import (
    RunningMoments,
    bernoulli_score,
    categorical_score,
    leave_one_out_baseline,
    surrogate_loss,
    vimco_signals,
)
from concretelab.functional import bernoulli_log_prob, categorical_log_prob


def test_log_probs_match_torch_and_stay_finite():
    logits = torch.tensor([-50.0, -3.0, 0.0, 2.0, 50.0], dtype=torch.float64)
    b = torch.tensor([1.0, 0.0, 1.0, 1.0, 0.0], dtype=torch.float64)
    expected = torch.distributions.Bernoulli(logits=logits).log_prob(b)
    torch.testing.assert_close(bernoulli_log_prob(logits, b), expected)
    cat_logits = torch.tensor([[0.2, -1.0, 3.0], [50.0, -50.0, 0.0]], dtype=torch.float64)
    one_hot = torch.tensor([[0.0, 1.0, 0.0], [0.0, 1.0, 0.0]], dtype=torch.float64)
    expected = torch.distributions.Categorical(logits=cat_logits).log_prob(one_hot.argmax(-1))
    torch.testing.assert_close(categorical_log_prob(cat_logits, one_hot), expected)


def test_scores_are_gradients_of_the_log_probs():
    logits = torch.tensor([[0.2, -1.0, 3.0]], dtype=torch.float64, requires_grad=True)
    b = torch.tensor([[1.0, 0.0, 1.0]], dtype=torch.float64)
    (g,) = torch.autograd.grad(bernoulli_log_prob(logits, b).sum(), logits)
    torch.testing.assert_close(g, bernoulli_score(b, logits.detach()))
    one_hot = torch.tensor([[0.0, 0.0, 1.0]], dtype=torch.float64)
    (g,) = torch.autograd.grad(categorical_log_prob(logits, one_hot).sum(), logits)
    torch.testing.assert_close(g, categorical_score(one_hot, logits.detach()))


def test_surrogate_loss_gradient_is_signal_minus_baseline_times_score():
    logits = torch.tensor([0.5, -0.5], dtype=torch.float64, requires_grad=True)
    b = torch.tensor([[1.0, 0.0], [0.0, 0.0]], dtype=torch.float64)  # (samples, units)
    signal = torch.tensor([[3.0], [1.0]], dtype=torch.float64, requires_grad=True)
    baseline = torch.tensor(0.5, dtype=torch.float64, requires_grad=True)
    loss = surrogate_loss(bernoulli_log_prob(logits, b), signal, baseline).sum()
    g_logits, g_signal, g_baseline = torch.autograd.grad(loss, (logits, signal, baseline), allow_unused=True)
    expected = ((signal.detach() - 0.5) * bernoulli_score(b, logits.detach())).sum(0)
    torch.testing.assert_close(g_logits, expected)
    assert g_signal is None and g_baseline is None


def test_leave_one_out_baseline():
    values = torch.tensor([[1.0, 2.0, 6.0], [0.0, 3.0, 3.0]])
    expected = torch.tensor([[4.0, 3.5, 1.5], [3.0, 1.5, 1.5]])
    torch.testing.assert_close(leave_one_out_baseline(values, dim=1), expected)
    with pytest.raises(ValueError, match="at least 2"):
        leave_one_out_baseline(torch.ones(1, 3), dim=0)


def _vimco_loop(f: list[float]) -> tuple[list[float], float]:
    k = len(f)
    bound = math.log(sum(math.exp(x) for x in f) / k)
    signals = []
    for i in range(k):
        others = [f[j] for j in range(k) if j != i]
        replaced = [*others, sum(others) / (k - 1)]
        signals.append(bound - math.log(sum(math.exp(x) for x in replaced) / k))
    return signals, bound


@pytest.mark.parametrize("dim", [0, 1])
def test_vimco_signals_match_a_loop_and_survive_large_values(dim):
    rows = [[0.3, -1.2, 2.0, 0.5], [-800.0, -805.0, -790.0, -801.0]]  # exp of the second underflows
    f = torch.tensor(rows, dtype=torch.float64)
    f = f if dim == 1 else f.T
    signals, bound = vimco_signals(f, dim=dim)
    for r, row in enumerate(rows):
        exp_signals, exp_bound = _vimco_loop(row) if r == 0 else (None, None)
        got = signals[r] if dim == 1 else signals[:, r]
        assert torch.isfinite(got).all()
        if exp_signals is not None:
            torch.testing.assert_close(got, torch.tensor(exp_signals, dtype=torch.float64))
            torch.testing.assert_close(bound[r], torch.tensor(exp_bound, dtype=torch.float64))
    # shift invariance: adding a constant to every f leaves the signals unchanged
    shifted, _ = vimco_signals(f + 1000.0, dim=dim)
    torch.testing.assert_close(shifted, signals)


def test_running_moments():
    m = RunningMoments(decay=0.5)
    m.update(torch.tensor([1.0, 3.0]))
    assert float(m.mean) == 2.0 and float(m.var) == 1.0
    m.update(torch.tensor([5.0, 5.0]))
    assert float(m.mean) == 3.5 and float(m.var) == 0.5
    assert float(m.scale()) == 1.0
    torch.testing.assert_close(m.normalise(torch.tensor([4.5])), torch.tensor([1.0]))
    with pytest.raises(ValueError, match="decay"):
        RunningMoments(decay=1.0)
    with pytest.raises(ValueError, match="groups"):
        RunningMoments(groups=0)
    # one pair per group (layer): rows are folded separately, and the state travels with state_dict
    layered = RunningMoments(decay=0.5, groups=2)
    layered.update(torch.tensor([[1.0, 3.0, 1.0, 3.0], [10.0, 10.0, 10.0, 10.0]]))
    layered.update(torch.tensor([[5.0, 5.0, 5.0, 5.0], [0.0, 20.0, 0.0, 20.0]]))
    assert layered.mean.tolist() == [3.5, 10.0] and layered.var.tolist() == [0.5, 50.0]
    assert layered.scale().tolist() == pytest.approx([1.0, 50.0**0.5], rel=1e-7)
    copy = RunningMoments(decay=0.5, groups=2)
    copy.load_state_dict(layered.state_dict())
    assert torch.equal(copy.var, layered.var) and int(copy.count) == 2


def test_log_prob_names_are_not_ambiguous():
    """Issue 27: ``estimators.score.bernoulli_log_prob(b, logits)`` took the arguments of
    ``functional.bernoulli_log_prob(logits, value)`` swapped, and ``objectives.bernoulli_log_prob`` summed over the
    units under the same name: mixing them up was silently wrong. Now every public ``*_log_prob*`` of the package
    takes ``(logits, value)``, one name means one function, and a name that sums says so."""
    import inspect

    import concretelab.estimators
    import concretelab.estimators.score
    import concretelab.functional
    import concretelab.objectives
    import concretelab.objectives.terms

    score = concretelab.estimators.score
    for name in ("bernoulli_log_prob", "categorical_log_prob"):
        assert name not in score.__all__ and not hasattr(score, name)
        assert name not in concretelab.objectives.__all__ and not hasattr(concretelab.objectives, name)
    modules = (concretelab.functional, concretelab.objectives, concretelab.objectives.terms, concretelab.estimators,
               score)
    g = torch.Generator().manual_seed(0)
    logits = {"bernoulli": torch.randn(4, 5, generator=g, dtype=torch.float64),
              "categorical": torch.randn(4, 5, 3, generator=g, dtype=torch.float64)}
    values = {"bernoulli": torch.rand(2, 4, 5, generator=g, dtype=torch.float64),
              "categorical": torch.softmax(torch.randn(2, 4, 5, 3, generator=g, dtype=torch.float64), -1)}
    results: dict[str, list[torch.Tensor]] = {}
    for module in modules:
        for name in module.__all__:
            if not name.startswith(("bernoulli_log_prob", "categorical_log_prob")):
                continue
            function = getattr(module, name)
            assert list(inspect.signature(function).parameters)[:2] == ["logits", "value"], (module.__name__, name)
            family = name.split("_")[0]
            out = function(value=values[family], logits=logits[family])  # by keyword: no order to get wrong
            # elementwise over the units (2, 4, 5), or summed over them (2, 4) where the name ends in _sum
            assert out.shape == ((2, 4) if name.endswith("_sum") else (2, 4, 5)), (module.__name__, name)
            results.setdefault(name, []).append(out)
    assert {"bernoulli_log_prob", "bernoulli_log_prob_sum", "categorical_log_prob", "categorical_log_prob_sum"} <= set(
        results)
    for name, outs in results.items():  # one name, one function
        for out in outs[1:]:
            torch.testing.assert_close(out, outs[0], rtol=1e-12, atol=1e-12, msg=name)
