"""concretelab: Concrete (Gumbel-Softmax) relaxations, objectives for discrete-latent models, and a
gradient-estimator lab, on PyTorch."""

__version__ = "0.1.0"
