"""Typed training configuration: a dataclass of commented defaults, overridden by a TOML file, then by
command-line flags.

This keeps nanoGPT's configurator behaviour (a named config file holds only its overrides, flags apply
last, values must match the type of the default, an unknown key is an error) without ``exec`` or module
globals: everything is a plain ``TrainConfig`` that can be built, checked and compared in a test.

Temperatures accept a number or a fraction written as a string (``"2/3"``), as in the paper's tables.
"""

from __future__ import annotations

import dataclasses
import math
import sys
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

import tomli_w

from concretelab.checks import parse_number
from concretelab.models.spec import parse_spec
from concretelab.schedules import paper_temperatures, parse_schedule
from concretelab.train.lr_schedule import LR_SCHEDULES
from concretelab.train.replicas import parse_seeds

__all__ = [
    "MUTABLE_ON_RESUME",
    "TrainConfig",
    "config_from_dict",
    "config_to_dict",
    "load_config",
    "parse_number",
    "resolve_config",
    "write_config",
]

_TEMPERATURE_FIELDS = ("prior_temperature", "posterior_temperature", "temperature_floor")


def default_temperatures(model: str, categories: int | None) -> tuple[float, float]:
    """(prior, posterior) temperatures for a model's units: the paper's for K = 2, 4, 8 (Maddison et al. 2017,
    App. C), the binary ones otherwise. K is ``categories``, or the model's default (10 for categorical-vae).
    A structured-prediction model, whose relaxed prior is also its proposal, gets the posterior's for both
    (``is_structured``; docs/objectives.md)."""
    k = categories if categories is not None else (10 if model == "categorical-vae" else 2)
    prior, posterior = paper_temperatures(k) if k in (2, 4, 8) else paper_temperatures(2)
    return (posterior, posterior) if is_structured(model) else (prior, posterior)


def is_structured(model: str) -> bool:
    """Whether ``model`` names a structured-prediction spec (``NV-...H-...-MV``), whose conditional prior is
    its proposal."""
    try:
        return parse_spec(model).structured
    except ValueError:  # another name build_model knows (categorical-vae), or not a spec at all
        return False


