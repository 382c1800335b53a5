"""Run Table 1 cells: train each from its config file (resuming an interrupted run from its checkpoint),
evaluate the best checkpoint on the test set, and store a small JSON result per cell.

A cell is *done* when its result file holds a measured value trained for at least the requested steps, with
the requested optimiser schedule, from the same cell definition (model, objective, m, temperatures;
``cell_definition``) (``is_done``). A result whose cell config changed since is not done; if its run folder
is still there, resuming it stops with an error naming the changed key, so move that folder aside. Done cells
are skipped, so a finished long run is never replaced by a shorter one. With ``--redo`` a done cell is re-run
(resumed, then re-evaluated) unless its stored request (step budget, k, test images, large-k evaluation, data,
seed) equals the new one. A cell that is not done is trained with
``resume=True`` in its run folder (``{out}/{cell}``): an interrupted run continues from
``checkpoints/last.safetensors`` and a finished one only gets evaluated; evaluations already made are
cached in the run folder by the one evaluation of the package (``eval-test-*.json``,
``concretelab.train.evaluate.evaluate_checkpoint``, the files ``concretelab evaluate`` writes) and not repeated.

Run folders hold the checkpoints and live outside the repository by default
(``$XDG_CACHE_HOME/concretelab/table1``, see ``default_out``); only the JSON results are committed.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from concretelab.data import load_dataset
from concretelab.devices import describe_device, resolve_device
from concretelab.reproduce.cells import Cell
from concretelab.reproduce.evaluation import Evaluation, k_tightening
from concretelab.reproduce.recipes import optimiser_schedule, recipe_overrides
from concretelab.reproduce.results import load_result, not_run_result, write_result
from concretelab.reproduce.seeds import combine_seeds, seed_label
from concretelab.train import TrainConfig, TrainResult, load_checkpoint, load_config, train
from concretelab.train.checkpoint import saved_step
from concretelab.train.config import config_from_dict, config_to_dict
from concretelab.train.evaluate import DEFAULT_EVAL_BATCH_SIZE, bound_subset, evaluate_checkpoint
from concretelab.train.load import model_from_checkpoint
from concretelab.train.metrics import read_metrics
from concretelab.train.replicas import parse_seeds, replica_folder
from concretelab.train.run_lock import RunFolderBusyError, run_lock

__all__ = [
    "DEFAULT_EVAL_BATCH_SIZE",
    "PAPER_STEPS",
    "CellState",
    "ReproduceOptions",
    "cell_config",
    "cell_definition",
    "check_clean_for_results",
    "default_out",
    "git_commit",
    "is_done",
    "run_cell",
    "run_cells",
]

logger = logging.getLogger(__name__)

PAPER_STEPS = 10_000_000  # training steps per cell in Maddison et al. (2017), Sec. 5
# Marks results whose bounds came from the exact (float64-decided) discrete sampler of commit 7b4621d; results
# without it were measured with the float32 `rand() < sigmoid(a)` sampler, which can overstate L_k.
EXACT_SAMPLER = "float64-decided (7b4621d)"
_CURVE_POINTS = 300  # training-curve points kept in a result file
# test images per batch of an evaluation; with the seed it fixes each image's samples, and a result cached with
# it carries no batch tag in its name (so results from before the option keep theirs). The CLI, which builds its
# parser without torch, repeats it as its own default; tests/reproduce checks the two agree.


def default_out() -> Path:
    """Where run folders go: ``$XDG_CACHE_HOME/concretelab/table1`` (``~/.cache/concretelab/table1``)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "concretelab" / "table1"


