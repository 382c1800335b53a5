"""Load a trained run: the model with its weights, ready to sample, reconstruct and score new data."""

from __future__ import annotations

from pathlib import Path

import torch

from concretelab.models import LatentModel, build_model
from concretelab.train.checkpoint import Checkpoint, load_checkpoint
from concretelab.train.config import TrainConfig, config_from_dict
from concretelab.train.replicas import replica_folder, replica_seeds

__all__ = ["checkpoint_path", "load_run", "model_from_checkpoint"]


def checkpoint_path(run: str | Path, checkpoint: str | None = None, *, seed: int | None = None) -> Path:
    """The checkpoint file of a run: ``best`` or ``last``; None picks best when it exists, else last. ``seed``
    picks one replica of a ``--seeds`` run (its folder ``run/seed-{seed}``); such a run needs it."""
    if not Path(run).exists():
        raise FileNotFoundError(f"run folder {str(run)!r} is missing (no such folder)")
    if not Path(run).is_dir():
        raise FileNotFoundError(f"run folder {str(run)!r} is a file, not a run folder")
    seeds = replica_seeds(run)
    if seed is not None:
        if seed not in seeds:
            held = f"its replicas are seeds {', '.join(map(str, seeds))}" if seeds else "it is not a --seeds run"
            raise FileNotFoundError(f"run folder {str(run)!r} has no replica of seed {seed} ({held})")
        run = replica_folder(run, seed)
    elif seeds and not (Path(run) / "checkpoints" / "best.safetensors").is_file():
        first = str(replica_folder(run, seeds[0]))
        raise ValueError(f"run folder {str(run)!r} holds one replica per seed ({', '.join(map(str, seeds))}); pick "
                         f"one: seed=S (evaluate --seed-replica S), or a replica's folder such as {first!r}")
    folder = Path(run) / "checkpoints"
    if checkpoint is None:
        checkpoint = "best" if (folder / "best.safetensors").is_file() else "last"
    if checkpoint not in ("best", "last"):
        raise ValueError(f"--checkpoint must be best or last, got {checkpoint!r}")
    path = folder / f"{checkpoint}.safetensors"
    if not path.is_file():
        hint = " (the run never validated; use --checkpoint last)" if checkpoint == "best" else ""
        raise FileNotFoundError(f"run {str(run)!r} has no {checkpoint} checkpoint at {path}{hint}")
    return path


def load_run(
    path: str | Path, *, checkpoint: str | None = None, device: str | torch.device = "cpu", seed: int | None = None
) -> tuple[LatentModel, TrainConfig]:
    """The trained model of a run folder (in eval mode, on ``device``) and the run's configuration.

    Args:
        path: a run folder written by ``concretelab train`` (it holds ``checkpoints/``).
        checkpoint: ``"best"`` (best validation bound), ``"last"``, or None for best when present, else last.
        device: where to put the model.
        seed: the replica of a ``--seeds`` run to load (the run folder ``path/seed-{seed}``); such a run needs it.

    The checkpoint is verified (checksum) before use; a corrupted file raises
    ``concretelab.train.CheckpointError``.

    Example:

        import torch
        import concretelab
        from concretelab.objectives import discrete_bound

        model, config = concretelab.load_run("runs/sbn")
        g = torch.Generator().manual_seed(0)
        probs = model.generate(16, generator=g)               # (16, 784) pixel probabilities
        h, log_q = model.sample_posterior(x, 1, generator=g)  # latent codes of binary images x (batch, 784)
        log_px = discrete_bound(model, x, 5000, generator=g)  # per-image L_5000 (nats), <= log p(x)

        from concretelab.train.plots import reconstruction_probs
        recon = reconstruction_probs(model, x, g)             # (batch, 784) p(x | h), h ~ q(h | x)
    """
    ckpt = load_checkpoint(checkpoint_path(path, checkpoint, seed=seed))
    model = model_from_checkpoint(ckpt, device=device)
    config = config_from_dict({k: v for k, v in ckpt.config.items()}, source=f"checkpoint of {path}")
    return model, config


def model_from_checkpoint(checkpoint: Checkpoint, *, device: str | torch.device = "cpu") -> LatentModel:
    """The model a checkpoint holds, rebuilt from its ``model_args`` with its weights, in eval mode on ``device``."""
    model = build_model(**checkpoint.model_args)
    model.load_state_dict(checkpoint.model_state)
    return model.to(device).eval()
