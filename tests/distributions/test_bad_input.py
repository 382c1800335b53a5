"""Bad input raises ValueError naming the argument and what is expected (never a NaN, never an assert).

Parameter checks use the default ``validate_args`` (on unless Python runs with -O), as in torch.
"""

from __future__ import annotations

import math

import pytest
import torch

from concretelab.distributions import (
    BinConcrete,
    Concrete,
    ExpConcrete,
    HardConcrete,
    LogitBinConcrete,
    StraightThroughConcrete,
)

NAN, INF = float("nan"), float("inf")
t3 = torch.tensor


def _logits3() -> torch.Tensor:
    return torch.zeros(2, 3)


CASES = [
    # logits / probs
    (
        "both logits and probs",
        lambda: Concrete(1.0, logits=_logits3(), probs=torch.full((2, 3), 1 / 3)),
        r"exactly one of logits or probs must be given, got both",
    ),
    (
        "neither logits nor probs",
        lambda: BinConcrete(1.0),
        r"exactly one of logits or probs must be given, got neither",
    ),
    (
        "NaN categorical logits",
        lambda: ExpConcrete(1.0, logits=t3([0.0, NAN, 1.0])),
        r"Expected parameter logits \(Tensor of shape \(3,\)\) .* constraint CategoricalLogits\(no NaN or \+inf",
    ),
    (
        "+inf categorical logits",
        lambda: Concrete(1.0, logits=t3([0.0, INF, 1.0])),
        r"Expected parameter logits .*CategoricalLogits\(no NaN or \+inf",
    ),
    (
        "all logits -inf",
        lambda: Concrete(1.0, logits=t3([-INF, -INF])),
        r"Expected parameter logits .* at least one finite",
    ),
    (
        "NaN binary logits",
        lambda: BinConcrete(0.5, logits=t3([0.0, NAN])),
        r"Expected parameter logits \(Tensor of shape \(2,\)\) .* FiniteReal\(\)",
    ),
    (
        "+inf binary logits",
        lambda: LogitBinConcrete(0.5, logits=t3(INF)),
        r"Expected parameter logits .* FiniteReal\(\)",
    ),
    (
        "integer logits",
        lambda: Concrete(1.0, logits=torch.zeros(3, dtype=torch.int64)),
        r"logits must be a floating-point tensor, got dtype torch\.int64",
    ),
    (
        "negative probs",
        lambda: Concrete(1.0, probs=t3([0.5, 0.7, -0.2])),
        r"Expected parameter probs \(Tensor of shape \(3,\)\) .* UnnormalisedSimplex\(finite, nonnegative, positive",
    ),
    (
        "probs summing to 0",
        lambda: ExpConcrete(1.0, probs=t3([0.0, 0.0])),
        r"Expected parameter probs .* UnnormalisedSimplex\(finite, nonnegative, positive sum\)",
    ),
    (
        "binary probs at 1",
        lambda: BinConcrete(1.0, probs=t3([0.2, 1.0])),
        r"Expected parameter probs .* OpenInterval\(0, 1\)",
    ),
    (
        "one category",
        lambda: Concrete(1.0, logits=torch.zeros(3, 1)),
        r"needs at least 2 categories, got logits of shape \(3, 1\) \(K = 1",
    ),
    (
        "scalar categorical logits",
        lambda: ExpConcrete(1.0, logits=t3(0.5)),
        r"logits must have a category dimension \(shape \(batch\.\.\., K\)\), got a scalar",
    ),
    ("scalar categorical probs", lambda: Concrete(1.0, probs=t3(1.0)), r"probs must have a category dimension"),
    # temperature
    (
        "zero temperature",
        lambda: Concrete(0.0, logits=_logits3()),
        r"Expected parameter temperature \(Tensor of shape \(\)\) of distribution Concrete to satisfy the "
        r"constraint FinitePositive\(\), but found invalid values:\n0\.0",
    ),
    (
        "negative temperature entry",
        lambda: BinConcrete(t3([1.0, -0.5]), logits=torch.zeros(2)),
        r"Expected parameter temperature \(Tensor of shape \(2,\)\) .* FinitePositive\(\)",
    ),
    (
        "NaN temperature",
        lambda: ExpConcrete(NAN, logits=_logits3()),
        r"Expected parameter temperature .* FinitePositive",
    ),
    (
        "infinite temperature",
        lambda: LogitBinConcrete(t3(INF), logits=t3(0.0)),
        r"Expected parameter temperature .* FinitePositive",
    ),
    (
        "string temperature",
        lambda: Concrete("hot", logits=_logits3()),
        r"temperature must be a float or a floating-point tensor, got str",
    ),
    (
        "temperature shape",
        lambda: Concrete(torch.ones(3), logits=_logits3()),
        r"shapes do not broadcast \(temperature against the batch shape of the logits\): temperature \(3,\), "
        r"logits batch \(2,\)",
    ),
    (
        "(3, 1) temperature against (2, 4) logits",  # issue 27: the error named shape (3,), not the (3, 1) given
        lambda: Concrete(torch.ones(3, 1), logits=torch.zeros(2, 4)),
        r"shapes do not broadcast \(temperature against the batch shape of the logits\): temperature \(3, 1\), "
        r"logits batch \(2,\); a temperature with the logits' number of dimensions and a last dimension of 1 "
        r"stands for the batch shape \(3,\)",
    ),
    (
        "binary temperature shape",
        lambda: BinConcrete(torch.ones(4), logits=torch.zeros(3)),
        r"shapes do not broadcast .*: temperature \(4,\), logits \(3,\)",
    ),
    # HardConcrete bounds
    (
        "HardConcrete lower >= 0",
        lambda: HardConcrete(0.5, t3(0.0), lower=0.0),
        r"lower must be a finite number below 0 \(the stretch must cover 0\), got 0\.0",
    ),
    (
        "HardConcrete upper <= 1",
        lambda: HardConcrete(0.5, t3(0.0), upper=1.0),
        r"upper must be a finite number above 1 \(the stretch must cover 1\), got 1\.0",
    ),
    ("HardConcrete NaN lower", lambda: HardConcrete(0.5, t3(0.0), lower=NAN), r"lower must be a finite number below 0"),
    (
        "HardConcrete infinite upper",
        lambda: HardConcrete(0.5, t3(0.0), upper=INF),
        r"upper must be a finite number above 1",
    ),
    ("HardConcrete without logits", lambda: HardConcrete(0.5, None), r"logits must be given \(log alpha of the gate\)"),
]


