"""Measure the training ELBO of finished leaderboard cells, with this commit's ``training_elbo``, and record it in
their results.

The cells that ran before 2026-12-07 report the training objective (what each estimator optimises: the relaxed bound
for Concrete, L_K for VIMCO) but not the ELBO of the discrete model that the papers report for every estimator. This
measures it from each seed's run folder (the best checkpoint, 10,000 fixed training images, 10 proposal samples
each), stores it per seed and over seeds, and records the commit and command under ``train_elbo_measured``
(``concretelab.reproduce.leaderboard_remeasure``).

    python scripts/leaderboard_train_elbo.py mnist-linear-concrete-K2 --runs ../runs/leaderboard \
        --results results/leaderboard
"""

from __future__ import annotations

from concretelab.reproduce.leaderboard import training_elbo
from concretelab.reproduce.leaderboard_remeasure import Remeasurement, remeasure_main

TRAINING_ELBO = Remeasurement(label="training ELBO", key="train_elbo",
                              measure_seed=lambda run, result: {"train_elbo": training_elbo(run)["mean"]})


def main(argv: list[str] | None = None) -> int:
    return remeasure_main(argv, TRAINING_ELBO, script="leaderboard_train_elbo.py", description=__doc__.split("\n\n")[0])


if __name__ == "__main__":
    raise SystemExit(main())
