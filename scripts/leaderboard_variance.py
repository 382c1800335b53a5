"""Measure the encoder gradient variance of finished leaderboard cells again, with this commit's
``encoder_gradient_variance``, and record it in their results: at the best checkpoint and at the fixed checkpoints
the run folders hold (``variances_at_fixed_steps``).

The variances measured again replace the old ones, each seed's too, with the commit and command that measured them
under ``encoder_gradient_variance_measured`` (``concretelab.reproduce.leaderboard_remeasure``). Needed for the cells
that ran before 2026-12-07: the NVIL cells measured the variance of NVIL's rescaled step (its signal divided by the
running standard deviation) instead of its estimate, and no cell measured it at fixed checkpoints (the cells that ran
before ``--snapshot-steps`` have the last one only).

    python scripts/leaderboard_variance.py mnist-linear-nvil-K2 --runs ../runs/leaderboard --results results/leaderboard
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from concretelab.reproduce.leaderboard import encoder_gradient_variance, summary_at_steps, variances_at_fixed_steps
from concretelab.reproduce.leaderboard_remeasure import Remeasurement, remeasure_main


def _seed_variances(run: Path, result: dict[str, Any]) -> dict[str, Any]:
    return {"encoder_gradient_variance": encoder_gradient_variance(run),
            "encoder_gradient_variance_at": variances_at_fixed_steps(run, result["request"]["steps"])}


ENCODER_GRADIENT_VARIANCE = Remeasurement(
    label="encoder gradient variance", key="encoder_gradient_variance", measure_seed=_seed_variances,
    number_format=".4g", summaries={"encoder_gradient_variance_at": summary_at_steps})


def main(argv: list[str] | None = None) -> int:
    return remeasure_main(argv, ENCODER_GRADIENT_VARIANCE, script="leaderboard_variance.py",
                          description=__doc__.split("\n\n")[0])


if __name__ == "__main__":
    raise SystemExit(main())
