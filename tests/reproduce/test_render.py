"""The generated RESULTS.md: one row per cell, "not run (reason)" rows, and the beyond-paper comparison."""

from __future__ import annotations

from concretelab.reproduce.cells import CELLS, cell_by_name
from concretelab.reproduce.render import DEFAULT_NOT_RUN, render_markdown


def _done(name: str, nll: float, steps: int = 100) -> dict:
    cell = cell_by_name(name)
    return {
        "cell": name, "status": "done", "model": cell.model, "objective": cell.objective, "samples": cell.samples,
        "dataset": "binarized-mnist", "steps": steps, "k": 10, "test_images": 20, "test_subset_seed": 0,
        "test_nll": nll, "test_nll_ci95": [nll - 1.0, nll + 1.0], "paper_nll": cell.paper_nll, "seconds": 5.0,
        "train_seconds": 4.0, "eval_seconds": 1.0, "commit": "0123456789abcdef", "command": f"cmd {name}",
    }


def test_rows_reasons_commands_and_comparison() -> None:
    results = {
        "200H-784V-m1-relaxed": _done("200H-784V-m1-relaxed", 120.0),
        "200H-784V-m1-disarm": _done("200H-784V-m1-disarm", 118.5),
        "200H-200H-784V-m1-disarm": _done("200H-200H-784V-m1-disarm", 130.0, steps=50),
        "200H-200H-784V-m1-relaxed": _done("200H-200H-784V-m1-relaxed", 125.0),
        "392V-240H-240H-392V-m1-nvil": {"cell": "392V-240H-240H-392V-m1-nvil", "status": "not run",
                                        "reason": "ValueError: structured | not an SBN"},
    }
    text = render_markdown(results, {"200H-784V-m1-relaxed": "figures/x.png"})
    table = text.split("## Commands")[0]  # the per-cell tables (the run details below repeat names)
    rows = [line for line in table.splitlines() if line.startswith("| `")]
    assert sorted(row.split("`")[1] for row in rows) == sorted(cell.name for cell in CELLS)
    row = next(r for r in rows if r.startswith("| `200H-784V-m1-relaxed`"))
    assert "**120.00** ± 1.00 (+12.70)" in row and "100 (0.00% of 10^7)" in row and "[curve](figures/x.png)" in row
    assert "`0123456789`" in row
    nvil = next(r for r in rows if r.startswith("| `392V-240H-240H-392V-m1-nvil`"))
    assert "not run (ValueError: structured \\| not an SBN)" in nvil
    untouched = next(r for r in rows if r.startswith("| `200H~784V-m5-vimco`"))
    assert f"not run ({DEFAULT_NOT_RUN})" in untouched
    assert "cmd 200H-784V-m1-disarm" in text
    assert "118.50 vs 120.00 nats (difference -1.50" in text
    # issue 29: a comparison that mixes estimators says when it is not at equal compute (DisARM's antithetic pair)
    assert "not equal compute: decoder evaluations per image per step, disarm 2, Concrete at m = 1 1)" in text
    assert "`200H-200H-784V-m1-disarm` and `200H-200H-784V-m1-relaxed` differ in budget" in text


def test_old_sampler_dagger_and_the_gap_paragraph() -> None:
    old = _done("200H-784V-m1-relaxed", 120.0)  # no "sampler": measured before the exact sampler
    new = {**_done("200H~784V-m1-relaxed", 95.1, steps=1_000_000), "sampler": "float64-decided (7b4621d)",
           "recipe": "tuned", "config": {"lr": 1e-3, "lr_schedule": "cosine", "warmup_steps": 1000},
           "curves": {"valid_nll": [[200_000, 99.0], [600_000, 97.0], [800_000, 96.5], [1_000_000, 96.0]]}}
    text = render_markdown({"200H-784V-m1-relaxed": old, "200H~784V-m1-relaxed": new}, {})
    table = text.split("## Commands")[0]
    rows = {line.split("`")[1]: line for line in table.splitlines() if line.startswith("| `")}
    assert "(+12.70) †" in rows["200H-784V-m1-relaxed"] and "†" not in rows["200H~784V-m1-relaxed"].split("|")[6]
    assert "† marks a result measured before commit 7b4621d" in text
    assert "Rows marked † predate the exact sampler" in text
    # without a † row the page does not explain the mark
    clean = render_markdown({"200H~784V-m1-relaxed": new}, {})
    assert "†" not in clean and "What the gaps mean." in clean
    # the recipe's name and the schedule it trained with (a result without a config: the trainer's defaults)
    assert "1,000,000 (10.00% of 10^7), tuned recipe (lr 1e-3, cosine)" in rows["200H~784V-m1-relaxed"]
    assert "paper recipe (lr 1e-4, constant)" in rows["200H-784V-m1-relaxed"]
    # 800k is the last point within the first four fifths (96.5); the best is 96.0: still improving by 0.50
    assert ("\n- `200H~784V-m1-relaxed` is +3.00 nats from the paper with -L_10 after 10.0% of its steps; validation "
            "still fell 0.50 nats over its last fifth") in text
    # validation best early and worse since (the m = 50 cell of 2026-11-29): said so, not "still fell"
    worse = {**new, "curves": {"valid_nll": [[10_000, 119.97], [20_000, 120.83], [30_000, 121.35], [40_000, 121.32],
                                             [50_000, 121.42]]}}
    text = render_markdown({"200H~784V-m1-relaxed": worse}, {})
    assert "validation was best at step 10,000 and 1.45 nats worse at the end" in text and "still fell" not in text
    flat = {**new, "curves": {"valid_nll": [[10_000, 99.0], [40_000, 96.0], [50_000, 96.02]]}}
    assert "validation had levelled off" in render_markdown({"200H~784V-m1-relaxed": flat}, {})


