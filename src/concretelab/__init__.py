"""concretelab: Concrete (Gumbel-Softmax) relaxations, objectives for discrete-latent models, and a
gradient-estimator lab, on PyTorch."""

__version__ = "0.1.0"


def __getattr__(name: str):  # lazy: `import concretelab` stays light; concretelab.load_run imports torch
    if name == "load_run":
        from concretelab.run import load_run

        return load_run
    raise AttributeError(f"module 'concretelab' has no attribute {name!r}")
