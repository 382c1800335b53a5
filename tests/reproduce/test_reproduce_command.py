"""`concretelab reproduce table1` end to end on a tiny budget (embedded data, a few steps, small k): the
generated RESULTS.md lists all 30 cells, the JSON results carry the promised fields, finished cells are
skipped and interrupted trainings resume from their checkpoints."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import pytest
import torch

import concretelab.reproduce.runner as runner
from concretelab.cli import main
from concretelab.reproduce.cells import TABLE1, cell_by_name
from concretelab.reproduce.recipes import RECIPES, recipe_family
from concretelab.reproduce.results import REQUIRED_FIELDS
from concretelab.reproduce.runner import cell_config
from concretelab.train import load_checkpoint

CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "table1"
RUN = ["200H-784V-m1-relaxed", "392V-240H-240H-392V-m5-relaxed"]


def _argv(tmp: Path, cells: list[str], steps: int, *extra: str) -> list[str]:
    return [
        "reproduce", "table1", "--cells", *cells, "--steps", str(steps), "--k", "4", "--num-images", "12",
        "--data", "embedded", "--valid-images", "8", "--configs", str(CONFIGS), "--out", str(tmp / "runs"),
        "--results", str(tmp / "results"), "--markdown", str(tmp / "RESULTS.md"),
        "--figures", str(tmp / "figures"), "--threads", "1", *(extra if "--recipe" in extra else
                                                                  (*extra, "--recipe", "paper")),
    ]


def _result(tmp: Path, name: str) -> dict:
    return json.loads((tmp / "results" / f"{name}.json").read_text())


def _rows(markdown: str) -> dict[str, str]:
    rows = {}
    for line in markdown.splitlines():
        match = re.match(r"\| `([^`]+)` \| ", line)
        if match and "|---" not in line and line.count("|") == 12:
            rows.setdefault(match.group(1), line)
    return rows


def test_table1_end_to_end(tmp_path: Path) -> None:
    status = main(_argv(tmp_path, [*RUN, "200H-784V-m5-vimco"], 3, "--large-k", "16", "--large-k-images", "6"))
    assert status == 0
    assert "| model | Concrete, m = 1 |" in (tmp_path / "RESULTS.md").read_text()  # the summary page
    markdown = (tmp_path / "RESULTS-details.md").read_text()  # and the per-cell rows beside it
    rows = _rows(markdown)
    assert {cell.name for cell in TABLE1} <= set(rows)  # every cell of the paper's table has a row
    for cell in TABLE1:
        row = rows[cell.name]
        assert f"| {cell.paper_nll:.1f} |" in row
        stored = tmp_path / "results" / f"{cell.name}.json"
        if cell.name in RUN:
            result = _result(tmp_path, cell.name)
            assert f"**{result['test_nll']:.2f}**" in row
            assert (tmp_path / "figures" / f"{cell.name}.png").stat().st_size > 1000
        elif stored.is_file() and _result(tmp_path, cell.name)["status"] == "done":  # once estimators land
            assert f"**{_result(tmp_path, cell.name)['test_nll']:.2f}**" in row
        else:
            assert "not run (" in row and "**" not in row
            if stored.is_file():  # tried, with the reason recorded
                reason = _result(tmp_path, cell.name)["reason"]
                assert reason and reason.split(":")[0] in row
    for name in RUN:
        result = _result(tmp_path, name)
        assert set(REQUIRED_FIELDS) <= set(result)
        cell = cell_by_name(name)
        assert (result["status"], result["model"], result["objective"]) == ("done", cell.model, cell.objective)
        assert (result["samples"], result["dataset"], result["paper_nll"]) == (cell.samples, "binarized-mnist",
                                                                              cell.paper_nll)
        assert (result["steps"], result["k"], result["test_images"]) == (3, 4, 12)
        assert isinstance(result["test_nll"], float) and 0 < result["test_nll"] < 1000
        low, high = result["test_nll_ci95"]
        assert low < result["test_nll"] < high
        large = result["large_k"]
        assert (large["k"], large["images"], large["subset_seed"]) == (16, 6, 0)
        assert large["ci95"][0] < large["nll"] < large["ci95"][1]
        assert result["seconds"] >= result["train_seconds"] > 0
        assert result["command"].startswith("concretelab reproduce table1 --cells")
        assert "--steps 3" in result["command"] and "--k 4" in result["command"]
        assert isinstance(result["commit"], str) and result["commit"]
        assert result["device"].startswith("cpu")
        assert result["train_devices"] == [[0, result["device"]]]  # one stretch of training, on this CPU
        assert [row[0] for row in result["curves"]["valid_nll"]][-1] == 3
        assert result["config"]["model"] == cell.model
        assert not Path(result["config"]["out"]).is_absolute()  # a result names no machine path


def test_tuned_recipe_runs_each_budget_in_its_own_folder(tmp_path: Path, monkeypatch) -> None:
    """A decaying learning rate is tied to its budget: an interrupted run resumes in its folder, a larger
    budget is a new run (the old one stays), and the result records the recipe."""
    name = "200H~784V-m1-relaxed"  # nonlinear: the tuned recipe decays (cosine)
    real_train = runner.train
    monkeypatch.setattr(runner, "train", interrupted_after_two_steps(real_train))
    assert main(_argv(tmp_path, [name], 5, "--recipe", "tuned")) == 130
    monkeypatch.setattr(runner, "train", real_train)
    assert main(_argv(tmp_path, [name], 5, "--recipe", "tuned")) == 0
    result = _result(tmp_path, name)
    assert (result["resumed_from"], result["steps"], result["recipe"]) == (2, 5, "tuned")
    assert result["config"]["lr_schedule"] == "cosine" and result["config"]["lr_decay_steps"] == 5
    assert main(_argv(tmp_path, [name], 7, "--recipe", "tuned")) == 0
    assert _result(tmp_path, name)["resumed_from"] is None  # a new run for the new budget
    assert {p.name for p in (tmp_path / "runs").iterdir() if p.is_dir()} == {f"{name}-tuned-5", f"{name}-tuned-7"}
    # a result of the paper's recipe is not a result of the tuned one, and the other way round; the tuned recipe
    # of a linear cell decays too (since 2026-11-30, docs/recipe.md), while the paper's constant rate is extended
    # in place in a folder of its own
    linear = cell_by_name("200H-784V-m1-relaxed")
    tuned = cell_config(linear, runner.ReproduceOptions(configs=CONFIGS, out=tmp_path, results=tmp_path, steps=5))
    paper = cell_config(linear, runner.ReproduceOptions(configs=CONFIGS, out=tmp_path, results=tmp_path, steps=5,
                                                        recipe="paper"))
    assert (tuned.lr, tuned.lr_schedule, paper.lr, paper.lr_schedule) == (1e-3, "cosine", 3e-4, "constant")
    assert (Path(tuned.out).name, Path(paper.out).name) == (f"{linear.name}-tuned-5", f"{linear.name}-paper")
    assert main(_argv(tmp_path, [name], 3, "--recipe", "paper")) == 0
    assert _result(tmp_path, name)["recipe"] == "paper"


def test_compile_applies_to_the_relaxed_cells_only(tmp_path: Path) -> None:
    options = runner.ReproduceOptions(configs=CONFIGS, out=tmp_path, results=tmp_path, steps=5, compile=True)
    assert cell_config(cell_by_name("200H-784V-m1-relaxed"), options).compile
    assert not cell_config(cell_by_name("200H-784V-m1-nvil"), options).compile
    assert not cell_config(cell_by_name("200H-784V-m1-relaxed"), runner.ReproduceOptions(
        configs=CONFIGS, out=tmp_path, results=tmp_path, steps=5)).compile


def interrupted_after_two_steps(real_train):
    """``runner.train`` as if SIGINT arrived at step 2: it trains 2 steps, saves, and reports the signal."""
    def train(config, *, resume=False):
        result = real_train(dataclasses.replace(config, steps=2), resume=resume)
        return dataclasses.replace(result, stopped_by_signal=2)

    return train


def test_finished_cells_are_skipped_and_interrupted_ones_resume(tmp_path: Path, monkeypatch) -> None:
    """With the paper's constant rate, a run is extended in place by a larger --steps."""
    name = "200H-784V-m1-relaxed"
    real_train = runner.train
    monkeypatch.setattr(runner, "train", interrupted_after_two_steps(real_train))
    assert main(_argv(tmp_path, [name], 5)) == 130
    assert not (tmp_path / "results" / f"{name}.json").exists()
    assert load_checkpoint(tmp_path / "runs" / f"{name}-paper" / "checkpoints" / "last.safetensors").step == 2

    monkeypatch.setattr(runner, "train", real_train)
    assert main(_argv(tmp_path, [name], 5)) == 0
    resumed = _result(tmp_path, name)
    assert (resumed["resumed_from"], resumed["steps"]) == (2, 5)

    # The same budget without the interruption gives the same parameters (the trainer's resume is exact).
    other = tmp_path / "uninterrupted"
    assert main(_argv(other, [name], 5)) == 0
    state = load_checkpoint(tmp_path / "runs" / f"{name}-paper" / "checkpoints" / "last.safetensors").model_state
    fresh = load_checkpoint(other / "runs" / f"{name}-paper" / "checkpoints" / "last.safetensors").model_state
    assert all(torch.equal(state[key], fresh[key]) for key in fresh)
    assert _result(other, name)["resumed_from"] is None

    # Done: a second call with the same request trains and evaluates nothing and keeps the result.
    def must_not_train(config, *, resume=False):
        raise AssertionError("a finished cell was trained again")

    monkeypatch.setattr(runner, "train", must_not_train)
    assert main(_argv(tmp_path, [name], 5)) == 0
    assert _result(tmp_path, name) == resumed
    # nor does a smaller budget or another k: a finished result is never replaced by a weaker request
    assert main(_argv(tmp_path, [name], 3, "--k", "6")) == 0
    assert _result(tmp_path, name) == resumed

    # A larger budget re-opens the cell and continues from its last checkpoint.
    monkeypatch.setattr(runner, "train", real_train)
    assert main(_argv(tmp_path, [name], 7)) == 0
    extended = _result(tmp_path, name)
    assert (extended["resumed_from"], extended["steps"]) == (5, 7)

    # --redo with another k re-evaluates the same checkpoint without training further.
    assert main(_argv(tmp_path, [name], 7, "--k", "6", "--redo")) == 0
    redone = _result(tmp_path, name)
    assert (redone["resumed_from"], redone["steps"], redone["k"]) == (7, 7, 6)
    assert redone["checkpoint_step"] == extended["checkpoint_step"]