def _value_cases() -> list:  # type: ignore[type-arg]
    c = Concrete(1.0, logits=_logits3())
    e = ExpConcrete(1.0, logits=_logits3())
    b = BinConcrete(1.0, logits=torch.zeros(3))
    h = HardConcrete(0.5, torch.zeros(3))
    return [
        (
            "value off the simplex",
            lambda: c.log_prob(t3([0.5, 0.6, 0.1])),
            r"Expected value argument \(Tensor of shape \(3,\)\) to be within the support \(Simplex",
        ),
        (
            "value off the log-simplex",
            lambda: e.log_prob(t3([0.0, 0.0, 0.0])),
            r"within the support \(LogSimplex\(log of a point in the simplex\)\)",
        ),
        ("binary value above 1", lambda: b.log_prob(t3([0.5, 1.5, 0.2])), r"within the support"),
        ("HardConcrete value below 0", lambda: h.log_prob(t3([-0.1, 0.5, 1.0])), r"within the support"),
        (
            "value event shape",
            lambda: c.log_prob(torch.full((2, 4), 0.25)),
            r"value must end in the event shape \(3,\), got shape \(2, 4\)",
        ),
        (
            "value batch shape",
            lambda: c.log_prob(torch.full((4, 3), 1 / 3)),
            r"shapes do not broadcast \(value against the distribution\): value \(4, 3\), "
            r"batch_shape \+ event_shape \(2, 3\)",
        ),
        ("value not a tensor", lambda: b.log_prob(0.5), r"value must be a tensor, got float"),
        (
            "boundary value not from rsample",
            lambda: c.log_prob(t3([[1.0, 0.0, 0.0]] * 2)),
            r"zero \(or negative\) component in a category with a finite logit: it lies on the\s+boundary",
        ),
        (
            "noise shape",
            lambda: c.rsample((5,), noise=torch.zeros(5, 2, 4)),
            r"noise must be standard Gumbel noise shaped like the sample \(5, 2, 3\), got shape \(5, 2, 4\)",
        ),
        (
            "binary noise shape",
            lambda: b.rsample(noise=torch.zeros(4)),
            r"noise must be standard logistic noise shaped like the sample \(3,\), got shape \(4,\)",
        ),
        (
            "noise not a tensor",
            lambda: e.rsample(noise=[0.0, 0.0, 0.0]),
            r"noise must be a tensor of standard Gumbel noise",
        ),
        (
            "expand to an incompatible shape",
            lambda: c.expand((3,)),
            r"shapes do not broadcast \(expand\): batch_shape \(3,\), current \(2,\)",
        ),
        (
            "straight-through plain value",
            lambda: StraightThroughConcrete(1.0, logits=_logits3()).log_prob(t3([[1.0, 0.0, 0.0]] * 2)),
            r"needs the soft \(relaxed\) point",
        ),
    ]


ALL = CASES + _value_cases()


@pytest.mark.parametrize(("call", "match"), [pytest.param(c, m, id=name) for name, c, m in ALL])
def test_bad_input_raises_value_error(call, match: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match=match):
        call()


def test_at_least_twenty_cases() -> None:
    assert len(ALL) >= 20


def test_valid_edge_values_do_not_raise() -> None:
    """The boundary of what is accepted: a -inf logit, a zero prob, a tiny temperature, bounds just past [0, 1]."""
    assert math.isfinite(Concrete(1e-30, logits=t3([0.0, -INF, 1.0])).sample().sum().item())
    Concrete(1.0, probs=t3([0.0, 0.25, 0.75]))
    HardConcrete(0.5, t3(0.0), lower=-1e-12, upper=1 + 1e-12)