def test_hand_written_notes_go_under_their_section(tmp_path) -> None:
    from concretelab.reproduce.render import render_results
    from concretelab.reproduce.results import write_result

    write_result(tmp_path / "results", _done("200H-784V-m1-relaxed", 108.0))
    (tmp_path / "results" / "notes").mkdir()
    (tmp_path / "results" / "notes" / "structured.md").write_text("Structured: a note about the gaps.\n")
    summary = render_results(tmp_path / "results", tmp_path / "RESULTS.md", tmp_path / "figures")
    page = (tmp_path / "RESULTS-details.md").read_text()  # the notes go on the details page
    assert "a note about the gaps" not in summary.read_text()
    structured = page.index("## Structured prediction")
    beyond = page.index("## Beyond the paper")
    assert structured < page.index("Structured: a note about the gaps.") < beyond
    assert page.count("a note about the gaps") == 1
    assert "Structured: a note" not in render_markdown({}, {})  # no notes, no text


def test_k_tightening_pairs_the_images() -> None:
    import torch

    from concretelab.reproduce.evaluation import Evaluation, k_tightening

    def evaluation(k: int, n: int, subset_seed: int | None) -> Evaluation:
        return Evaluation("test", k, n, subset_seed, "best", 10, 0.0, 0.0, (0.0, 0.0), 0, 1.0)

    main_nll = torch.arange(10, dtype=torch.float64) + 100.0
    subset = torch.tensor([1, 4, 7])
    large_nll = main_nll[subset] - torch.tensor([1.0, 2.0, 3.0])
    paired = k_tightening(evaluation(5, 10, None), main_nll, evaluation(50, 3, 0), large_nll, subset)
    assert (paired["k"], paired["large_k"], paired["images"]) == (5, 50, 3)
    assert paired["nll_at_k"] == 104.0 and paired["nll_at_large_k"] == 102.0 and paired["difference"] == 2.0
    low, high = paired["difference_ci95"]
    assert abs((high - low) / 2 - 1.96 * 1.0 / 3**0.5) < 1e-12  # the paired differences' sd is 1
    # no pairing when the main bound was itself on a subset, or a cache predates the kept values
    assert k_tightening(evaluation(5, 10, 0), main_nll, evaluation(50, 3, 0), large_nll, subset) is None
    assert k_tightening(evaluation(5, 10, None), None, evaluation(50, 3, 0), large_nll, subset) is None


def test_the_large_k_column_shows_the_paired_difference() -> None:
    result = _done("200H-784V-m1-relaxed", 108.0)
    result["large_k"] = {"k": 50000, "images": 1000, "nll": 106.1, "ci95": [104.7, 107.5]}
    result["k_tightening"] = {"k": 5000, "large_k": 50000, "images": 1000, "nll_at_k": 107.9, "nll_at_large_k": 106.1,
                              "difference": 1.8, "difference_ci95": [1.7, 1.9]}
    text = render_markdown({"200H-784V-m1-relaxed": result}, {})
    assert "-L_5,000 on the same images 107.90, so k = 50,000 lowers it by 1.80 [1.70, 1.90]" in text