def test_an_interrupted_evaluation_resumes_batch_by_batch(tmp_path: Path, monkeypatch) -> None:
    """Ctrl-C during the test bound keeps the batches done; the next call trains nothing, evaluates only the rest
    and records the numbers an uninterrupted run records."""
    import concretelab.train.resumable_bound as resumable

    name, real_bound = "200H-784V-m1-relaxed", resumable.discrete_bound_per_image
    argv = ["--eval-batch-size", "5"]  # 12 test images: batches of 5, 5 and 2
    calls: list[int] = []

    def interrupted_at_the_second_batch(model, x, k, **kwargs):
        if k != 4:  # validation during training (k = 100) uses the same bound; only the test evaluation counts
            return real_bound(model, x, k, **kwargs)
        if len(calls) == 1:
            raise KeyboardInterrupt
        calls.append(x.shape[0])
        return real_bound(model, x, k, **kwargs)

    monkeypatch.setattr(resumable, "discrete_bound_per_image", interrupted_at_the_second_batch)
    assert main(_argv(tmp_path, [name], 3, *argv)) == 130
    run = tmp_path / "runs" / f"{name}-paper"
    (partial,) = run.glob("eval-test-*.partial.json")  # the evaluation `concretelab evaluate` runs, and its name
    assert partial.name == "eval-test-k4-best-subset12-b5.partial.json"
    assert len(json.loads(partial.read_text())["bounds"]) == 5

    def counted(model, x, k, **kwargs):
        if k == 4:
            calls.append(x.shape[0])
        return real_bound(model, x, k, **kwargs)

    monkeypatch.setattr(resumable, "discrete_bound_per_image", counted)
    calls.clear()
    assert main(_argv(tmp_path, [name], 3, *argv)) == 0
    assert calls == [5, 2] and not list(run.glob("*.partial.json"))
    resumed = _result(tmp_path, name)
    assert "--eval-batch-size 5" in resumed["command"] and resumed["resumed_from"] == 3  # nothing trained again

    other = tmp_path / "uninterrupted"
    monkeypatch.setattr(resumable, "discrete_bound_per_image", real_bound)
    assert main(_argv(other, [name], 3, *argv)) == 0
    assert _result(other, name)["test_nll"] == resumed["test_nll"]
    assert _result(other, name)["test_nll_ci95"] == resumed["test_nll_ci95"]


