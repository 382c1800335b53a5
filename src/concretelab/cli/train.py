"""``concretelab train``: train a discrete-latent model with a relaxed objective.

Every key of ``concretelab.train.TrainConfig`` is a flag (``prior_temperature`` is
``--prior-temperature``). Precedence: the defaults, then ``--config FILE`` (TOML), then the flags given.
With ``--resume`` the run folder's ``config.toml`` replaces the defaults, so only the flags that change
something (``--steps`` to train further, ``--device``, logging and evaluation intervals) need repeating.
Under ``torchrun --nproc-per-node N $(which concretelab) train ...`` the global batch is split over N
processes (gloo on CPU) and rank 0 writes the files.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from concretelab.train.config import TrainConfig

__all__ = ["register"]

logger = logging.getLogger(__name__)

_HELP = {
    "model": 'model: an SBN spec such as "200H~784V" ("~" nonlinear, "-" linear), "392V-240H-240H-392V", '
    "or categorical-vae",
    "categories": "categories per latent unit (2: binary; 4 or 8: n-ary, the spec then counts bits)",
    "objective": "training objective: relaxed, relaxed-logratio or relaxed-analytic-kl (with --estimator: "
    "the discrete bound; leave unset or pass discrete)",
    "estimator": "train an SBN on the discrete objective with this gradient estimator: vimco (--samples >= 2), "
    "nvil, reinforce_loo (--samples >= 2), disarm or arms (--samples >= 2) (binary SBNs); --objective is then ignored",
    "samples": "m, samples in the multi-sample training bound",
    "prior_temperature": "temperature of the relaxed prior: a number or a fraction such as 1/2 (default: the "
    "paper's for the units: 1/2 binary, 2/3 4-ary, 2/5 8-ary)",
    "posterior_temperature": "temperature of the relaxed posterior: a number or a fraction such as 2/3 (default: the "
    "paper's for the units: 2/3 binary, 1 4-ary, 2/3 8-ary)",
    "activation": "hidden nonlinearity of an SBN's '~' maps: tanh (the paper's) or leaky_relu (slope 0.3, as "
    "DisARM's nonlinear models)",
    "prior_temperatures": "with --seeds: one prior temperature per seed, in the order of the seeds (0.5,0.5,1)",
    "posterior_temperatures": "with --seeds: one posterior temperature per seed (a temperature study in one process)",
    "prior_schedule": "prior temperature schedule: 'exp:RATE:FLOOR[:START[:INTERVAL]]' or "
    "'linear:START:END:STEPS' (overrides --prior-temperature)",
    "posterior_schedule": "posterior temperature schedule, as --prior-schedule",
    "learnable_temperature": "learn both temperatures (starting at the given values, kept above the floor)",
    "temperature_floor": "lower bound of learned temperatures",
    "data": "embedded (default), binarized-mnist, a folder of {train,valid,test}.amat[.gz], or an IDX folder",
    "steps": "number of optimizer steps",
    "batch_size": "global batch size",
    "lr": "Adam learning rate (the peak of --lr-schedule)",
    "lr_schedule": "learning-rate schedule: constant, cosine or linear (decay to 0 at --lr-decay-steps)",
    "warmup_steps": "linear learning-rate warmup over the first N steps (0: none)",
    "lr_decay_steps": "step at which a cosine or linear learning rate reaches 0 (default: --steps)",
    "grad_accum": "shards per process per step (the batch is cut into world_size x grad_accum shards)",
    "seed": "seed of the initialisation, data order and sampling noise",
    "seeds": "train one independent replica per seed in one process (batched matmuls): 0-7, 0,3,5 or 0-3,8; each "
    "seed's metrics and best checkpoint go to OUT/seed-S/",
    "device": "cpu, cuda, cuda:N or auto",
    "cuda_graph": "with a CUDA device: capture the whole step (loss, backward, Adam) as one CUDA graph and replay it "
    "(concretelab.train.graphed; not yet measured on a GPU)",
    "compile": "compile the relaxed objective's loss as one graph with torch.compile (the eager step's noise, its "
    "elementwise passes fused; rounding differs from eager in the last bits; 10-60 s to compile at the first step)",
    "threads": "CPU threads for torch (default: torch's choice; 1 is fastest on a busy machine)",
    "flush_denormal": "treat subnormal floats (below 1.2e-38) as 0 on the CPU, which made late m = 5 and m = 50 "
    "steps 1.6-3.6x faster (default: on)",
    "eval_every": "validate every N steps and at the end (0: never)",
    "eval_k": "k of the validation bound L_k",
    "eval_images": "validate on a fixed random subset of N validation images, as evaluate --num-images (default: all)",
    "eval_batch_size": "validation images per batch",
    "eval_chunk_size": "samples per chunk in the validation bound",
    "log_every": "write a metrics row every N steps",
    "checkpoint_every": "write checkpoints/last.safetensors every N steps (0: only at the end)",
    "snapshot_steps": "also keep the checkpoint of these steps (10000,50000) as OUT/checkpoints/step-N.safetensors "
    "(with --seeds, in each OUT/seed-S/checkpoints)",
    "progress": "show a progress bar",
    "tensorboard": "also write the metrics and sample images as TensorBoard events in OUT/tensorboard "
    "(needs the optional extra: pip install 'concretelab[tensorboard]')",
    "out": "run folder (config.toml, metrics.jsonl, checkpoints/)",
}


def register(subparsers: argparse._SubParsersAction) -> None:
    from concretelab.train.config import TrainConfig

    parser = subparsers.add_parser(
        "train",
        help="train a discrete-latent model with a Concrete relaxation",
        description=__doc__.split("\n\n")[0] + " Flags override --config FILE, which overrides the defaults.",
    )
    parser.add_argument("--config", dest="config_file", metavar="FILE", help="TOML file of configuration overrides")
    parser.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    parser.add_argument("--dry-run", action="store_true",
                        help="print the resolved configuration and the model's parameter count and make every "
                        "check train makes before its first step; train nothing, write nothing")
    for field in dataclasses.fields(TrainConfig):
        flag = "--" + field.name.replace("_", "-")
        default = field.default
        help_text = _HELP.get(field.name, field.name)
        if default is not None and "(default" not in help_text:  # each default shown once, None left to the text
            help_text += f" (default: {default})"
        if field.type in ("bool", bool):
            parser.add_argument(flag, dest=field.name, action=argparse.BooleanOptionalAction,
                                default=argparse.SUPPRESS, help=help_text)
        else:
            parser.add_argument(flag, dest=field.name, default=argparse.SUPPRESS, metavar="VALUE", help=help_text)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from concretelab.train.config import TrainConfig, load_config, resolve_config
    from concretelab.train.loop import NonFiniteLossError, train

    names = {field.name for field in dataclasses.fields(TrainConfig)}
    overrides = {name: value for name, value in vars(args).items() if name in names}
    config = resolve_config(config_file=args.config_file, overrides=overrides)
    saved = Path(config.out) / "config.toml"
    if args.resume and saved.is_file():
        config = resolve_config(config_file=args.config_file, overrides=overrides, base=load_config(saved))
    if args.dry_run:
        return _dry_run(config, resume=args.resume)
    try:
        result = train(config, resume=args.resume)
    except NonFiniteLossError as error:
        print(f"concretelab: error: {error}", file=sys.stderr)
        return 1
    if result.stopped_by_signal is not None:
        return 128 + int(result.stopped_by_signal)
    best = "" if result.best_valid_nll is None else f", best validation -L_{config.eval_k} {result.best_valid_nll:.3f}"
    if result.best_valid_nll_by_seed:
        best = (f", best validation -L_{config.eval_k} by seed: " + ", ".join(
            f"{seed}: {'-' if nll is None else f'{nll:.3f}'}" for seed, nll in result.best_valid_nll_by_seed.items()))
    logger.info("done: %d steps in %.1f s%s; run folder %s", result.step, result.seconds, best, result.out)
    return 0


def _dry_run(config: TrainConfig, *, resume: bool) -> int:
    """The resolved configuration as TOML and the model's size, then every check ``train`` makes before its first
    step (``concretelab.train.loop.check_run``, the same function): a configuration the dry run accepts is
    one ``train`` starts. Trains nothing and writes nothing."""
    import tomli_w

    from concretelab.train.config import config_to_dict
    from concretelab.train.loop import check_run

    values = {k: v for k, v in config_to_dict(config).items() if v is not None}
    prior, posterior = config.temperatures
    print("# resolved configuration (concretelab train --dry-run)")
    print(f"# temperatures used: prior {prior:.6g}, posterior {posterior:.6g}")
    print(tomli_w.dumps(values), end="")
    checked = check_run(config, resume=resume)  # ValueError naming the flag, as train raises it
    parameters = sum(p.numel() for p in checked.architecture.parameters())
    print(f"# model {config.model}: {parameters:,} parameters ({parameters * 4 / 2**20:.1f} MiB in float32)")
    replicas = len(config.seed_list)
    if replicas > 1:
        print(f"# {replicas} replicas (seeds {config.seeds}) in one process: {replicas * parameters:,} parameters "
              f"in all; each seed's run folder {config.out}/seed-S")
    if checked.checkpoint is not None:
        print(f"# resumes {config.out} at step {checked.checkpoint.step}")
    return 0
