"""The gradient-estimator lab: bias, variance, SNR, cosine similarity and cost of estimators against temperature.

``run_sweep(problems, SweepConfig(...))`` measures every estimator × temperature on problems whose exact
gradient is enumerable (``concretelab.lab.problems``), with intervals (``concretelab.lab.metrics``);
``write_tables`` and ``plot_rows`` (``concretelab.lab.report``) write the CSV/JSON tables and figures.
The command line is ``concretelab lab gradients``.
"""

from concretelab.lab.metrics import SCALAR_METRICS, GradientMetrics, Interval, gradient_metrics
from concretelab.lab.problems import PROBLEMS, Problem, categorical_problem, sbn_problem, toy_problem
from concretelab.lab.report import plot_rows, write_tables
from concretelab.lab.sweep import SweepConfig, check_estimator_names, check_temperatures, run_sweep, takes_temperature

__all__ = [
    "PROBLEMS",
    "SCALAR_METRICS",
    "GradientMetrics",
    "Interval",
    "Problem",
    "SweepConfig",
    "categorical_problem",
    "check_estimator_names",
    "check_temperatures",
    "gradient_metrics",
    "plot_rows",
    "run_sweep",
    "sbn_problem",
    "takes_temperature",
    "toy_problem",
    "write_tables",
]