def test_the_larger_k_is_compared_on_the_same_images(tmp_path: Path) -> None:
    """With the main bound on every test image, the result says how much the larger k lowers -L_k on the large-k
    subset itself (paired by image), and the page shows it."""
    from concretelab.data import fixed_subset

    name = "200H-784V-m1-relaxed"
    argv = _argv(tmp_path, [name], 3, "--large-k", "40", "--large-k-images", "50")
    del argv[argv.index("--num-images") : argv.index("--num-images") + 2]  # all 1,000 embedded test images
    assert main(argv) == 0
    result = _result(tmp_path, name)
    paired = result["k_tightening"]
    assert (paired["k"], paired["large_k"], paired["images"]) == (4, 40, 50)
    assert paired["nll_at_large_k"] == pytest.approx(result["large_k"]["nll"], abs=1e-9)
    cache = tmp_path / "runs" / f"{name}-paper" / "eval-test-k4-best.json"  # all test images: the short name
    per_image = torch.tensor(json.loads(cache.read_text())["per_image_nll"], dtype=torch.float64)
    assert per_image.shape == (1000,) and per_image.mean().item() == pytest.approx(result["test_nll"], abs=1e-9)
    subset = fixed_subset(1000, 50, 0)
    assert paired["nll_at_k"] == pytest.approx(per_image[subset].mean().item(), abs=1e-9)
    assert paired["difference"] == pytest.approx(paired["nll_at_k"] - paired["nll_at_large_k"], abs=1e-9)
    low, high = paired["difference_ci95"]
    assert low < paired["difference"] < high
    assert paired["difference"] > 0  # L_k rises with k in expectation; 40 vs 4 samples on an untrained model
    assert "lowers it by" in (tmp_path / "RESULTS-details.md").read_text()