@dataclasses.dataclass(frozen=True)
class ReproduceOptions:
    """What ``concretelab reproduce table1`` was asked to do (the same for every selected cell)."""

    configs: Path  # folder of {cell}.toml files
    out: Path  # folder of run folders (checkpoints, metrics)
    results: Path  # folder of {cell}.json results
    steps: int | None = None  # step budget per cell (None: the config's, 10^7 in the paper)
    k: int = 50_000  # k of the test bound L_k (the paper: 50,000)
    num_images: int | None = None  # test images for L_k (None: all; else a fixed random subset)
    large_k: int | None = None  # optional second, larger-k evaluation on a subset
    large_k_images: int = 1000  # size of that subset
    data: str | None = None  # data override (a name or a folder of .amat[.gz])
    eval_every: int | None = None  # validation interval (None: about 10 checks per run)
    valid_images: int | None = None  # validation images per check (None: the config's, all by default)
    valid_k: int | None = None  # k of the validation bound that chooses the best checkpoint (None: the config's)
    eval_seed: int = 0  # seeds the test-set posterior samples (the subsets are fixed: train.evaluate.bound_subset)
    eval_batch_size: int = DEFAULT_EVAL_BATCH_SIZE  # test images per call of discrete_bound
    redo: bool = False  # re-run done cells whose stored request differs (else a done cell with >= steps is kept)
    recipe: str = "tuned"  # optimiser schedule: "tuned", "paper" or "cosine" (concretelab.reproduce.recipes)
    seeds: str | None = None  # train each cell's seeds as replicas in one process ("0-3"); None: the config's seed
    compile: bool = False  # the relaxed cells' loss under torch.compile (train --compile); estimator cells stay eager

    def __post_init__(self) -> None:
        if self.seeds is not None:
            object.__setattr__(self, "seeds", ",".join(map(str, parse_seeds(self.seeds))))
        for name in ("steps", "num_images", "large_k", "eval_every", "valid_images", "valid_k"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"{name} must be >= 1 or unset, got {value}")
        for name in ("k", "large_k_images", "eval_batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")

    def request(self, config: TrainConfig) -> dict[str, Any]:
        """What a stored result must match to count as done for these options."""
        return {
            "steps": config.steps, "k": self.k, "num_images": self.num_images, "large_k": self.large_k,
            "large_k_images": self.large_k_images if self.large_k else None, "data": config.data,
            "eval_seed": self.eval_seed, "recipe": self.recipe, "schedule": optimiser_schedule(config_to_dict(config)),
            "definition": cell_definition(config),
        }


def cell_definition(config: TrainConfig) -> dict[str, Any]:
    """What defines a cell besides its budget and schedule: model, objective or estimator, m, batch, seed, and for
    the relaxed bound the temperatures as trained (resolved, so an unset one reads as the default it ran at)."""
    definition: dict[str, Any] = {
        "model": config.model, "categories": config.categories, "estimator": config.estimator,
        "samples": config.samples, "batch_size": config.batch_size, "seed": config.seed,
    }
    if config.seeds is not None:  # replicas of several seeds (absent from single-seed definitions, as before)
        definition["seeds"] = config.seeds
    if config.estimator is None:  # the temperatures shape only the relaxed objectives
        definition.update(
            objective=config.objective or "relaxed", learnable_temperature=config.learnable_temperature,
            temperatures=[round(float(t), 9) for t in config.temperatures],
            schedules=[config.prior_schedule, config.posterior_schedule],
        )
    return definition


def _stored_definition(stored: dict[str, Any]) -> dict[str, Any] | None:
    """The cell definition of a stored result, from its recorded config; None for a config that records no model
    (a partial record, which is then compared by its schedule alone)."""
    recorded = stored.get("config") or {}
    if "model" not in recorded:
        return None
    known = {field.name for field in dataclasses.fields(TrainConfig)}
    return cell_definition(config_from_dict({key: value for key, value in recorded.items() if key in known}))


def _same_cell(stored: dict[str, Any], requested: dict[str, Any]) -> bool:
    """Whether a stored cell definition is the requested one; a result over several seeds (``seeds``) stands for a
    request of one seed among them (its mean over seeds replaces the single run; the reverse does not hold)."""
    if "seeds" in stored and "seeds" not in requested:
        seeds = [int(s) for s in str(stored["seeds"]).split(",")]
        stored = {k: v for k, v in stored.items() if k not in ("seeds", "seed")}
        if requested.get("seed") not in seeds:
            return False
        requested = {k: v for k, v in requested.items() if k != "seed"}
    return stored == requested


