"""``concretelab evaluate RUN --k K``: the test NLL of a trained run, -L_k in nats, written to
``RUN/eval-{split}-k{K}-{checkpoint}[-subset{N}][-seed{S}].json`` (a setting other than the full split with seed 0
is part of the name, so no evaluation replaces another one's result)."""

from __future__ import annotations

import argparse

from concretelab.cli._args import non_negative_int, positive_int

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "evaluate",
        help="test log-likelihood of a run: -L_k of the discrete model",
        description=__doc__,
    )
    parser.add_argument("run", metavar="RUN", help="run folder written by concretelab train")
    parser.add_argument("--k", type=positive_int, required=True, help="samples of the bound L_k (paper: 50000)")
    parser.add_argument("--split", choices=("test", "valid", "train"), default="test",
                        help="split to score (default: test; train beside valid measures overfitting)")
    parser.add_argument("--checkpoint", choices=("best", "last"), default="best",
                        help="best validation bound or last step (default: best)")
    parser.add_argument("--seed", type=non_negative_int, default=0, help="seed of the proposal samples (default: 0)")
    parser.add_argument("--seed-replica", type=non_negative_int, default=None, metavar="S",
                        help="evaluate the replica of seed S of a run trained with --seeds (its folder RUN/seed-S)")
    parser.add_argument("--num-images", type=positive_int, default=None,
                        help="score a fixed random subset of N images of the split, the same N for every run, "
                        "checkpoint and seed (default: all; not the first N: the test set is not in random order)")
    parser.add_argument("--chunk-size", type=positive_int, default=None,
                        help="samples per chunk inside the bound (default: about 2**23 elements per chunk)")
    parser.add_argument("--batch-size", type=positive_int, default=100, help="images per batch (default: 100)")
    parser.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto (default: auto)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from concretelab.train.evaluate import evaluate_run

    result = evaluate_run(
        args.run, k=args.k, split=args.split, checkpoint=args.checkpoint, seed=args.seed,
        num_images=args.num_images, chunk_size=args.chunk_size, batch_size=args.batch_size, device=args.device,
        seed_replica=args.seed_replica,
    )
    if result["nll_stderr"] is not None:
        spread = f" ± {result['nll_stderr']:.3f} (standard error)"
    else:
        spread = " (one image: no standard error)"
    print(
        f"{args.split} NLL (-L_{args.k}, {args.checkpoint} checkpoint of step {result['checkpoint_step']}, "
        f"{result['n_images']} images): {result['nll']:.3f}{spread} nats  [{result['seconds']:.1f} s] -> "
        f"{result['path']}"
    )
    return 0