def test_the_cli_repeats_the_runners_defaults_and_recipes() -> None:
    # The CLI repeats the runner's default (its parser is built without torch); a drift would give the same
    # evaluation two cache names and two seedings, depending on how it was started.
    from concretelab.cli import reproduce as cli_reproduce

    field = {f.name: f for f in dataclasses.fields(runner.ReproduceOptions)}["eval_batch_size"]
    assert cli_reproduce.EVAL_BATCH_SIZE == runner.DEFAULT_EVAL_BATCH_SIZE == field.default

    assert set(cli_reproduce.RECIPE_NAMES) == set(RECIPES)


def test_bad_cell_pattern_is_a_user_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(_argv(tmp_path, ["999H-*"], 2)) == 2
    assert "matches no cell" in capsys.readouterr().err


def test_a_cell_the_trainer_rejects_is_recorded_and_the_others_run(tmp_path: Path) -> None:
    configs = tmp_path / "configs"
    configs.mkdir()
    for path in CONFIGS.glob("*.toml"):
        (configs / path.name).write_text(path.read_text())
    bad = configs / "200H-784V-m5-relaxed.toml"
    bad.write_text(bad.read_text().replace("samples = 5", "samples = 0"))
    argv = _argv(tmp_path, ["200H-784V-m5-relaxed", "200H-784V-m1-relaxed"], 2)
    argv[argv.index("--configs") + 1] = str(configs)
    assert main(argv) == 0
    rejected = _result(tmp_path, "200H-784V-m5-relaxed")
    assert rejected["status"] == "not run" and "--samples must be >= 1" in rejected["reason"]
    assert rejected["test_nll"] is None
    assert _result(tmp_path, "200H-784V-m1-relaxed")["status"] == "done"
    row = _rows((tmp_path / "RESULTS-details.md").read_text())["200H-784V-m5-relaxed"]
    assert "not run (ValueError: --samples must be >= 1" in row


def test_jobs_run_cells_side_by_side(tmp_path: Path) -> None:
    cells = ["200H-784V-m1-relaxed", "200H~784V-m1-relaxed"]
    assert main(_argv(tmp_path, cells, 3, "--jobs", "2")) == 0
    for name in cells:
        result = _result(tmp_path, name)
        assert result["status"] == "done" and result["steps"] == 3
        assert "--threads 1" in result["command"]  # each worker runs one thread
        assert (tmp_path / "runs" / f"{name}.log").read_text().startswith("$ ")
    assert "200H~784V-m1-relaxed" in (tmp_path / "RESULTS-details.md").read_text()


def test_results_are_recorded_only_from_a_clean_tree(tmp_path: Path, monkeypatch, capsys) -> None:
    """Issue 9.3: the repository's results folder takes results only from a tree whose src/ and configs/ are
    committed; a scratch folder outside the repository is allowed."""
    monkeypatch.setattr(runner, "repository_root", lambda: tmp_path.resolve())
    monkeypatch.setattr(runner, "uncommitted_changes", lambda *_: ["src/concretelab/train/loop.py"])
    assert main(_argv(tmp_path, ["200H-784V-m1-relaxed"], 2)) == 2
    assert "uncommitted changes to src/ or configs/ (src/concretelab/train/loop.py)" in capsys.readouterr().err
    assert not (tmp_path / "results").exists() and not (tmp_path / "runs").exists()
    monkeypatch.setattr(runner, "repository_root", lambda: (tmp_path / "elsewhere").resolve())
    assert main(_argv(tmp_path, ["200H-784V-m1-relaxed"], 2)) == 0