def is_done(stored: dict[str, Any], request: dict[str, Any], *, redo: bool = False) -> bool:
    """Whether a stored result finishes a request: it is ``done``, was trained with the requested optimiser
    schedule (what the recipe resolves to, compared as trained, so a recipe whose definition changed does not
    claim results of the old one), is the same cell (``cell_definition``: a config whose temperatures changed
    does not claim the old result) and for at least the requested steps. A result is never replaced by a
    shorter or differently evaluated run unless ``redo``, which still requires the same request: same steps,
    k, test images, large-k evaluation, data and seed."""
    if stored.get("status") != "done":
        return False
    if optimiser_schedule(stored.get("config") or {}) != request["schedule"]:
        return False
    definition = _stored_definition(stored)
    if definition is not None and "definition" in request and not _same_cell(definition, request["definition"]):
        return False  # the cell's config changed since (e.g. its temperatures): the old result is not this cell
    if redo:
        def comparable(req: dict[str, Any]) -> dict[str, Any]:
            return {key: value for key, value in req.items() if key not in ("recipe", "schedule", "definition")}

        return comparable(stored.get("request") or {}) == comparable(request)
    return int(stored.get("steps") or 0) >= request["steps"]


@dataclasses.dataclass
class CellState:
    """Progress of one cell: ``pending``, ``skipped`` (done earlier), ``training``, ``evaluating``, ``done``,
    ``interrupted``, ``busy`` (another process holds its run folder) or ``not run``; ``detail`` says more
    (the step, the NLL, the reason)."""

    state: str = "pending"
    detail: str = ""