def test_the_gap_paragraph_estimates_the_papers_quantity_from_the_paired_tightening() -> None:
    result = {**_done("200H-784V-m1-nvil", 106.0, steps=1_000_000), "sampler": "float64-decided (7b4621d)",
              "test_images": 10_000, "test_subset_seed": None, "test_nll_ci95": [105.5, 106.5],
              "large_k": {"k": 50000, "images": 1000, "nll": 104.97, "ci95": [103.4, 106.54]},
              "k_tightening": {"k": 5000, "large_k": 50000, "images": 1000, "nll_at_k": 105.54,
                               "nll_at_large_k": 104.97, "difference": 0.57, "difference_ci95": [0.45, 0.69]}}
    text = render_markdown({"200H-784V-m1-nvil": result}, {})
    # 106.0 - 0.57 = 105.43 (the paper: 104.4); half-width hypot(0.5, 0.12) = 0.514
    assert ("; estimated -L_50,000 on all 10,000 test images (-L_5,000 there less k's tightening on the subset, "
            "0.57): 105.43 ± 0.51, +1.03 from the paper after 10.0% of its steps") in text
    # a main bound on a subset, or no paired values: no estimate
    on_subset = {**result, "test_subset_seed": 0}
    assert "estimated -L_50,000" not in render_markdown({"200H-784V-m1-nvil": on_subset}, {})
    assert "estimated" not in render_markdown({"200H-784V-m1-nvil": {**result, "k_tightening": None}}, {})


def test_the_overview_plots_the_estimate_where_recorded_and_skips_results_before_the_exact_sampler(tmp_path) -> None:
    import matplotlib.image

    from concretelab.reproduce.render import overview_point, render_results
    from concretelab.reproduce.results import write_result

    exact = {**_done("200H~784V-m1-relaxed", 94.0, steps=1_000_000), "sampler": "float64-decided (7b4621d)",
             "test_images": 10_000, "test_subset_seed": None, "test_nll_ci95": [93.5, 94.5],
             "k_tightening": {"k": 5000, "large_k": 50000, "images": 1000, "nll_at_k": 93.4, "nll_at_large_k": 92.6,
                              "difference": 0.8, "difference_ci95": [0.7, 0.9]}}
    value, half, estimated = overview_point(exact)
    assert estimated and abs(value - 93.2) < 1e-12 and abs(half - (0.5**2 + 0.1**2) ** 0.5) < 1e-12
    without = {**exact, "k_tightening": None}
    assert overview_point(without) == (94.0, 0.5, False)  # -L_k with its own interval
    assert overview_point({**exact, "sampler": None}) is None  # the float32 sampler's results are not comparable
    assert overview_point({"cell": "x", "status": "not run"}) is None

    figures = tmp_path / "figures"
    page = render_results(tmp_path / "results", tmp_path / "RESULTS.md", figures).read_text()
    assert "overview" not in page and not (figures / "overview.png").exists()  # nothing measured, no figure
    write_result(tmp_path / "results", exact)
    page = render_results(tmp_path / "results", tmp_path / "RESULTS.md", figures).read_text()
    assert "![Every measured cell against the paper](figures/overview.png)" in page
    details = (tmp_path / "RESULTS-details.md").read_text()
    assert "on the cell that records it, the larger k lowered -L_k by 0.80 to 0.80 nats" in details
    image = matplotlib.image.imread(figures / "overview.png")
    assert image.shape[0] > 300 and image.shape[1] > 600


def test_a_call_that_only_evaluated_says_the_training_ran_earlier() -> None:
    fresh = {**_done("200H-784V-m1-relaxed", 120.0), "device": "cpu (x86_64)", "resumed_from": None}
    evaluated = {**_done("200H-784V-m5-relaxed", 110.0), "device": "cpu (x86_64)", "resumed_from": 100}
    resumed = {**_done("200H-784V-m50-relaxed", 100.0), "device": "cpu (x86_64)", "resumed_from": 60}
    text = render_markdown({r["cell"]: r for r in (fresh, evaluated, resumed)}, {})
    details = text.split("## Run details")[1].splitlines()
    row = {name: next(line for line in details if line.startswith(f"| `{name}`"))
           for name in ("200H-784V-m1-relaxed", "200H-784V-m5-relaxed", "200H-784V-m50-relaxed")}
    assert row["200H-784V-m5-relaxed"].startswith("| `200H-784V-m5-relaxed` | evaluated on cpu (x86_64); trained by an")
    assert "earlier call" not in row["200H-784V-m1-relaxed"] and "earlier call" not in row["200H-784V-m50-relaxed"]


def test_recorded_training_devices_are_named() -> None:
    cpu, gpu = "cpu (x86_64)", "NVIDIA H200, torch 2.11.0"
    same = {**_done("200H-784V-m1-relaxed", 120.0), "device": cpu, "train_devices": [[0, cpu]], "resumed_from": 100}
    moved = {**_done("200H-784V-m5-relaxed", 110.0), "device": cpu, "train_devices": [[0, gpu], [60, cpu]]}
    text = render_markdown({r["cell"]: r for r in (same, moved)}, {})
    details = text.split("## Run details")[1]
    assert f"| `200H-784V-m1-relaxed` | {cpu} |" in details
    moved_row = f"| `200H-784V-m5-relaxed` | trained on {gpu} from step 0, {cpu} from step 60; evaluated on {cpu} |"
    assert moved_row in details