def test_the_recorded_commit_is_dirty_only_for_changes_to_code_or_configs(tmp_path: Path) -> None:
    """A result written by an earlier cell into results/ of the same checkout must not mark the next cell's
    commit ``+dirty``; a change to src/ or configs/ must."""
    import subprocess

    def git(*args: str) -> None:
        subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True)

    git("init", "-q")
    for folder in ("src", "configs", "results"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "a.txt").write_text("0\n")
    git("add", ".")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "init")
    head = runner.git_commit(tmp_path)
    assert re.fullmatch(r"[0-9a-f]{40}", head)
    (tmp_path / "results" / "a.txt").write_text("1\n")
    assert runner.git_commit(tmp_path) == head
    (tmp_path / "configs" / "a.txt").write_text("1\n")
    assert runner.git_commit(tmp_path) == head + "+dirty"
    (tmp_path / "configs" / "a.txt").write_text("0\n")
    (tmp_path / "src" / "b.py").write_text("new\n")  # an untracked file in src/ changes what runs
    assert runner.git_commit(tmp_path) == head + "+dirty"


def test_valid_k_sets_the_bound_that_chooses_the_best_checkpoint(tmp_path: Path) -> None:
    from concretelab.cli import build_parser
    from concretelab.cli.reproduce import _worker_argv
    from concretelab.train.metrics import read_metrics

    name = "200H-784V-m1-relaxed"
    assert main(_argv(tmp_path, [name], 3, "--valid-k", "6")) == 0
    result = _result(tmp_path, name)
    assert result["valid_k"] == 6 and "--valid-k 6" in result["command"]
    rows = [r for r in read_metrics(tmp_path / "runs" / f"{name}-paper" / "metrics.jsonl") if "valid_nll" in r]
    assert rows and {r["valid_k"] for r in rows} == {6}
    # the config's k when unset; each --jobs worker repeats the flag
    default = cell_config(cell_by_name(name), runner.ReproduceOptions(configs=CONFIGS, out=tmp_path, results=tmp_path))
    assert default.eval_k == 100
    argv = _worker_argv(build_parser().parse_args(_argv(tmp_path, [name], 3, "--valid-k", "6", "--jobs", "2")))
    assert argv[argv.index("--valid-k") + 1] == "6"


def test_the_cosine_recipe_decays_every_model_in_a_folder_per_budget(tmp_path: Path) -> None:
    linear = cell_by_name("200H-200H-784V-m1-relaxed")
    options = runner.ReproduceOptions(configs=CONFIGS, out=tmp_path, results=tmp_path, steps=1000, recipe="cosine")
    config = cell_config(linear, options)
    assert (config.lr, config.lr_schedule, config.lr_decay_steps) == (1e-3, "cosine", 1000)
    assert config.warmup_steps == 100  # the 1,000-step warmup of a budget this small is cut to a tenth of it
    assert Path(config.out).name == "200H-200H-784V-m1-relaxed-cosine-1000"
    tuned = cell_config(linear, dataclasses.replace(options, recipe="tuned"))  # the same schedule, another name
    assert (tuned.lr, tuned.lr_schedule, tuned.warmup_steps) == (config.lr, config.lr_schedule, config.warmup_steps)
    assert Path(tuned.out).name == "200H-200H-784V-m1-relaxed-tuned-1000"
    with pytest.raises(ValueError, match="--recipe must be one of paper, tuned, cosine"):
        cell_config(linear, dataclasses.replace(options, recipe="fast"))


def test_vimco_and_nvil_on_nonlinear_models_at_m_up_to_5_train_at_a_smaller_rate(tmp_path: Path) -> None:
    """docs/recipe.md: at 1e-3 those cells overfit (200H~784V m = 5 VIMCO fitted its training images as well as
    Concrete and scored 3.2 nats worse on validation); the tuned recipe gives them 3e-4 with the same decay, in a
    folder whose name carries the rate, and every other cell keeps 1e-3 in the folder it always had."""
    options = runner.ReproduceOptions(configs=CONFIGS, out=tmp_path, results=tmp_path, steps=3000)

    def schedule(name: str, recipe: str = "tuned") -> tuple[float, str, str]:
        config = cell_config(cell_by_name(name), dataclasses.replace(options, recipe=recipe))
        return config.lr, config.lr_schedule, Path(config.out).name

    for name in ("200H~784V-m1-nvil", "200H~784V-m5-vimco", "200H~200H~784V-m1-nvil", "200H~200H~784V-m5-vimco"):
        assert schedule(name) == (3e-4, "cosine", f"{name}-tuned-lr0.0003-3000"), name
    for name in ("200H~784V-m50-vimco", "200H~784V-m1-relaxed", "200H~784V-m5-relaxed", "200H-784V-m5-vimco",
                 "200H-200H-784V-m1-nvil", "392V-240H-240H-392V-m5-vimco", "200H-784V-m1-disarm"):
        assert schedule(name) == (1e-3, "cosine", f"{name}-tuned-3000"), name
    # the other recipes have no such family: the paper's constant 1e-4 and the cosine experiment's 1e-3
    assert schedule("200H~784V-m5-vimco", "paper") == (1e-4, "constant", "200H~784V-m5-vimco-paper")
    assert schedule("200H~784V-m5-vimco", "cosine") == (1e-3, "cosine", "200H~784V-m5-vimco-cosine-3000")
    assert recipe_family(False, True, 5) == "nonlinear-discrete" and recipe_family(False, True, 50) == "nonlinear"
    assert recipe_family(True, True, 1) == "linear" and recipe_family(False, False, 1) == "nonlinear"
    # the committed 200H~784V m = 5 VIMCO result, trained at 1e-3, no longer counts as done for the tuned recipe
    vimco = cell_config(cell_by_name("200H~784V-m5-vimco"), options)
    at_1e3 = {"status": "done", "steps": 3000, "config": {"lr": 1e-3, "lr_schedule": "cosine", "warmup_steps": 1000}}
    assert not runner.is_done(at_1e3, options.request(vimco))
    assert runner.is_done({**at_1e3, "config": {**at_1e3["config"], "lr": 3e-4}}, options.request(vimco))


