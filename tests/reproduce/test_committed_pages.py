"""The committed generated pages are what their committed results render to: docs/leaderboard.md from
results/leaderboard/*.json and docs/RESULTS.md with docs/RESULTS-details.md from results/table1/*.json. A result
landed without its page, or a page edited by hand, fails here (figures are not compared: their bytes depend on the
matplotlib build). The count of cells that "Which estimator?" rests on is checked against the same results."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

from concretelab.reproduce.leaderboard import DEFAULT_STEPS, leaderboard_cells
from concretelab.reproduce.leaderboard_render import load_leaderboard, render_leaderboard
from concretelab.reproduce.render import render_results

REPO = Path(__file__).resolve().parents[2]


def _render_leaderboard(results: Path, docs: Path) -> str:
    return render_leaderboard(results, docs / "leaderboard.md", docs / "figures" / "leaderboard").read_text(
        encoding="utf-8")


def test_the_table1_pages_are_what_the_committed_results_render_to(tmp_path) -> None:
    docs = tmp_path / "docs"
    render_results(REPO / "results" / "table1", docs / "RESULTS.md", docs / "figures" / "table1")
    for page in ("RESULTS.md", "RESULTS-details.md"):
        rendered = (docs / page).read_text(encoding="utf-8")
        committed = (REPO / "docs" / page).read_text(encoding="utf-8")
        assert rendered == committed, f"docs/{page} is not what results/table1 renders to: re-render and commit it"


def test_the_leaderboard_page_is_what_the_committed_results_render_to_and_sees_a_changed_number(tmp_path) -> None:
    """Rendered from a copy of the results, the page is the committed one; with one number changed in the copy (the
    control), it is not."""
    copy = tmp_path / "results"
    shutil.copytree(REPO / "results" / "leaderboard", copy)
    committed = (REPO / "docs" / "leaderboard.md").read_text(encoding="utf-8")
    assert _render_leaderboard(copy, tmp_path / "docs") == committed, (
        "docs/leaderboard.md is not what results/leaderboard renders to: re-render and commit it")
    cell = sorted(copy.glob("*-K2.json"))[0]
    result = json.loads(cell.read_text())
    result["test_nll_100"]["mean"] += 1.0
    cell.write_text(json.dumps(result))
    assert _render_leaderboard(copy, tmp_path / "docs") != committed


def test_which_estimator_counts_the_finished_cells_it_rests_on() -> None:
    """docs/estimators.md's "Which estimator?" says how many of the leaderboard's cells it rests on; that count is
    written by hand at each landing, so it is checked against the committed results."""
    cells = {cell.name for cell in leaderboard_cells()}
    finished = {r["cell"] for r in load_leaderboard(REPO / "results" / "leaderboard")
                if r["cell"] in cells and r["steps"] == DEFAULT_STEPS}
    said = re.search(r"They rest on the first (\d+) of the \[leaderboard\]\(leaderboard\.md\)'s\s+(\d+)\s+cells",
                     (REPO / "docs" / "estimators.md").read_text(encoding="utf-8"))
    assert said, "docs/estimators.md no longer says how many cells Which estimator? rests on"
    assert (int(said.group(1)), int(said.group(2))) == (len(finished), len(cells))
