"""-L_k at the main k on the large-k subset of finished Table 1 cells whose results predate ``k_tightening``.

A result's large-k column is -L_50000 on a fixed 1,000-image subset of the test set, and its main column -L_5000
on all 10,000 images; their difference mixes what the larger k changes with how the subset's mean differs from
the whole test set's. This evaluates -L_5000 (the result's own k and seed) on exactly the subset's images from the
cell's evaluated checkpoint, so that

    (-L_5000 on all) - (-L_5000 on the subset)      is the subset's own offset, and
    (-L_5000 on the subset) - (-L_50000 on it)      is what k = 50,000 changes (not paired by image here: the
                                                    -L_50000 values of these results were kept only as a mean).

Results written by the current code carry the paired version (``k_tightening``) and need none of this.

    python scripts/k_on_subset.py --runs ../runs/table1 200H-784V-m1-relaxed 200H-784V-m5-vimco
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from concretelab.data import fixed_subset, load_dataset
from concretelab.reproduce.evaluation import load_trained_model
from concretelab.train.resumable_bound import resumable_bound_per_image

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("cells", nargs="+")
    parser.add_argument("--runs", type=Path, default=Path("../runs/table1"), help="folder of the cells' run folders")
    parser.add_argument("--results", type=Path, default=REPO / "results" / "table1")
    parser.add_argument("--data", default="../shared/data/binarized_mnist")
    args = parser.parse_args()
    test = load_dataset(args.data).test
    print("| cell | -L_k on all | -L_k on the subset (subset offset) | -L_K on the subset | K's change |")
    print("|---|---|---|---|---|")
    for cell in args.cells:
        result = json.loads((args.results / f"{cell}.json").read_text())
        large = result["large_k"]
        folder = args.runs / Path(result["config"]["out"]).name
        model, step = load_trained_model(folder / "checkpoints" / f"{result['checkpoint']}.safetensors")
        if step != result["checkpoint_step"]:
            raise SystemExit(f"{cell}: the checkpoint in {folder} is at step {step}, the result's at "
                             f"{result['checkpoint_step']}")
        subset = fixed_subset(test.shape[0], large["images"], large["subset_seed"])
        with tempfile.TemporaryDirectory() as scratch:
            bounds, _ = resumable_bound_per_image(model, test[subset], result["k"], state=Path(scratch) / "s.json",
                                                  seed=large["seed"])
        on_subset = float(-bounds.mean())
        print(f"| `{cell}` | {result['test_nll']:.2f} | {on_subset:.2f} ({on_subset - result['test_nll']:+.2f}) | "
              f"{large['nll']:.2f} | {large['nll'] - on_subset:+.2f} |", flush=True)


if __name__ == "__main__":
    main()