def test_a_result_counts_as_done_only_for_the_schedule_it_was_trained_with(tmp_path: Path, monkeypatch) -> None:
    """is_done compares what the recipe resolves to with the stored config, not the recipe's name: if a recipe's
    definition changes, the cells trained under the old one are run again instead of being skipped."""
    linear = cell_by_name("200H-200H-784V-m1-relaxed")
    options = runner.ReproduceOptions(configs=CONFIGS, out=tmp_path, results=tmp_path, steps=1000)
    config = cell_config(linear, options)  # the tuned recipe as it is defined now
    stored = {"status": "done", "steps": 1000, "request": options.request(config),
              "config": {key: getattr(config, key) for key in ("lr", "lr_schedule", "warmup_steps")}}
    assert runner.is_done(stored, options.request(config))
    assert runner.is_done(stored, options.request(config), redo=True)
    redefined = {"tuned": {"linear": {"lr": 5e-4, "lr_schedule": "linear", "warmup_steps": 10}, "nonlinear": {}}}
    monkeypatch.setattr("concretelab.reproduce.recipes.RECIPES", {**RECIPES, **redefined})
    changed = cell_config(linear, options)
    assert changed.lr_schedule == "linear"
    assert not runner.is_done(stored, options.request(changed))
    assert not runner.is_done(stored, options.request(changed), redo=True)
    # the same schedule under another recipe's name is the same training: done
    assert runner.is_done({**stored, "config": {"lr": 5e-4, "lr_schedule": "linear", "warmup_steps": 10}},
                          options.request(changed))
    # a config without the keys is the trainer's defaults (results written before the recipes existed)
    paper = dataclasses.replace(options, recipe="paper")
    paper_config = cell_config(linear, paper)
    assert runner.is_done({**stored, "config": {"lr": paper_config.lr}}, paper.request(paper_config))


def test_a_result_counts_as_done_only_for_the_cell_config_it_was_trained_with(tmp_path: Path) -> None:
    """A cell whose config changed (the structured relaxed cells went from temperatures (1/2, 2/3) to (2/3, 2/3))
    is run again: the stored result's recorded config, resolved as trained, must define the same cell."""
    options = runner.ReproduceOptions(configs=CONFIGS, out=tmp_path, results=tmp_path, steps=1000)

    def stored_for(config: runner.TrainConfig, **changes: object) -> dict:
        recorded = {key: value for key, value in dataclasses.asdict(config).items() if value is not None}
        return {"status": "done", "steps": 1000, "request": options.request(config), "config": {**recorded, **changes}}

    relaxed = cell_config(cell_by_name("392V-240H-240H-392V-m5-relaxed"), options)
    assert relaxed.temperatures == pytest.approx((2 / 3, 2 / 3))
    assert runner.is_done(stored_for(relaxed), options.request(relaxed))
    # 2/3 written as the float the old result recorded is the same temperature
    assert runner.is_done(stored_for(relaxed, posterior_temperature=0.6666666666666666), options.request(relaxed))
    assert not runner.is_done(stored_for(relaxed, prior_temperature=0.5), options.request(relaxed))
    assert not runner.is_done(stored_for(relaxed, prior_temperature=0.5), options.request(relaxed), redo=True)
    assert not runner.is_done(stored_for(relaxed, samples=1), options.request(relaxed))
    # an unset temperature reads as the default for the model's units: 1/2 for an SBN's prior
    sbn = cell_config(cell_by_name("200H-784V-m1-relaxed"), options)
    unset = {key: value for key, value in stored_for(sbn)["config"].items() if key != "prior_temperature"}
    assert runner.is_done({**stored_for(sbn), "config": unset}, options.request(sbn))
    assert not runner.is_done(stored_for(sbn, prior_temperature=2 / 3), options.request(sbn))
    # the discrete objective ignores the temperatures: a VIMCO result is not invalidated by them
    vimco = cell_config(cell_by_name("392V-240H-240H-392V-m5-vimco"), options)
    assert runner.is_done(stored_for(vimco, prior_temperature=0.1), options.request(vimco))
    assert not runner.is_done(stored_for(vimco, estimator="nvil"), options.request(vimco))


