"""Independent mpmath references for the Concrete-family log-densities (50 significant digits).

Written from the densities as stated in the paper and the module docstrings, not from the library's
log-space kernels. Inputs are binary floating-point numbers (taken exactly: ``mpf(float)`` is exact),
outputs are Python floats (the correctly rounded reference).

* Concrete (Maddison, Mnih & Teh 2017, eq. 1), density on the simplex with respect to Lebesgue measure on
  the first n - 1 coordinates (x_n = 1 - x_1 - ... - x_{n-1}):
      p(x) = (n-1)! lambda^(n-1) prod_k alpha_k x_k^(-lambda-1) / (sum_i alpha_i x_i^(-lambda))^n.
  It is evaluated at the given n coordinates as they are (a float32-rounded point need not sum to 1).
* ExpConcrete: Y = log X; with respect to Lebesgue measure on the log-ratios (y_k - y_n), k < n, the map
  to (x_1, ..., x_{n-1}) has Jacobian determinant prod_{k=1}^n x_k, so kappa(y) = p(e^y) prod_k e^(y_k).
* BinConcrete (eq. 20): p(x) = lambda alpha x^(-lambda-1) (1-x)^(-lambda-1) / (alpha x^(-lambda) + (1-x)^(-lambda))^2;
  LogitBinConcrete: Z = logit X, q(z) = p(sigmoid z) sigmoid(z) sigmoid(-z).
* HardConcrete (Louizos et al. 2018): Z = min(1, max(0, S (u-l) + l)), S ~ BinConcrete; on (0, 1) the
  density is p_S((z-l)/(u-l))/(u-l); the atoms are P(S <= -l/(u-l)) and P(S >= (1-l)/(u-l)) with the
  BinConcrete CDF P(S <= s) = sigmoid(lambda logit(s) - log alpha) (integral of the logistic density).

Categories whose logit is -inf are left out (n counts the others).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import mpmath as mp

DPS = 50


def _f(v: float) -> mp.mpf:
    return mp.mpf(float(v))


def _concrete_log_p(xs: Sequence[mp.mpf], log_alphas: Sequence[mp.mpf], lam: mp.mpf) -> mp.mpf:
    n = len(xs)
    alphas = [mp.exp(a) for a in log_alphas]
    numerator = mp.fprod(a * mp.power(x, -lam - 1) for a, x in zip(alphas, xs, strict=True))
    denominator = mp.power(mp.fsum(a * mp.power(x, -lam) for a, x in zip(alphas, xs, strict=True)), n)
    return mp.log(mp.factorial(n - 1) * mp.power(lam, n - 1) * numerator / denominator)


def _kept(values: Sequence[float], logits: Sequence[float]) -> tuple[list[mp.mpf], list[mp.mpf]]:
    keep = [k for k, a in enumerate(logits) if a != -math.inf]
    return [_f(values[k]) for k in keep], [_f(logits[k]) for k in keep]


def concrete_log_prob(x: Sequence[float], logits: Sequence[float], temperature: float) -> float:
    """log p(x) of Concrete(exp(logits), temperature) at the simplex point ``x`` (eq. 1)."""
    with mp.workdps(DPS):
        xs, log_alphas = _kept(x, logits)
        return float(_concrete_log_p(xs, log_alphas, _f(temperature)))


def concrete_log_prob_at_log(y: Sequence[float], logits: Sequence[float], temperature: float) -> float:
    """log p(x) of Concrete at the simplex point x = e^y given by its (exact) log-space coordinates ``y``."""
    with mp.workdps(DPS):
        ys, log_alphas = _kept(y, logits)
        return float(_concrete_log_p([mp.exp(v) for v in ys], log_alphas, _f(temperature)))


def exp_concrete_log_prob(y: Sequence[float], logits: Sequence[float], temperature: float) -> float:
    """log kappa(y) = log p(e^y) + sum_k y_k, the ExpConcrete log-density on the log-ratios."""
    with mp.workdps(DPS):
        ys, log_alphas = _kept(y, logits)
        xs = [mp.exp(v) for v in ys]
        return float(_concrete_log_p(xs, log_alphas, _f(temperature)) + mp.fsum(ys))


def _bin_log_p(x: mp.mpf, one_minus_x: mp.mpf, log_alpha: mp.mpf, lam: mp.mpf) -> mp.mpf:
    alpha = mp.exp(log_alpha)
    num = lam * alpha * mp.power(x, -lam - 1) * mp.power(one_minus_x, -lam - 1)
    den = mp.power(alpha * mp.power(x, -lam) + mp.power(one_minus_x, -lam), 2)
    return mp.log(num / den)


def bin_concrete_log_prob(x: float, logit: float, temperature: float) -> float:
    """log p(x) of BinConcrete(exp(logit), temperature) at x in (0, 1) (eq. 20)."""
    with mp.workdps(DPS):
        xm = _f(x)
        return float(_bin_log_p(xm, 1 - xm, _f(logit), _f(temperature)))


def logit_bin_concrete_log_prob(z: float, logit: float, temperature: float) -> float:
    """log q(z) = log p(sigmoid z) + log sigmoid(z) + log sigmoid(-z) (change of variables x = sigmoid z)."""
    with mp.workdps(DPS):
        zm = _f(z)
        x, one_minus_x = 1 / (1 + mp.exp(-zm)), 1 / (1 + mp.exp(zm))  # both sides exact, even for |z| >> 1
        return float(_bin_log_p(x, one_minus_x, _f(logit), _f(temperature)) + mp.log(x) + mp.log(one_minus_x))


def bin_concrete_log_prob_at_logit(z: float, logit: float, temperature: float) -> float:
    """log p(x) of BinConcrete at x = sigmoid(z) exactly (a straight-through sample's soft point)."""
    with mp.workdps(DPS):
        zm = _f(z)
        x, one_minus_x = 1 / (1 + mp.exp(-zm)), 1 / (1 + mp.exp(zm))
        return float(_bin_log_p(x, one_minus_x, _f(logit), _f(temperature)))


def hard_concrete_log_prob(z: float, logit: float, temperature: float, lower: float, upper: float) -> float:
    """log P(Z = 0) at 0, log P(Z = 1) at 1, log of the stretched density in (0, 1)."""
    with mp.workdps(DPS):
        lo, up, log_alpha, lam = _f(lower), _f(upper), _f(logit), _f(temperature)
        width = up - lo
        if 0 < z < 1:
            s = (_f(z) - lo) / width
            return float(_bin_log_p(s, 1 - s, log_alpha, lam) - mp.log(width))
        # Atoms from the BinConcrete CDF P(S <= s) = sigmoid(lambda logit(s) - log alpha), the integral of the
        # logistic density of lambda logit(S) - log alpha; logit(-l/(u-l)) = log(-l/u) and
        # logit((1-l)/(u-l)) = log((1-l)/(u-1)).
        if z <= 0:
            mass = 1 / (1 + mp.exp(-(lam * mp.log(-lo / up) - log_alpha)))
        else:
            mass = 1 / (1 + mp.exp(lam * mp.log((1 - lo) / (up - 1)) - log_alpha))
        return float(mp.log(mass))