def test_the_summary_page_is_table_1_in_the_papers_layout(tmp_path) -> None:
    """Issue 30, item 1: one compact table (models as rows; Concrete and VIMCO/NVIL at m = 1, 5, 50 as columns), each
    cell ``paper · ours · gap`` with the one headline number the overview figure plots too (the estimated -L_50,000
    where recorded, else -L_k marked ᵏ), a footnote mark on the deliberately changed structured Concrete cells, the
    details on a second page, and no lab-notebook words."""
    from concretelab.reproduce.render import overview_point, render_summary

    exact = {"sampler": "float64-decided", "test_subset_seed": None}  # measured with the exact sampler, all images
    estimated = {**_done("200H~784V-m1-relaxed", 94.0), **exact, "test_nll_ci95": [93.5, 94.5],
                 "k_tightening": {"k": 5000, "large_k": 50000, "difference": 0.8, "difference_ci95": [0.7, 0.9],
                                  "nll_at_k": 94.2, "nll_at_large_k": 93.4, "images": 1000}}
    plain = {**_done("200H-784V-m5-vimco", 105.0), **exact}
    structured = {**_done("392V-240H-240H-392V-m1-relaxed", 57.0), **exact}
    results = {r["cell"]: r for r in (estimated, plain, structured)}
    text = render_summary(results, {"overview": "figures/overview.png"})
    lines = text.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("| model |"))
    assert lines[header] == ("| model | Concrete, m = 1 | Concrete, m = 5 | Concrete, m = 50 | NVIL, m = 1 "
                             "| VIMCO, m = 5 | VIMCO, m = 50 |")
    rows = {line.split("`")[1]: line.split(" | ") for line in lines[header + 2 : header + 7]}
    assert set(rows) == {"200H-784V", "200H-200H-784V", "200H~784V", "200H~200H~784V", "392V-240H-240H-392V"}
    value = overview_point(estimated)[0]  # 93.2: the figure's number is the table's
    assert rows["200H~784V"][1] == f"92.1 · **{value:.1f}** · +{value - 92.1:.1f}"
    assert rows["200H-784V"][5] == "101.9 · **105.0**ᵏ · +3.1"  # no paired tightening: -L_k, marked
    assert rows["392V-240H-240H-392V"][1] == "58.5 · **57.0**ᵏᵗ · −1.5"  # one temperature: footnote t
    assert rows["200H-784V"][1] == "107.3 · not run · –"
    assert "ᵗ **One temperature for the structured Concrete cells.**" in text
    assert "](RESULTS-details.md)" in text and "![Every measured cell against the paper](figures/overview.png)" in text
    for word in ("issue", "queued", "worktree"):
        assert word not in text.lower()


def test_a_result_over_seeds_shows_the_seeds_large_k_and_the_mean_of_their_estimates() -> None:
    """Over seeds: the larger-k column and the estimate of the paper's quantity are means over the seeds, with
    Student's t intervals over seeds (t_{2, 0.975} = 4.303 for 3 seeds)."""
    def replica(seed: int, nll: float, large: float, tightening: float) -> dict:
        return {"seed": seed, "test_nll": nll, "test_nll_ci95": [nll - 0.5, nll + 0.5], "test_subset_seed": None,
                "large_k": {"k": 50000, "images": 1000, "nll": large, "ci95": [large - 1.4, large + 1.4]},
                "k_tightening": {"k": 5000, "large_k": 50000, "images": 1000, "nll_at_k": large + tightening,
                                 "nll_at_large_k": large, "difference": tightening,
                                 "difference_ci95": [tightening - 0.1, tightening + 0.1]}}

    replicas = [replica(0, 108.0, 106.0, 1.0), replica(1, 108.5, 106.2, 1.2), replica(2, 107.5, 105.8, 0.8)]
    result = {**_done("200H-784V-m1-relaxed", 108.0, steps=1_000_000), "sampler": "float64-decided (7b4621d)",
              "test_images": 10_000, "test_subset_seed": None, "test_nll_ci95": [106.76, 109.24], "seed_sd": 0.5,
              "replicas": replicas, "large_k": None, "k_tightening": None}
    text = render_markdown({"200H-784V-m1-relaxed": result}, {})
    # large k: mean 106.0, sd 0.2 -> 4.303 * 0.2 / sqrt(3) = 0.50; tightening: mean 1.0, sd 0.2 -> 0.50
    assert ("106.00 ± 0.50 (L_50,000, 1,000 images, mean of 3 seeds); k = 50,000 lowers -L_5,000 on the same "
            "images by 1.00 ± 0.50") in text
    # estimates 107.0, 107.3, 106.7: mean 107.0, sd 0.3 -> 0.75; the paper's 107.3
    assert ("mean of 3 seeds: 107.00 ± 0.75, -0.30 from the paper") in text
