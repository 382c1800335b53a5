"""Training discrete-latent models with Concrete relaxations: a typed config, one readable loop,
safetensors checkpoints that resume bit for bit, metrics, evaluation and plots.

    from concretelab.train import TrainConfig, train

    result = train(TrainConfig(model="200H~784V", steps=10_000, out="runs/sbn"))

The command line (``concretelab train``, ``evaluate``, ``plot``) drives the same functions. Data-parallel
training over processes: ``torchrun --nproc-per-node 2 $(which concretelab) train ...`` (gloo on CPU, NCCL
on CUDA); the global ``--batch-size`` is split across the ranks and rank 0 writes the run folder.
"""

from concretelab.train.checkpoint import Checkpoint, CheckpointError, load_checkpoint, save_checkpoint
from concretelab.train.config import TrainConfig, load_config, parse_number, resolve_config
from concretelab.train.loop import NonFiniteLossError, TrainResult, train, validate

__all__ = [
    "Checkpoint",
    "CheckpointError",
    "NonFiniteLossError",
    "TrainConfig",
    "TrainResult",
    "load_checkpoint",
    "load_config",
    "parse_number",
    "resolve_config",
    "save_checkpoint",
    "train",
    "validate",
]
