"""The estimator leaderboard (``concretelab lab leaderboard``): Bernoulli VAEs trained with each gradient estimator at
an equal number of function evaluations per step, several seeds each, on DisARM's protocol.

The protocol of DisARM (Dong, Mnih & Tucker, NeurIPS 2020, Sec. 6; google-research ``disarm/binary``), which ARMS,
double control variates and RODEO reuse: 200 Bernoulli latents; a *linear* model (encoder 784→200, decoder
200→784: our ``200H-784V``) and a *nonlinear* one (encoder 784-200-200-200, decoder 200-200-200-784 with leaky ReLUs
of slope 0.3: our ``200H~784V`` with ``activation = "leaky_relu"``); batch 50; Adam at 1e-4; dynamically binarized
data. Ours: our fixed binarized MNIST (``mnist``) and Fashion-MNIST binarized afresh at every step (``fashion``,
Debian's ``dataset-fashion-mnist``), 10^5 steps by default (theirs: 10^6), at least 3 seeds as replicas of one
process (``train --seeds``).

Equal compute is equal function evaluations K per example and step (decoder passes, ``SAMPLES_AT``): Concrete,
REINFORCE-LOO, VIMCO, NVIL, ARMS, double CV, RODEO, straight-through, Gumbel-Rao and ReinMax draw K samples (one
decoder pass each; double CV and RODEO add one backward pass through the decoder, the pathwise ones one backward pass
as every estimator does); ARM and DisARM K/2 antithetic pairs; REBAR and RELAX three passes per sample (f at b, at the
relaxed z and at the conditional z̃), so they need K >= 3 and use 3 of K = 4 (``evaluations_used`` in the result
says so). A cell is ``{dataset}-{model}-{estimator}-K{K}``. Estimators that adapt their own parameters to the batch
(REBAR, RELAX, double CV, RODEO: ``OneLayerEstimator.replicable``) train their seeds one after the other, each a
model of its own, in the same ``seed-S`` folders; the others train their seeds as replicas of one process.

Per cell and seed: the test bound −L_100 on every test image and −L_5000 on a fixed subset of 1,000
(``concretelab evaluate``'s evaluation, at the best checkpoint by validation −L_100 on 1,000 validation images), the
training objective over the last tenth of the steps, the training ELBO (``training_elbo``), the variance of the
encoder's gradient at the best checkpoint and at fixed checkpoints, 10%, 50% and 100% of the steps
(``encoder_gradient_variance``; the trainer keeps those checkpoints with ``--snapshot-steps``), and the steps per
second; the cell reports the mean over seeds with Student's t interval (``concretelab.reproduce.seeds``). A cell is
resumable: its run folder resumes, its evaluations are cached in it, and a finished result
(``results/leaderboard/{cell}.json``) is kept.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import logging
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from concretelab.files import read_json_object
from concretelab.reproduce.seeds import seed_interval
from concretelab.train import TrainConfig, train
from concretelab.train.evaluate import evaluate_run
from concretelab.train.io import atomic_write_json
from concretelab.train.metrics import last_steps_per_s, read_metrics, time_left
from concretelab.train.replicas import replica_folder

__all__ = [
    "DATASETS",
    "DEFAULT_STEPS",
    "MODELS",
    "NOT_TRAINABLE",
    "SAMPLES_AT",
    "CellProgress",
    "LeaderboardCell",
    "LeaderboardOptions",
    "cell_config",
    "cell_progress",
    "encoder_gradient_variance",
    "leaderboard_cells",
    "run_leaderboard_cell",
    "seed_configs",
    "seed_summary",
    "summary_at_steps",
    "training_elbo",
    "training_images",
    "variance_steps",
    "variances_at_fixed_steps",
]

logger = logging.getLogger(__name__)

#: data set name -> (description, default ``--data`` value)
DATASETS: dict[str, tuple[str, str]] = {
    "mnist": ("binarized MNIST, the fixed binarization (50k/10k/10k)", "../shared/data/binarized_mnist"),
    "fashion": ("Fashion-MNIST, binarized afresh at every step", "/usr/share/datasets/fashion-mnist"),
}
#: model name -> (spec, hidden nonlinearity): DisARM's linear and nonlinear Bernoulli VAEs
MODELS: dict[str, tuple[str, str]] = {"linear": ("200H-784V", "tanh"), "nonlinear": ("200H~784V", "leaky_relu")}
#: estimator -> the m it trains with at K evaluations per example (None where K does not fit it)
SAMPLES_AT: dict[str, Callable[[int], int | None]] = {
    "concrete": lambda k: k,  # the relaxed multi-sample bound at m = K
    "reinforce_loo": lambda k: k if k >= 2 else None,
    "vimco": lambda k: k if k >= 2 else None,
    "nvil": lambda k: k,  # K samples, each with the baseline networks' (small) evaluation
    "disarm": lambda k: k // 2 if k % 2 == 0 else None,  # K / 2 antithetic pairs
    "arms": lambda k: k if k >= 2 else None,
    "arm": lambda k: k // 2 if k % 2 == 0 else None,  # K / 2 pairs, as DisARM
    "double_cv": lambda k: k if k >= 2 else None,  # K samples, f and its input gradient at each
    "rodeo": lambda k: k if k >= 2 else None,
    "rebar": lambda k: k // 3 or None,  # 3 evaluations per sample: f(b), f(σ_λ(z)), f(σ_λ(z̃))
    "relax": lambda k: k // 3 or None,
    "straight_through": lambda k: k,
    "gumbel_rao": lambda k: k,  # its inner samples relax the noise, they do not evaluate f
    "reinmax": lambda k: k,
}
#: f-evaluations per sample where it is not 1 (what ``evaluations_used`` counts)
EVALUATIONS_PER_SAMPLE = {"disarm": 2, "arm": 2, "rebar": 3, "relax": 3}
#: estimators in the package that the leaderboard does not train, and why
NOT_TRAINABLE: dict[str, str] = {
    "reinforce": "REINFORCE with a moving-average baseline; the score-function baselines here are REINFORCE-LOO "
                 "and NVIL",
    "st_gumbel": "straight-through Gumbel-Softmax; the straight-through family here is straight-through, Gumbel-Rao "
                 "(its Rao-Blackwellisation) and ReinMax",
    "indecater": "made for categorical latents: on 200 binary latents a sample costs 1 + 200 = 201 f-evaluations",
}
BUDGETS = (2, 4)
DEFAULT_STEPS = 100_000  # the leaderboard's budget; a cell run at another one is a run of its own (``run_name``)
TEST_K, LARGE_K, LARGE_K_IMAGES = 100, 5000, 1000
GRADIENT_DRAWS, GRADIENT_IMAGES = 100, 50  # draws of the estimator, and the batch, of the gradient variance
ELBO_IMAGES, ELBO_DRAWS = 10_000, 10  # training images, and proposal samples per image, of the training ELBO
#: the most steps between two saves of a cell's last checkpoint: what a killed run (a session's end sends SIGKILL,
#: which the trainer cannot catch) loses at most. A save of the three replicas of the nonlinear model takes well
#: under a second, and 2,000 steps take about a minute even on a shared core.
CHECKPOINT_EVERY = 2000


@dataclasses.dataclass(frozen=True)
class LeaderboardCell:
    """One cell: a data set, a model, an estimator and K evaluations per example and step."""

    dataset: str
    model: str
    estimator: str
    evaluations: int

    @property
    def name(self) -> str:
        return f"{self.dataset}-{self.model}-{self.estimator}-K{self.evaluations}"

    @property
    def samples(self) -> int | None:
        return SAMPLES_AT[self.estimator](self.evaluations) if self.estimator in SAMPLES_AT else None

    @property
    def evaluations_used(self) -> int | None:
        """f-evaluations per example and step that the estimator makes at ``samples`` (<= ``evaluations``)."""
        m = self.samples
        return None if m is None else m * EVALUATIONS_PER_SAMPLE.get(self.estimator, 1)

    @property
    def replicable(self) -> bool:
        """Whether the seeds train as replicas of one process (not for estimators with adapted parameters)."""
        from concretelab.estimators import ESTIMATORS

        layered = ESTIMATORS[self.estimator].layered if self.estimator != "concrete" else None
        return bool(getattr(layered, "replicable", True))


def leaderboard_cells(patterns: Sequence[str] | None = None) -> list[LeaderboardCell]:
    """Every cell (trainable estimators at every budget that fits them), or those matching a glob pattern."""
    cells = [LeaderboardCell(d, m, e, k) for d in DATASETS for m in MODELS for e in SAMPLES_AT for k in BUDGETS
             if SAMPLES_AT[e](k) is not None]
    if not patterns:
        return cells
    chosen = [c for c in cells if any(fnmatch.fnmatchcase(c.name, p) for p in patterns)]
    if not chosen:
        raise ValueError(f"no leaderboard cell matches {', '.join(patterns)}; cells are named like "
                         f"{cells[0].name} (--list shows them all)")
    return chosen


@dataclasses.dataclass(frozen=True)
class LeaderboardOptions:
    """What ``concretelab lab leaderboard`` was asked: budget, seeds, data folders and where things go."""

    out: Path  # run folders
    results: Path  # {cell}.json
    steps: int = DEFAULT_STEPS
    seeds: str = "0-2"
    data: dict[str, str] = dataclasses.field(default_factory=lambda: {k: v[1] for k, v in DATASETS.items()})
    test_images: int | None = None  # test images of -L_100 (None: all); -L_5000 takes min(1000, this)
    valid_images: int = 1000
    threads: int | None = 1

    def run_name(self, cell: LeaderboardCell) -> str:
        """The name of the cell's run folder and result: the cell's name at the default budget, with the budget
        appended at any other (``mnist-linear-concrete-K2-steps1000000``), so that a longer run of a cell is a run
        of its own beside the 10^5-step one, never an extension or a replacement of it."""
        return cell.name if self.steps == DEFAULT_STEPS else f"{cell.name}-steps{self.steps}"

    def result_path(self, cell: LeaderboardCell) -> Path:
        return self.results / f"{self.run_name(cell)}.json"

    def request(self, cell: LeaderboardCell) -> dict[str, Any]:
        """What a stored result must match to count as done."""
        return {"steps": self.steps, "seeds": self.seeds, "data": self.data[cell.dataset],
                "test_images": self.test_images, "valid_images": self.valid_images}


#: the fixed checkpoints, as fractions of the budget, at which each seed's encoder gradient variance is measured
VARIANCE_FRACTIONS = (0.1, 0.5, 1.0)


def variance_steps(steps: int) -> list[int]:
    """The steps of the fixed checkpoints of a budget of ``steps`` (``VARIANCE_FRACTIONS``; the last is ``steps``)."""
    return sorted({max(1, round(steps * fraction)) for fraction in VARIANCE_FRACTIONS})


def cell_config(cell: LeaderboardCell, options: LeaderboardOptions) -> TrainConfig:
    """The training configuration of a cell: DisARM's protocol at our budget, its seeds as replicas (for a cell whose
    seeds train one after the other, ``seed_configs`` gives theirs)."""
    spec, activation = MODELS[cell.model]
    steps = options.steps
    every = max(1, steps // 10)
    return TrainConfig(
        model=spec, activation=activation, data=options.data[cell.dataset],
        estimator=None if cell.estimator == "concrete" else cell.estimator, samples=cell.samples or 1,
        batch_size=50, lr=1e-4, steps=steps, seeds=options.seeds, eval_every=every, eval_k=TEST_K,
        eval_images=options.valid_images, checkpoint_every=min(every, CHECKPOINT_EVERY),
        log_every=max(1, min(100, steps // 20)),
        snapshot_steps=",".join(map(str, variance_steps(steps)[:-1])) or None,  # the last step's is last
        threads=options.threads, progress=False, out=str(options.out / options.run_name(cell)),
    )


def seed_configs(cell: LeaderboardCell, options: LeaderboardOptions) -> list[TrainConfig]:
    """The trainings of a cell: one with every seed as a replica, or, where the seeds cannot be replicas
    (``LeaderboardCell.replicable``), one per seed in the folder a replica of that seed would have."""
    config = cell_config(cell, options)
    if cell.replicable:
        return [config]
    return [dataclasses.replace(config, seeds=None, seed=seed, out=str(replica_folder(config.out, seed)))
            for seed in config.seed_list]


@dataclasses.dataclass(frozen=True)
class CellProgress:
    """Where a cell stands (``concretelab lab leaderboard --list``): ``result`` when a finished result answers the
    request, else the last saved step of each of its trainings (one for a cell whose seeds are replicas, one per
    seed otherwise; 0 where none was saved) against ``budget``, and ``holder``, the process that trains it now."""

    result: dict[str, Any] | None
    steps: tuple[int, ...]
    budget: int
    holder: str | None = None
    rate: float | None = None  # steps/s of the training now running, from its last logged row

    def time_left(self) -> str:
        """", about N min of training left at S steps/s" while training at a known rate, else empty: the steps
        every training of the cell still has to run, at the rate of the one running now."""
        if self.holder is None:
            return ""
        return time_left(sum(self.budget - s for s in self.steps), self.rate)

    STATES = ("done", "training", "trained", "stopped", "not started")

    @property
    def state(self) -> str:
        """done, training, stopped, trained (not yet evaluated) or not started."""
        if self.result is not None:
            return "done"
        if self.holder is not None:
            return "training"
        if not any(self.steps):
            return "not started"
        return "trained" if all(s == self.budget for s in self.steps) else "stopped"

    def describe(self) -> str:
        """One line: the state, with -L_100 when done and the steps when training or stopped."""
        state = self.state
        if state == "done":
            return f"done: -L_100 {self.result['test_nll_100']['mean']:.2f}"  # type: ignore[index]
        if state == "not started":
            return state
        if state == "trained":
            return "trained, not evaluated (run it again to evaluate)"
        at = (f"step {self.steps[0]:,}" if len(self.steps) == 1
              else "seeds at steps " + " / ".join(f"{s:,}" for s in self.steps))
        if state == "training":
            return f"training ({self.holder}): {at} of {self.budget:,}{self.time_left()}"
        return f"stopped{' at' if len(self.steps) == 1 else ','} {at} of {self.budget:,} (run it again to resume)"


def cell_progress(cell: LeaderboardCell, options: LeaderboardOptions) -> CellProgress:
    """The cell's ``CellProgress``, read from its result and the headers of its last checkpoints; nothing is
    loaded or locked, so it may be asked while the cell trains."""
    from concretelab.train.checkpoint import saved_step
    from concretelab.train.run_lock import lock_holder

    stored = read_json_object(options.result_path(cell))
    if stored and stored.get("status") == "done" and stored.get("request") == options.request(cell):
        return CellProgress(result=stored, steps=(), budget=options.steps)
    folders = [Path(config.out) for config in seed_configs(cell, options)]
    steps = tuple(saved_step(folder) or 0 for folder in folders)
    holders = [lock_holder(folder) for folder in folders]
    running = next((i for i, h in enumerate(holders) if h is not None), None)
    return CellProgress(result=None, steps=steps, budget=options.steps,
                        holder=None if running is None else holders[running],
                        rate=None if running is None else last_steps_per_s(folders[running]))


def encoder_gradient_variance(run: Path, *, checkpoint: str = "best", draws: int = GRADIENT_DRAWS,
                              images: int = GRADIENT_IMAGES, seed: int = 0) -> float:
    """tr Cov of the estimator's gradient of the training loss with respect to the encoder's parameters, at the
    run's checkpoint ``checkpoint`` (best, last, or a snapshot ``step-N`` of ``--snapshot-steps``), on a fixed
    batch of ``images`` training images (``training_images``), over ``draws`` independent draws of the estimator's
    noise: Σ_params Var[ĝ], the noise the estimator adds to each step (Dong et al. 2020 report it too).
    NVIL's baselines and running moments are those of the checkpoint, frozen (eval mode), and its signal is not
    divided by the running standard deviation: that division rescales NVIL's step, not its estimate, and would
    shrink the variance by the square of the scale. So every cell's variance is that of an estimate of its
    objective's gradient (the ELBO's; the relaxed bound's for Concrete, L_K's for VIMCO)."""
    import torch

    from concretelab.estimators.layered import LayeredNVIL
    from concretelab.objectives import OBJECTIVES
    from concretelab.train import load_checkpoint
    from concretelab.train.config import config_from_dict
    from concretelab.train.discrete import build_estimator_objective
    from concretelab.train.load import checkpoint_path, model_from_checkpoint

    path = (checkpoint_path(run, checkpoint) if checkpoint in ("best", "last")
            else Path(run) / "checkpoints" / f"{checkpoint}.safetensors")
    saved = load_checkpoint(path)
    config = config_from_dict(saved.config, source=f"checkpoint of {run}")
    x = training_images(config.data, images, seed=seed)
    model = model_from_checkpoint(saved).train()
    if config.estimator is None:
        objective = OBJECTIVES[config.objective or "relaxed"]
    else:
        objective = build_estimator_objective(config.estimator, model, seed=config.seed)
        objective.load_state_dict(saved.extra["estimator"])
        objective.eval()
        if isinstance(objective, LayeredNVIL):
            objective.normalise = False  # the estimate, not the trainer's rescaled step (docstring)
    encoder = [p for name, p in model.named_parameters() if name.startswith("encoder")]
    prior, posterior = config.temperatures
    generator = torch.Generator().manual_seed(seed + 1)
    total = [torch.zeros_like(p, dtype=torch.float64) for p in encoder]
    squares = [torch.zeros_like(p, dtype=torch.float64) for p in encoder]
    for _ in range(draws):
        bound = objective(model, x, samples=config.samples, prior_temperature=prior, posterior_temperature=posterior,
                          generator=generator)
        grads = torch.autograd.grad(-bound.mean(), encoder)
        for t, s, g in zip(total, squares, grads, strict=True):
            t += g.double()
            s += g.double() ** 2
    return float(sum(((s - t * t / draws) / (draws - 1)).sum() for t, s in zip(total, squares, strict=True)))


def training_images(data: str, images: int, *, seed: int = 0) -> Any:
    """A fixed set of ``images`` training images of the data set ``data`` as float 0/1, (images, D): the first of
    a random order of the training split fixed by ``seed``, binarized once (from ``seed``) where the data set is
    binarized afresh at every step, so that every cell and checkpoint is measured on the same images."""
    import torch

    from concretelab.data import binarize, load_dataset

    dataset = load_dataset(data)
    order = torch.randperm(dataset.train.shape[0], generator=torch.Generator().manual_seed(seed))[:images]
    x = dataset.train[order]
    return binarize(x, generator=torch.Generator().manual_seed(seed)) if dataset.dynamic_binarization else x.float()


def training_elbo(run: Path, *, checkpoint: str = "best", images: int = ELBO_IMAGES, draws: int = ELBO_DRAWS,
                  seed: int = 0) -> dict[str, float]:
    """The discrete model's ELBO, E_q[log p(x, h) − log q(h | x)] (= L_1, Burda et al. 2016, eq. 8 at k = 1),
    averaged over a fixed set of ``images`` training images (``training_images``), each image's from ``draws``
    samples of the proposal, at the run's checkpoint: the training ELBO that DisARM, ARMS, double CV and RODEO
    report, here measured the same way for every estimator, also for Concrete and VIMCO, which train other
    bounds. Returns the mean and the 95% half-width over images (normal, from their standard error)."""
    import torch

    from concretelab.train.load import load_run

    model, config = load_run(run, checkpoint=checkpoint)  # in eval mode
    x = training_images(config.data, images, seed=seed)
    generator = torch.Generator().manual_seed(seed + 2)
    means = []
    with torch.no_grad():
        for batch in x.split(500):
            h, log_q = model.sample_posterior(batch, draws, generator=generator)
            means.append((model.log_joint(batch, h) - log_q).double().mean(0))  # (draws, batch) -> (batch,)
    per_image = torch.cat(means)
    half = 1.959964 * float(per_image.std()) / len(per_image) ** 0.5
    return {"mean": float(per_image.mean()), "ci95_half": half, "images": len(per_image), "draws": draws}


def _seed_numbers(run: Path, seed: int, options: LeaderboardOptions, steps: int) -> dict[str, Any]:
    """One seed's numbers: its test bounds (cached evaluations), training objective and speed."""
    main = evaluate_run(run, k=TEST_K, split="test", num_images=options.test_images, device="cpu", progress=False)
    subset = min(LARGE_K_IMAGES, options.test_images or LARGE_K_IMAGES)
    large = evaluate_run(run, k=LARGE_K, split="test", num_images=subset, device="cpu", progress=False)
    rows = read_metrics(run / "metrics.jsonl")
    train_rows = [r for r in rows if "loss" in r]
    late = [r["loss"] for r in train_rows if r["step"] > 0.9 * steps] or [train_rows[-1]["loss"]]
    valid = [[r["step"], r["valid_nll"], r["time"]] for r in rows if "valid_nll" in r]
    return {
        "seed": seed,
        "test_nll_100": main["nll"], "test_nll_100_ci95": main["nll_ci95"], "test_images": main["n_images"],
        "test_nll_5000": large["nll"], "test_nll_5000_ci95": large["nll_ci95"], "large_k_images": large["n_images"],
        "checkpoint_step": main["checkpoint_step"],
        "encoder_gradient_variance": encoder_gradient_variance(run),
        "encoder_gradient_variance_at": variances_at_fixed_steps(run, steps),
        "train_objective": -sum(late) / len(late),
        "train_elbo": training_elbo(run)["mean"],
        "steps_per_s": statistics.median(r["steps_per_s"] for r in train_rows if r.get("steps_per_s")),  # process
        "valid_curve": valid,  # [step, -L_100 on the validation images, seconds of training]
    }


