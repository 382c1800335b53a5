"""Pyro sample sites for the Concrete family: the relaxed distributions of ``concretelab.distributions``
with Pyro's ``TorchDistributionMixin``, so that ``pyro.sample("z", ExpConcrete(...))`` works in models and guides,
under ``pyro.plate``, with ``.to_event`` and ``.expand``, and SVI with ``Trace_ELBO`` uses their
reparameterised samples. Install with ``pip install 'concretelab[pyro]'``.

    import pyro
    from concretelab.pyro import ExpConcrete

    def guide(x):
        with pyro.plate("data", x.shape[0]):
            pyro.sample("y", ExpConcrete(0.5, logits=encoder(x)).to_event(1))

What does not fit Pyro: the straight-through classes. Their ``log_prob`` scores the soft point a hard sample
carries, and Pyro's ELBO scores the guide's value under the model's distribution, which is defined on the
simplex, not at its vertices; and ``HardConcrete`` has atoms at 0 and 1, which Pyro's reparameterised ELBO
would treat as a density. Use ``ExpConcrete``/``Concrete``/``BinConcrete``/``LogitBinConcrete`` in Pyro, and
take the hard value in the model (``y.exp()`` then a one-hot argmax) where a straight-through value is wanted.
"""

from __future__ import annotations

try:
    from pyro.distributions.torch_distribution import TorchDistributionMixin
except ImportError as error:  # pragma: no cover - exercised by the message test
    raise ImportError(
        "concretelab.pyro needs Pyro, which is not installed: pip install 'concretelab[pyro]' (or pyro-ppl)"
    ) from error

from concretelab import distributions as _d

__all__ = ["BinConcrete", "Concrete", "ExpConcrete", "LogitBinConcrete"]


class ExpConcrete(_d.ExpConcrete, TorchDistributionMixin):
    """``concretelab.distributions.ExpConcrete`` as a Pyro distribution."""


class Concrete(_d.Concrete, TorchDistributionMixin):
    """``concretelab.distributions.Concrete`` as a Pyro distribution."""


class BinConcrete(_d.BinConcrete, TorchDistributionMixin):
    """``concretelab.distributions.BinConcrete`` as a Pyro distribution."""


class LogitBinConcrete(_d.LogitBinConcrete, TorchDistributionMixin):
    """``concretelab.distributions.LogitBinConcrete`` as a Pyro distribution."""