def _flag(name: str) -> str:
    """The command-line flag of a config key (``prior_temperature`` is ``--prior-temperature``)."""
    return "--" + name.replace("_", "-")


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Every setting of a training run (Maddison, Mnih & Teh 2017, Sec. 5 and App. C for the defaults)."""

    # --- model and objective ---
    model: str = "200H~784V"  # SBN spec string (or another name build_model knows); "~" = nonlinear
    activation: str = "tanh"  # hidden nonlinearity of an SBN's "~" maps: tanh | leaky_relu (slope 0.3, DisARM's)
    categories: int | None = None  # categories per latent unit (None: the model's default, 2 for SBNs);
    # with categories > 2 an SBN spec counts bits per layer (App. C: 240-bit layers)
    objective: str | None = None  # name in concretelab.objectives.OBJECTIVES; unset: relaxed, or with an
    # estimator the discrete objective ("discrete", the only value allowed beside one)
    estimator: str | None = None  # vimco | nvil | reinforce_loo | disarm: train the discrete objective of an SBN
    # with this estimator (see concretelab.train.discrete)
    samples: int = 1  # m, samples in the (multi-sample) training bound: 1, 5 or 50 in Table 1
    prior_temperature: float | None = None  # lambda of the relaxed prior; unset: the paper's for the units,
    # 1/2 binary, 2/3 4-ary, 2/5 8-ary (App. C; 1/2 for other K)
    posterior_temperature: float | None = None  # lambda of the relaxed posterior; unset: 2/3 binary, 1 4-ary,
    # 2/3 8-ary (and 2/3 for other K)
    prior_temperatures: str | None = None  # with --seeds: one prior temperature per seed, "0.5,0.5,1" (the
    # replicas of a temperature study in one process); unset: --prior-temperature for every replica
    posterior_temperatures: str | None = None  # with --seeds: one posterior temperature per seed, as above
    prior_schedule: str | None = None  # e.g. "exp:RATE:FLOOR[:START[:INTERVAL]]", "linear:START:END:STEPS"
    posterior_schedule: str | None = None  # as prior_schedule; unset: the constant temperature above
    learnable_temperature: bool = False  # learn both temperatures, starting from the values above
    temperature_floor: float = 0.05  # learned temperatures stay above this floor (softplus parametrisation)
    # --- data ---
    data: str = "embedded"  # embedded | binarized-mnist | a folder of .amat files | a folder of IDX files
    # --- optimisation ---
    steps: int = 1000  # optimizer steps (the paper: 1e7); can be raised when resuming
    batch_size: int = 64  # global batch size (split over data-parallel ranks and grad_accum shards)
    lr: float = 1e-4  # Adam step size; the paper uses 1e-4 for nonlinear and 3e-4 for linear SBNs
    lr_schedule: str = "constant"  # constant | cosine | linear (decay to 0 at lr_decay_steps); see train.lr_schedule
    warmup_steps: int = 0  # linear warmup from lr/warmup_steps to lr over the first N steps
    lr_decay_steps: int | None = None  # the step at which a decaying lr reaches 0 (None: steps)
    grad_accum: int = 1  # shards per process per step; world_size x grad_accum shards make one batch
    seed: int = 0  # seeds the initialisation, the data order and the sampling noise
    seeds: str | None = None  # train one independent replica per seed in one process: "0-7", "0,3,5" (unset:
    # one run of --seed); see concretelab.train.replicas. One seed is a plain run of that seed
    device: str = "auto"  # cpu | cuda | cuda:N | auto (cuda when available)
    cuda_graph: bool = False  # CUDA: capture the whole step (loss, backward, Adam) as one graph (train.graphed)
    compile: bool = False  # the relaxed loss as one torch.compile graph (train.compiled): same noise, fused passes
    threads: int | None = None  # torch.set_num_threads for the run (None: torch's default); 1 on a busy CPU
    flush_denormal: bool = True  # CPU: subnormal floats count as 0 (late m = 50 steps 2-3.6x faster; denormals)
    # --- validation, logging, checkpoints ---
    eval_every: int = 1000  # validate every N steps and at the end (0: never)
    eval_k: int = 100  # k of the importance-weighted bound L_k used for validation (L_100 as the paper)
    eval_images: int | None = None  # validate on a fixed random subset of N validation images (None: all of them)
    eval_batch_size: int = 100  # images per call of discrete_bound during validation
    eval_chunk_size: int | None = None  # samples per chunk inside discrete_bound (None: its default)
    log_every: int = 50  # write a metrics row every N steps (the hot loop reads the device only then)
    checkpoint_every: int = 1000  # write checkpoints/last.safetensors every N steps and at the end
    snapshot_steps: str | None = None  # also keep the checkpoint of these steps, "10000,50000": checkpoints/step-N
    progress: bool = True  # show a tqdm progress bar (it hides itself when stderr is not a terminal)
    tensorboard: bool = False  # also write the scalars and sample images as TensorBoard events in out/tensorboard
    out: str = "runs/default"  # run folder: config.toml, metrics.jsonl, checkpoints/

    @property
    def temperatures(self) -> tuple[float, float]:
        """(prior, posterior) temperatures: the values given, or where unset the paper's for the model's units
        (`default_temperatures`), resolved from ``model`` and ``categories`` whenever they are read."""
        prior, posterior = default_temperatures(self.model, self.categories)
        return (
            prior if self.prior_temperature is None else self.prior_temperature,
            posterior if self.posterior_temperature is None else self.posterior_temperature,
        )

    @property
    def replica_temperatures(self) -> list[tuple[float, float]]:
        """(prior, posterior) of each replica, in ``seed_list`` order: the lists where given, else the run's."""
        prior, posterior = self.temperatures
        count = len(self.seed_list)
        priors = _numbers(self.prior_temperatures) if self.prior_temperatures else [prior] * count
        posteriors = _numbers(self.posterior_temperatures) if self.posterior_temperatures else [posterior] * count
        return list(zip(priors, posteriors, strict=True))

    @property
    def seed_list(self) -> tuple[int, ...]:
        """The seeds of the run's replicas: those of ``seeds``, or ``(seed,)`` for a plain run."""
        if self.seeds is None:
            return (self.seed,)
        return tuple(int(s) for s in self.seeds.split(","))

    @property
    def lr_horizon(self) -> int:
        """The step at which a decaying learning rate reaches 0: ``lr_decay_steps``, or ``steps`` when unset."""
        return self.steps if self.lr_decay_steps is None else self.lr_decay_steps

    def __post_init__(self) -> None:
        _check_types(self)

        for name in ("prior_temperature", "posterior_temperature"):
            value = getattr(self, name)
            if value is not None and not (value > 0 and math.isfinite(value)):
                raise ValueError(f"{_flag(name)} must be a positive finite number, got {value}")
        if not self.temperature_floor > 0:
            raise ValueError(f"--temperature-floor must be positive, got {self.temperature_floor}")
        for name in ("prior_schedule", "posterior_schedule"):
            if getattr(self, name) is not None:
                if self.learnable_temperature:
                    raise ValueError(f"{_flag(name)} cannot be combined with --learnable-temperature")
                parse_schedule(getattr(self, name))  # raises ValueError naming the problem
        if self.learnable_temperature:
            for name, value in zip(("prior_temperature", "posterior_temperature"), self.temperatures, strict=True):
                if value <= self.temperature_floor:
                    raise ValueError(
                        f"{_flag(name)} ({value}) must exceed --temperature-floor "
                        f"({self.temperature_floor})"
                    )
        if self.activation not in ("tanh", "leaky_relu"):
            raise ValueError(f"--activation must be tanh or leaky_relu, got {self.activation!r}")
        if self.categories is not None and self.categories < 2:
            raise ValueError(f"--categories must be >= 2 or unset, got {self.categories}")
        positive = ("samples", "batch_size", "grad_accum", "eval_k", "eval_batch_size", "log_every")
        for name in positive:
            if getattr(self, name) < 1:
                raise ValueError(f"{_flag(name)} must be >= 1, got {getattr(self, name)}")
        for name in ("steps", "eval_every", "checkpoint_every"):
            if getattr(self, name) < 0:
                raise ValueError(f"{_flag(name)} must be >= 0, got {getattr(self, name)}")
        for name in ("eval_images", "eval_chunk_size", "threads"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise ValueError(f"{_flag(name)} must be >= 1 or unset, got {getattr(self, name)}")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise ValueError(f"--lr must be a positive finite number, got {self.lr}")
        if self.lr_schedule not in LR_SCHEDULES:
            raise ValueError(f"--lr-schedule must be one of {', '.join(LR_SCHEDULES)}, got {self.lr_schedule!r}")
        if self.warmup_steps < 0:
            raise ValueError(f"--warmup-steps must be >= 0, got {self.warmup_steps}")
        if self.lr_decay_steps is not None and self.lr_decay_steps <= self.warmup_steps:
            raise ValueError(
                f"--lr-decay-steps ({self.lr_decay_steps}) must exceed --warmup-steps ({self.warmup_steps}) or be unset"
            )
        _resolve_replicas(self)
        if self.batch_size % self.grad_accum:
            raise ValueError(
                f"--batch-size ({self.batch_size}) must be divisible by --grad-accum ({self.grad_accum})"
            )
        for name in ("model", "data", "out"):
            if not getattr(self, name).strip():
                raise ValueError(f"{_flag(name)} must not be empty")
        if not (self.device in ("auto", "cpu", "cuda") or self.device.startswith("cuda:")):
            raise ValueError(f"--device must be cpu, cuda, cuda:N or auto, got {self.device!r}")
        if self.snapshot_steps is not None:
            object.__setattr__(self, "snapshot_steps", ",".join(map(str, parse_snapshot_steps(self.snapshot_steps))))

    @property
    def snapshot_step_set(self) -> frozenset[int]:
        """The steps whose checkpoints are kept (``snapshot_steps``), as numbers."""
        return frozenset(parse_snapshot_steps(self.snapshot_steps)) if self.snapshot_steps else frozenset()


def parse_snapshot_steps(text: str) -> list[int]:
    """The steps of ``--snapshot-steps`` (``"10000,50000"``), sorted; ValueError naming the flag."""
    try:
        steps = sorted({int(part) for part in str(text).split(",") if part.strip()})
    except ValueError as error:
        raise ValueError(f"--snapshot-steps must be comma-separated step numbers such as 10000,50000, got "
                         f"{text!r}") from error
    if not steps or steps[0] < 1:
        raise ValueError(f"--snapshot-steps must hold step numbers >= 1, got {text!r}")
    return steps


def _numbers(text: str) -> list[float]:
    """The numbers of a comma-separated list such as ``"0.5,2/3,1"``."""
    return [parse_number(part.strip(), "temperature") for part in text.split(",")]


def _resolve_replicas(config: TrainConfig) -> None:
    """``--seeds`` in canonical form (one seed: a plain run of it, ``seed`` set) and the per-replica temperature
    lists checked against it; ValueError naming the flag."""
    if config.seeds is not None:
        seeds = parse_seeds(config.seeds)  # ValueError naming --seeds
        if len(seeds) == 1:  # one seed is a plain run of it
            object.__setattr__(config, "seed", seeds[0])
            object.__setattr__(config, "seeds", None)
        else:
            object.__setattr__(config, "seeds", ",".join(str(s) for s in seeds))
    for name in ("prior_temperatures", "posterior_temperatures"):
        if getattr(config, name) is not None:
            _check_temperature_list(config, name)


def _check_temperature_list(config: TrainConfig, name: str) -> None:
    """ValueError naming the flag where a per-replica temperature list cannot be used as given."""
    flag, single = _flag(name), _flag(name[:-1])
    if config.seeds is None:
        raise ValueError(f"{flag} gives one temperature per replica of --seeds; pass --seeds too (or {single} for "
                         "one run)")
    try:
        values = _numbers(getattr(config, name))
    except ValueError as error:
        raise ValueError(f"{flag} must be comma-separated numbers such as 0.5,1,2, got "
                         f"{getattr(config, name)!r}") from error
    if len(values) != len(config.seed_list):
        raise ValueError(f"{flag} has {len(values)} values for the {len(config.seed_list)} seeds of --seeds "
                         f"{config.seeds}; give one per seed, in the order of the seeds")
    if not all(value > 0 and math.isfinite(value) for value in values):
        raise ValueError(f"{flag} must hold positive finite numbers, got {getattr(config, name)!r}")
    side = name.split("_")[0]
    if getattr(config, name[:-1]) is not None or getattr(config, f"{side}_schedule") is not None:
        raise ValueError(f"{flag} cannot be combined with {single} or --{side}-schedule: give the one per seed")
    if config.learnable_temperature:
        raise ValueError(f"{flag} cannot be combined with --learnable-temperature")


# Keys a resumed run may change; every other key comes from the run's saved config (nanoGPT keeps the
# architecture of the checkpoint; we also keep the optimisation and data settings, for exact replay).
# eval_k and eval_images may change only before the first validation (train.preflight._check_resume).
MUTABLE_ON_RESUME = frozenset(
    {"steps", "device", "cuda_graph", "compile", "threads", "flush_denormal", "eval_every", "eval_k", "eval_images",
     "eval_batch_size", "eval_chunk_size", "log_every", "checkpoint_every", "snapshot_steps", "progress",
     "tensorboard", "out"}
)


def _field_types() -> dict[str, Any]:
    return typing.get_type_hints(TrainConfig)


def _allowed(annotation: Any) -> tuple[type, ...]:
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        return tuple(arg for arg in typing.get_args(annotation))
    return (annotation,)


def _check_types(config: TrainConfig) -> None:
    for name, annotation in _field_types().items():
        value = getattr(config, name)
        allowed = _allowed(annotation)
        if value is None and type(None) in allowed:
            continue
        if isinstance(value, bool) and bool not in allowed:
            ok = False
        elif float in allowed and isinstance(value, int):
            ok = True
        else:
            ok = isinstance(value, tuple(t for t in allowed if t is not type(None)))
        if not ok:
            expected = " or ".join("None" if t is type(None) else t.__name__ for t in allowed)
            raise ValueError(f"{_flag(name)} must be {expected}, got {value!r} ({type(value).__name__})")


def _coerce(name: str, value: Any) -> Any:
    """Convert a raw value (TOML or command line) to the field's type; the dataclass then checks it."""
    allowed = _allowed(_field_types()[name])
    if value is None:
        return None
    if name == "snapshot_steps" and isinstance(value, (list, tuple)):  # TOML: snapshot_steps = [10000, 50000]
        return ",".join(str(v) for v in value)
    if name == "seeds" and isinstance(value, (list, tuple)):  # TOML: seeds = [0, 1, 2]
        if any(isinstance(s, bool) or not isinstance(s, int) for s in value):
            raise ValueError(f"--seeds must hold integers, got {value!r}")
        return ",".join(str(s) for s in value)
    if name in ("prior_temperatures", "posterior_temperatures") and isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value)  # TOML: posterior_temperatures = [0.5, 1.0]
    if name == "seeds" and isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, str) and type(None) in allowed and value.strip().lower() in ("none", ""):
        return None
    if float in allowed and not isinstance(value, bool):
        if isinstance(value, (int, float)) or name in _TEMPERATURE_FIELDS or isinstance(value, str):
            return parse_number(value, name)
    if int in allowed and isinstance(value, str):
        try:
            return int(value)
        except ValueError as error:
            raise ValueError(f"{_flag(name)} must be an integer, got {value!r}") from error
    if bool in allowed and isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in ("true", "1", "yes"):
            return True
        if lowered in ("false", "0", "no"):
            return False
        raise ValueError(f"{_flag(name)} must be true or false, got {value!r}")
    if int in allowed and isinstance(value, float) and not isinstance(value, bool):
        raise ValueError(f"{_flag(name)} must be an integer, got {value!r}")
    return value