def variances_at_fixed_steps(run: Path, steps: int) -> dict[str, float]:
    """The encoder gradient variance at each fixed step (``variance_steps``) whose checkpoint the run kept: the
    snapshots ``step-N``, and the last checkpoint for the last step; keyed by the step, as text (JSON keys)."""
    found = {}
    for step in variance_steps(steps):
        name = "last" if step == steps else f"step-{step}"
        if (Path(run) / "checkpoints" / f"{name}.safetensors").is_file():
            found[str(step)] = encoder_gradient_variance(run, checkpoint=name)
    return found


def summary_at_steps(per_seed: list[dict[str, Any]], key: str) -> dict[str, dict[str, float] | None]:
    """``seed_summary`` of a per-step mapping ``key`` of each seed's numbers, step by step (the seeds that have it)."""
    steps = sorted({step for s in per_seed for step in s.get(key, {})}, key=int)
    return {step: seed_summary([{"value": s[key][step]} for s in per_seed if step in s.get(key, {})], "value")
            for step in steps}


def seed_summary(per_seed: list[dict[str, Any]], key: str) -> dict[str, float] | None:
    """``key`` over the seeds' numbers: mean, sd and Student's t 95% half-width (None for one seed)."""
    values = [s[key] for s in per_seed]
    if len(values) < 2:
        return {"mean": values[0], "sd": None, "ci95_half": None} if values else None
    mean, sd, half = seed_interval(values)
    return {"mean": mean, "sd": sd, "ci95_half": half}