def test_a_cell_reads_the_checkpoint_it_evaluates_once(tmp_path: Path, monkeypatch) -> None:
    """Issue 30: the runner read the same checkpoint up to four times (its step before training, the model for each
    of the two evaluations, its devices for the result). Now the evaluated checkpoint is read and verified once,
    whatever the number of evaluations; the step before training comes from the header alone. (Every whole-file
    read of a checkpoint is counted, the trainer's own resume included.)"""
    reads: list[str] = []
    read_bytes = Path.read_bytes

    def counting(path: Path) -> bytes:
        if path.suffix == ".safetensors":
            reads.append(path.name)
        return read_bytes(path)

    monkeypatch.setattr(Path, "read_bytes", counting)
    argv = _argv(tmp_path, ["200H-784V-m1-relaxed"], 3, "--large-k", "8", "--large-k-images", "6")
    assert main(argv) == 0
    assert reads.count("best.safetensors") == 1, reads
    reads.clear()
    assert main([*argv, "--steps", "4"]) == 0  # trained on from its last checkpoint, evaluated again
    assert reads.count("best.safetensors") == 1 and reads.count("last.safetensors") == 1, reads  # + train's resume
    assert _result(tmp_path, "200H-784V-m1-relaxed")["train_devices"]


def test_reproduce_and_evaluate_run_one_evaluation(tmp_path: Path) -> None:
    """Issue 30, item 8: a cell's test bound is `concretelab evaluate`'s evaluation of its best checkpoint (same
    subset rule, seeding and cache file), so evaluating the run folder again gives the same number."""
    from concretelab.train.evaluate import evaluate_run

    name = "200H-784V-m1-relaxed"
    assert main(_argv(tmp_path, [name], 3)) == 0
    result = _result(tmp_path, name)
    run = tmp_path / "runs" / f"{name}-paper"
    again = evaluate_run(run, k=4, checkpoint="best", num_images=12, progress=False)
    assert again["nll"] == result["test_nll"] and again["checkpoint_step"] == result["checkpoint_step"]
    assert Path(again["path"]).name == "eval-test-k4-best-subset12.json"
    assert (result["test_subset_seed"], again["subset_seed"]) == (0, 0)