def config_from_dict(values: Mapping[str, Any], base: TrainConfig | None = None, source: str = "config") -> TrainConfig:
    """``base`` (the defaults when None) with ``values`` applied; unknown keys and wrong types raise."""
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(
            f"unknown configuration key {unknown[0]!r} in {source}; known keys: {', '.join(sorted(known))}"
        )
    coerced = {name: _coerce(name, value) for name, value in values.items()}
    return dataclasses.replace(base or TrainConfig(), **coerced)


def config_to_dict(config: TrainConfig) -> dict[str, Any]:
    """The configuration as a plain dict (None values included)."""
    return dataclasses.asdict(config)


def load_config(path: str | Path, base: TrainConfig | None = None) -> TrainConfig:
    """Read a TOML file of overrides (flat ``key = value`` lines) on top of ``base``."""
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"--config {str(path)!r} is a directory; expected a TOML file of key = value lines")
    if not path.is_file():
        raise FileNotFoundError(f"--config {str(path)!r}: no such file")
    try:
        values = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as error:
        raise ValueError(f"config file {str(path)!r} is not valid TOML: {error}") from error
    nested = [key for key, value in values.items() if isinstance(value, dict)]
    if nested:
        raise ValueError(f"config file {str(path)!r}: tables are not supported, found [{nested[0]}]")
    return config_from_dict(values, base, source=f"config file {str(path)!r}")


def write_config(config: TrainConfig, path: str | Path) -> None:
    """Write the resolved configuration as TOML (unset keys omitted), atomically."""
    from concretelab.train.io import atomic_write_bytes

    values = {k: v for k, v in config_to_dict(config).items() if v is not None}
    prior, posterior = config.temperatures
    header = (
        "# Resolved configuration of this run (written by concretelab train).\n"
        f"# Temperatures used: prior {prior:.6g}, posterior {posterior:.6g}"
        + (" (unset keys: the paper's for the units)\n" if config.prior_temperature is None
           or config.posterior_temperature is None else "\n")
    )
    atomic_write_bytes(Path(path), (header + tomli_w.dumps(values)).encode("utf-8"))


def resolve_config(
    *,
    config_file: str | Path | None = None,
    overrides: Mapping[str, Any] | None = None,
    base: TrainConfig | None = None,
) -> TrainConfig:
    """Defaults (or ``base``), then the TOML file, then ``overrides`` (the flags given on the command line)."""
    config = base or TrainConfig()
    if config_file is not None:
        config = load_config(config_file, config)
    if overrides:
        config = config_from_dict(overrides, config, source="command-line flags")
    return config