def run_leaderboard_cell(cell: LeaderboardCell, options: LeaderboardOptions, *, command: str,
                         commit: str) -> dict[str, Any] | None:
    """Train (or resume) and evaluate one cell and write its result; the stored result when it is done already,
    None when a signal interrupted training."""
    path = options.result_path(cell)
    stored = read_json_object(path)
    if stored and stored.get("status") == "done" and stored.get("request") == options.request(cell):
        return stored
    config = cell_config(cell, options)
    started = time.perf_counter()
    trainings = []
    for seed_config in seed_configs(cell, options):
        trained = train(seed_config, resume=True)
        if trained.stopped_by_signal is not None:
            return None
        trainings.append(trained)
    seeds = config.seed_list
    runs = [replica_folder(config.out, s) if config.seeds else Path(config.out) for s in seeds]
    per_seed = [_seed_numbers(run, seed, options, config.steps) for run, seed in zip(runs, seeds, strict=True)]
    together = len(trainings) == 1  # the seeds as replicas of one process
    result = {
        "cell": cell.name, "run_name": options.run_name(cell), "status": "done", "dataset": cell.dataset,
        "model": cell.model,
        "spec": config.model, "activation": config.activation, "estimator": cell.estimator,
        "evaluations": cell.evaluations, "evaluations_used": cell.evaluations_used, "samples": cell.samples,
        "steps": trained.step, "seeds": list(seeds), "seeds_as_replicas": together, "replicas": per_seed,
        **{key: seed_summary(per_seed, key) for key in ("test_nll_100", "test_nll_5000", "train_objective",
                                                     "train_elbo", "encoder_gradient_variance")},
        "encoder_gradient_variance_at": summary_at_steps(per_seed, "encoder_gradient_variance_at"),
        # one process trains every seed (its steps/s, and the replica-steps/s of all its replicas together), or one
        # seed at a time (the first seed's steps/s, one replica each)
        "steps_per_s": per_seed[0]["steps_per_s"],
        "replica_steps_per_s": per_seed[0]["steps_per_s"] * (len(seeds) if together else 1),
        "train_seconds": sum(t.seconds for t in trainings), "wall_seconds_this_call": time.perf_counter() - started,
        "request": options.request(cell), "command": command, "commit": commit,
        "config": {k: v for k, v in dataclasses.asdict(config).items() if v is not None and k != "out"},
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    atomic_write_json(path, result)
    return result