def uncommitted_changes(cwd: str | Path | None = None, paths: tuple[str, ...] = ("src", "configs")) -> list[str]:
    """Files under ``paths`` of the package's git checkout with uncommitted changes (tracked or not); empty
    outside a git checkout."""
    where = str(cwd or Path(__file__).resolve().parent)
    try:
        top = subprocess.run(["git", "rev-parse", "--show-toplevel"], cwd=where, capture_output=True, text=True,
                             check=True, timeout=10).stdout.strip()
        status = subprocess.run(["git", "status", "--porcelain", "--", *paths], cwd=top, capture_output=True,
                                text=True, check=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [line[3:] for line in status.splitlines() if line.strip()]


def repository_root(cwd: str | Path | None = None) -> Path | None:
    """The top of the git checkout the package runs from, or None."""
    where = str(cwd or Path(__file__).resolve().parent)
    try:
        top = subprocess.run(["git", "rev-parse", "--show-toplevel"], cwd=where, capture_output=True, text=True,
                             check=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return Path(top).resolve()


def check_clean_for_results(results: Path) -> None:
    """Refuse to record results into the repository's own results folder from a tree whose src/ or configs/
    have uncommitted changes (a result must name the commit that made it). Results written elsewhere (a
    scratch folder, the tests' temporary folders) are not recorded results and are allowed."""
    top = repository_root()
    if top is None:
        return
    try:
        Path(results).resolve().relative_to(top)
    except ValueError:
        return
    dirty = uncommitted_changes()
    if dirty:
        shown = ", ".join(dirty[:5]) + (f" and {len(dirty) - 5} more" if len(dirty) > 5 else "")
        raise ValueError(
            f"refusing to record results in {results} from a tree with uncommitted changes to src/ or configs/ "
            f"({shown}); commit them, or run long cells from a clean worktree of one commit "
            "(git worktree add ../table1-run HEAD), or pass --results to a folder outside the repository"
        )


def _portable(config: dict[str, Any]) -> dict[str, Any]:
    """A recorded config with its run folder relative to the working directory (a result names no machine)."""
    out = config.get("out")
    if isinstance(out, str) and os.path.isabs(out):
        config = {**config, "out": os.path.relpath(out)}
    return config


def git_commit(cwd: str | Path | None = None) -> str:
    """The commit of the working tree, with ``+dirty`` when src/ or configs/ have uncommitted changes (results
    and docs written by earlier cells in the same checkout do not change what the code computes), or
    ``unknown``."""
    where = str(cwd or Path(__file__).resolve().parent)
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=where, capture_output=True, text=True,
                                check=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return commit + ("+dirty" if uncommitted_changes(cwd) else "")


def cell_config(cell: Cell, options: ReproduceOptions) -> TrainConfig:
    """The cell's TOML config with the command's overrides (budget, data, run folder, validation)."""
    path = options.configs / f"{cell.name}.toml"
    config = load_config(path)
    schedule = recipe_overrides(options.recipe, cell.linear, discrete=cell.discrete_estimator is not None,
                                samples=cell.samples)
    overrides: dict[str, Any] = {**schedule, "progress": False}
    if options.steps is not None:
        overrides["steps"] = options.steps
    budget = overrides.get("steps", config.steps)
    decays = overrides.get("lr_schedule", config.lr_schedule) != "constant"
    # a decaying schedule is tied to its budget, so each budget is its own run folder (an interrupted run
    # still resumes in it); a constant-rate run can be extended in place with a larger --steps. The paper's
    # recipe has its own folder, so that it never resumes a tuned run's checkpoint at another learning rate.
    # A rate other than 1e-3 is in the name too (the folders of the runs at 1e-3 predate it and keep resuming).
    if decays:
        lr = overrides.get("lr", config.lr)
        rate = "" if lr == 1e-3 else f"-lr{lr:g}"
        folder = f"{cell.name}-{options.recipe}{rate}-{budget}"
    else:
        folder = cell.name if options.recipe == "tuned" else f"{cell.name}-{options.recipe}"
    if options.seeds is not None:  # the replicas of these seeds: their own folder
        overrides["seeds"] = options.seeds
        folder += f"-seeds{seed_label(parse_seeds(options.seeds))}"
    overrides["out"] = str(options.out / folder)
    if options.compile and cell.discrete_estimator is None:  # the estimators' objectives do not compile
        overrides["compile"] = True
    if decays:
        overrides["lr_decay_steps"] = budget
        if overrides.get("warmup_steps", config.warmup_steps) >= budget:  # a tiny budget (a smoke test)
            overrides["warmup_steps"] = budget // 10
    if options.data is not None:
        overrides["data"] = options.data
    steps = overrides.get("steps", config.steps)
    overrides["eval_every"] = options.eval_every or min(config.eval_every or steps, max(1, steps // 10))
    overrides["checkpoint_every"] = min(config.checkpoint_every or steps, overrides["eval_every"])
    if options.valid_images is not None:
        overrides["eval_images"] = options.valid_images
    if options.valid_k is not None:
        overrides["eval_k"] = options.valid_k
    return config_from_dict(overrides, config, source=f"reproduce options for {cell.name}")


def _evaluate(
    run: Path, trained: _TrainedModel, images: torch.Tensor, *, k: int, num_images: int | None,
    options: ReproduceOptions, label: str,
) -> tuple[Evaluation, torch.Tensor | None]:
    """-L_k of the trained model on all test images (``num_images`` None) or on the fixed subset of
    ``bound_subset``, and the per-image values: the evaluation ``concretelab
    evaluate`` runs (``evaluate_checkpoint``), cached in the run folder under a name
    that encodes every setting, reused when it is of the same checkpoint step, and saved batch by batch while it runs,
    so that an interrupted evaluation resumes. It runs on the cell's training device (``--device``)."""
    result = evaluate_checkpoint(run, trained.checkpoint, images, model=trained.model, checkpoint=trained.name,
                                 split="test", k=k, num_images=num_images, seed=options.eval_seed,
                                 batch_size=options.eval_batch_size, device=trained.device, reuse=True, label=label)
    return Evaluation.from_result(result), torch.tensor(result["per_image_nll"], dtype=torch.float64)


class _TrainedModel:
    """The checkpoint a cell is evaluated at, read and verified once (its step and devices at once; the model,
    rebuilt on ``device``, only when an evaluation is not cached)."""

    def __init__(self, path: Path, device: torch.device) -> None:
        self.checkpoint = load_checkpoint(path)
        self.name, self.step, self.device = path.stem, self.checkpoint.step, device
        self._model: torch.nn.Module | None = None

    def model(self) -> torch.nn.Module:
        if self._model is None:
            self._model = model_from_checkpoint(self.checkpoint, device=self.device)
        return self._model


def _curves(run: Path) -> dict[str, list[list[float]]]:
    rows = read_metrics(run / "metrics.jsonl")
    train_rows = [[row["step"], row["loss"]] for row in rows if "loss" in row]
    stride = max(1, -(-len(train_rows) // _CURVE_POINTS))
    thinned = train_rows[::stride]
    if train_rows and thinned[-1] != train_rows[-1]:
        thinned.append(train_rows[-1])
    valid = [[row["step"], row["valid_nll"]] for row in rows if "valid_nll" in row]
    return {"train_loss": thinned, "valid_nll": valid}


def run_cell(
    cell: Cell,
    options: ReproduceOptions,
    *,
    test_images: torch.Tensor,
    command: str,
    commit: str,
    update: Callable[[str, str], None] = lambda state, detail: None,
) -> dict[str, Any] | None:
    """Train (or resume) and evaluate one cell and write its result; None when training was interrupted
    by a signal (the checkpoint is saved; the next call resumes it)."""
    config = cell_config(cell, options)
    with run_lock(config.out):  # one writer per run folder, across training and evaluation
        return _run_cell_locked(cell, options, config, test_images=test_images, command=command, commit=commit,
                                update=update)


def _run_cell_locked(
    cell: Cell,
    options: ReproduceOptions,
    config: TrainConfig,
    *,
    test_images: torch.Tensor,
    command: str,
    commit: str,
    update: Callable[[str, str], None],
) -> dict[str, Any] | None:
    """Train (or resume) the cell, evaluate its best checkpoint (read once) at k and at the large k, and write the
    result; None when a signal interrupted training."""
    run = Path(config.out)
    resumed_from = saved_step(run)
    update("training", f"from step {resumed_from or 0} to {config.steps}")
    started = time.perf_counter()
    trained = train(config, resume=True)
    if trained.stopped_by_signal is not None:
        update("interrupted", f"at step {trained.step} (checkpoint saved)")
        return None
    if config.seeds is None:
        result = _evaluate_run(cell, options, config, trained, test_images=test_images, command=command,
                               commit=commit, resumed_from=resumed_from, started=started, update=update)
    else:  # each replica evaluated in its own folder, as the run of its seed
        by_seed = trained.best_valid_nll_by_seed or {}
        per_seed = []
        for seed in config.seed_list:
            replica = dataclasses.replace(config, seed=seed, seeds=None, out=str(replica_folder(run, seed)))
            one = dataclasses.replace(trained, best_valid_nll=by_seed.get(seed), out=Path(replica.out),
                                      best_valid_nll_by_seed=None)
            update("evaluating", f"seed {seed}")
            per_seed.append(_evaluate_run(cell, options, replica, one, test_images=test_images, command=command,
                                          commit=commit, resumed_from=resumed_from, started=started,
                                          update=lambda state, detail, seed=seed: update(state, f"seed {seed}: "
                                                                                         f"{detail}")))
        result = combine_seeds(per_seed, options.request(config), config)
    write_result(options.results, result)
    spread = "" if config.seeds is None else f" (mean of {len(config.seed_list)} seeds, sd {result['seed_sd']:.2f})"
    update("done", f"{result['test_nll']:.2f} nats{spread} (-L_{result['k']}, {trained.step} steps)")
    return result


def _evaluate_run(
    cell: Cell,
    options: ReproduceOptions,
    config: TrainConfig,
    trained: TrainResult,
    *,
    test_images: torch.Tensor,
    command: str,
    commit: str,
    resumed_from: int | None,
    started: float,
    update: Callable[[str, str], None],
) -> dict[str, Any]:
    """Evaluate the best checkpoint (read once) of the run folder ``config.out`` at k and at the large k; its
    result."""
    run = Path(config.out)
    last = run / "checkpoints" / "last.safetensors"
    best = run / "checkpoints" / "best.safetensors"
    device = resolve_device(config.device)
    evaluated = _TrainedModel(best if best.is_file() else last, device)
    update("evaluating", f"-L_{options.k}")
    total = test_images.shape[0]
    main, main_nll = _evaluate(run, evaluated, test_images, k=options.k, num_images=options.num_images,
                               options=options, label=cell.name)
    large, tightening = None, None
    if options.large_k is not None:
        update("evaluating", f"-L_{options.large_k} on {options.large_k_images} images")
        large, large_nll = _evaluate(run, evaluated, test_images, k=options.large_k,
                                     num_images=options.large_k_images, options=options, label=cell.name)
        subset = bound_subset(total, options.large_k_images, "test")
        tightening = k_tightening(main, main_nll, large, large_nll, subset)
    return _result(cell, options, config, trained, main, large, tightening, evaluated, command=command,
                   commit=commit, resumed_from=resumed_from, wall_seconds=time.perf_counter() - started)


def _result(
    cell: Cell, options: ReproduceOptions, config: TrainConfig, trained: TrainResult, main: Evaluation,
    large: Evaluation | None, tightening: dict[str, Any] | None, evaluated: _TrainedModel, *, command: str,
    commit: str, resumed_from: int | None, wall_seconds: float,
) -> dict[str, Any]:
    """The JSON result of a cell: what was trained, how it was evaluated, the numbers, and how to reproduce them."""
    eval_seconds = main.seconds + (large.seconds if large else 0.0)
    return {
        "cell": cell.name,
        "status": "done",
        "model": cell.model,
        "objective": cell.objective,
        "samples": cell.samples,
        "dataset": cell.dataset,
        "data": config.data,
        "table": cell.table,
        "beyond_paper": cell.beyond_paper,
        "steps": trained.step,
        "paper_steps": PAPER_STEPS,
        "k": main.k,
        "test_images": main.images,
        "test_nll": main.nll,
        "test_nll_stderr": main.stderr,
        "test_nll_ci95": list(main.ci95),
        "test_subset_seed": main.subset_seed,
        "large_k": None if large is None else large.to_dict(),
        "k_tightening": tightening,
        "paper_nll": cell.paper_nll,
        "checkpoint": main.checkpoint,
        "checkpoint_step": main.checkpoint_step,
        "best_valid_nll": trained.best_valid_nll,
        "valid_k": config.eval_k,
        "valid_images": config.eval_images,
        "train_seconds": trained.seconds,
        "eval_seconds": eval_seconds,
        "seconds": trained.seconds + eval_seconds,
        "wall_seconds_this_call": wall_seconds,
        "resumed_from": resumed_from,
        "device": describe_device(evaluated.device),
        "train_devices": evaluated.checkpoint.extra.get("devices"),  # [first step, device] per stretch
        "commit": commit,
        "command": command,
        "request": options.request(config),
        "recipe": options.recipe,
        "sampler": EXACT_SAMPLER,
        "config": _portable({key: value for key, value in config_to_dict(config).items() if value is not None}),
        "curves": _curves(Path(config.out)),
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def run_cells(
    cells: list[Cell],
    options: ReproduceOptions,
    *,
    command: str,
    commit: str | None = None,
    on_update: Callable[[dict[str, CellState]], None] = lambda states: None,
) -> dict[str, CellState]:
    """Run ``cells`` in order (see the module docstring); returns the final state of each.

    A cell that fails (an estimator the trainer does not support, a non-finite loss) is recorded as
    ``not run`` with the reason, and the next cell starts; an interrupted training stops the whole run."""
    commit = commit or git_commit()
    states = {cell.name: CellState() for cell in cells}

    def not_run(cell: Cell, error: Exception) -> None:
        reason = f"{type(error).__name__}: {error}"
        logger.warning("%s not run: %s", cell.name, reason)
        stored = load_result(options.results, cell)
        if not (stored and stored.get("status") == "done"):  # never replace a measured result
            write_result(options.results, not_run_result(cell, reason, commit=commit, command=command))
        states[cell.name] = CellState("not run", reason)

    configs: dict[str, TrainConfig] = {}
    for cell in cells:  # every config is read before any training (a missing file stops the run here)
        try:
            configs[cell.name] = cell_config(cell, options)
        except FileNotFoundError:
            raise
        except ValueError as error:  # a value this trainer rejects (e.g. an estimator it does not know)
            not_run(cell, error)
            continue
        stored = load_result(options.results, cell)
        if stored and is_done(stored, options.request(configs[cell.name]), redo=options.redo):
            states[cell.name] = CellState("skipped", f"done earlier: {stored['test_nll']:.2f} nats")
    on_update(states)
    datasets: dict[str, Any] = {}
    for cell in cells:
        if states[cell.name].state in ("skipped", "not run"):
            continue

        def update(state: str, detail: str, name: str = cell.name) -> None:
            states[name] = CellState(state, detail)
            on_update(states)

        data = configs[cell.name].data
        if data not in datasets:
            datasets[data] = load_dataset(data).test
        try:
            result = run_cell(cell, options, test_images=datasets[data], command=command, commit=commit,
                              update=update)
        except RunFolderBusyError as error:  # another process runs this cell: leave it (and its result) alone
            logger.warning("%s skipped: %s", cell.name, error)
            update("busy", str(error))
            continue
        except (ValueError, RuntimeError) as error:  # recorded, and the next cell runs
            not_run(cell, error)
            on_update(states)
            continue
        if result is None:
            break
    return states