def test_seeds_train_a_cells_replicas_in_one_process_and_record_their_spread(tmp_path: Path) -> None:
    """--seeds: one run folder of replicas per cell, each seed evaluated as its own run, the mean over seeds with
    Student's t interval over seeds, and each seed's number kept."""
    status = main(_argv(tmp_path, ["200H-784V-m1-relaxed"], 3, "--seeds", "0-2", "--large-k", "8",
                        "--large-k-images", "6"))
    assert status == 0
    result = _result(tmp_path, "200H-784V-m1-relaxed")
    assert result["seeds"] == [0, 1, 2] and result["spread"] == "seeds"
    values = [replica["test_nll"] for replica in result["replicas"]]
    assert [replica["seed"] for replica in result["replicas"]] == [0, 1, 2]
    assert len(set(values)) == 3  # three different models
    mean = sum(values) / 3
    sd = (sum((v - mean) ** 2 for v in values) / 2) ** 0.5
    assert result["test_nll"] == pytest.approx(mean) and result["seed_sd"] == pytest.approx(sd)
    assert result["test_nll_ci95"] == pytest.approx([mean - 4.303 * sd / 3**0.5, mean + 4.303 * sd / 3**0.5])
    for replica in result["replicas"]:  # each seed's own evaluation, in its own folder
        assert replica["large_k"]["images"] == 6
        folder = tmp_path / "runs" / "200H-784V-m1-relaxed-paper-seeds0-2" / f"seed-{replica['seed']}"
        assert list(folder.glob("eval-test-k4-best-*.json"))
    assert result["request"]["definition"]["seeds"] == "0,1,2"
    assert result["config"]["seeds"] == "0,1,2"
    # done: a second call skips it; a single-seed request for the same cell is another request
    assert main(_argv(tmp_path, ["200H-784V-m1-relaxed"], 3, "--seeds", "0-2", "--large-k", "8",
                      "--large-k-images", "6", "--list")) == 0
    stored = json.loads((tmp_path / "results" / "200H-784V-m1-relaxed.json").read_text())
    options = dataclasses.replace(runner.ReproduceOptions(configs=CONFIGS, out=tmp_path / "runs",
                                                          results=tmp_path / "results", steps=3, k=4, num_images=12,
                                                          large_k=8, large_k_images=6, data="embedded",
                                                          valid_images=8, recipe="paper"), seeds="0-2")
    config = cell_config(cell_by_name("200H-784V-m1-relaxed"), options)
    assert runner.is_done(stored, options.request(config))
    # a result over seeds 0-2 stands for a request of seed 0 (its mean replaces the single run), not of seed 5
    single = dataclasses.replace(options, seeds=None)
    assert runner.is_done(stored, single.request(cell_config(cell_by_name("200H-784V-m1-relaxed"), single)))
    other = single.request(cell_config(cell_by_name("200H-784V-m1-relaxed"), single))
    other["definition"] = {**other["definition"], "seed": 5}
    assert not runner.is_done(stored, other)
    # and a single-seed result does not stand for a request of several seeds
    single_result = json.loads(json.dumps(stored))
    single_result["config"].pop("seeds")
    assert not runner.is_done(single_result, options.request(config))
    # the rendered row: the mean over seeds, each seed's number; the overview point: the seeds' mean and spread
    markdown = (tmp_path / "RESULTS-details.md").read_text()
    assert "(mean of 3 seeds, sd " in markdown and "seed 2: " in markdown
    from concretelab.reproduce.render import overview_point
    value, half, estimated = overview_point(result)  # 12 test images: no estimate on all of them, the seeds' -L_k
    assert not estimated and value == pytest.approx(mean) and half == pytest.approx(4.303 * sd / 3**0.5)


def test_list_says_where_each_cell_stands(tmp_path: Path, capsys) -> None:
    """--list: done (with its number), running (the run folder's lock file names a live process), stopped at the
    step of its last checkpoint, trained but not evaluated, or pending; read from files, nothing locked."""
    import os
    import socket

    from concretelab.train import train
    from concretelab.train.metrics import last_steps_per_s
    from concretelab.train.run_lock import LOCK_NAME

    assert main(_argv(tmp_path, ["200H-784V-m1-relaxed"], 4)) == 0
    assert main(_argv(tmp_path, ["200H-200H-784V-m1-relaxed"], 3)) == 0  # a result of another request
    options = runner.ReproduceOptions(configs=CONFIGS, out=tmp_path / "runs", results=tmp_path / "results", steps=4,
                                      k=4, num_images=12, data="embedded", valid_images=8, recipe="paper")
    stopped = cell_config(cell_by_name("200H~784V-m1-relaxed"), options)
    train(dataclasses.replace(stopped, steps=2))
    trained = cell_config(cell_by_name("200H-200H-784V-m1-relaxed"), options)
    train(trained, resume=True)  # from its 3 steps to 4
    capsys.readouterr()
    cells = ["200H-784V-m1-relaxed", "200H~784V-m1-relaxed", "200H-200H-784V-m1-relaxed", "200H~200H~784V-m1-relaxed"]

    def listed() -> dict[str, str]:
        assert main(_argv(tmp_path, cells, 4, "--list")) == 0
        rows = [line.split(None, 2) for line in capsys.readouterr().out.splitlines()[2:]]
        return {row[0]: " ".join(row[1:]) for row in rows}

    states = listed()
    assert states["200H-784V-m1-relaxed"].startswith("done ") and states["200H-784V-m1-relaxed"].endswith(
        " nats, 4 steps")
    assert states["200H~784V-m1-relaxed"] == "stopped step 2 of 4 (run it again to resume)"
    assert states["200H-200H-784V-m1-relaxed"] == "trained step 4 of 4, not evaluated (run it again to evaluate)"
    assert states["200H~200H~784V-m1-relaxed"] == "pending"
    holder = f"process {os.getpid()} on {socket.gethostname()}"
    (Path(stopped.out) / LOCK_NAME).write_text(holder + "\n")  # as a live run leaves it
    rate = last_steps_per_s(stopped.out)  # its last logged training row
    assert rate is not None and rate > 0
    assert listed()["200H~784V-m1-relaxed"] == (
        f"running step 2 of 4 ({holder}), about {2 / rate / 60:.0f} min of training left at {rate:.3g} steps/s")
