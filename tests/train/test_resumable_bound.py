"""An evaluation of L_k interrupted at any batch resumes from its state file to exactly the numbers of an
uninterrupted one, recomputing only the batches it had not finished; a state of another evaluation is not reused."""

from __future__ import annotations

import json
import logging
import math
import statistics
from pathlib import Path

import pytest
import torch

import concretelab.train.resumable_bound as resumable
from concretelab.models import build_model
from concretelab.objectives import discrete_bound_per_image
from concretelab.seeding import derive_seed
from concretelab.train import train
from concretelab.train.evaluate import evaluate_run, result_path
from concretelab.train.resumable_bound import images_digest, resumable_bound_per_image

from ._helpers import small_config

K, BATCH, N = 6, 40, 130  # 4 batches, the last one short


@pytest.fixture(scope="module")
def model() -> torch.nn.Module:
    torch.manual_seed(0)
    return build_model("8H-784V", train_mean=torch.full((784,), 0.3))


@pytest.fixture(scope="module")
def images() -> torch.Tensor:
    return (torch.rand(N, 784, generator=torch.Generator().manual_seed(1)) < 0.3).to(torch.uint8)


class Interrupt(Exception):
    pass


def _interrupting_after(batches: int, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Make the batch evaluation raise on call ``batches`` + 1; returns the list of batch sizes evaluated."""
    calls: list[int] = []

    def counted(model, x, k, **kwargs):
        if len(calls) == batches:
            raise Interrupt
        calls.append(x.shape[0])
        return discrete_bound_per_image(model, x, k, **kwargs)

    monkeypatch.setattr(resumable, "discrete_bound_per_image", counted)
    return calls


def test_each_batch_is_seeded_by_its_index(model, images, tmp_path) -> None:
    values, seconds = resumable_bound_per_image(model, images, K, state=tmp_path / "s.json", seed=3, batch_size=BATCH)
    assert values.dtype == torch.float64 and values.shape == (N,) and seconds > 0
    for b, start in enumerate(range(0, N, BATCH)):  # the same draws, one batch at a time
        generator = torch.Generator().manual_seed(derive_seed(3, "eval-batch", b))
        alone = discrete_bound_per_image(model, images[start : start + BATCH], K, generator=generator)
        assert torch.equal(values[start : start + BATCH], alone)
    assert bool((values < 0).all())  # log-probabilities of 784 binary pixels


@pytest.mark.parametrize("finished", [1, 2, 3])
def test_an_interrupted_evaluation_resumes_to_the_same_numbers(model, images, tmp_path, monkeypatch, finished) -> None:
    state = tmp_path / "state.json"
    reference, _ = resumable_bound_per_image(model, images, K, state=tmp_path / "ref.json", batch_size=BATCH)
    calls = _interrupting_after(finished, monkeypatch)
    with pytest.raises(Interrupt):
        resumable_bound_per_image(model, images, K, state=state, batch_size=BATCH, identity={"step": 7})
    saved = json.loads(state.read_text())
    assert len(saved["bounds"]) == finished * BATCH and saved["seconds"] > 0

    calls.clear()
    monkeypatch.setattr(resumable, "discrete_bound_per_image", lambda *a, **kw: _record(calls, *a, **kw))
    reported: list[int] = []
    seen: list[int] = []
    values, seconds = resumable_bound_per_image(model, images, K, state=state, batch_size=BATCH, identity={"step": 7},
                                                progress=seen.append, resumed=reported.append)
    assert torch.equal(values, reference)
    assert reported == [finished * BATCH]  # what the state already held
    assert sum(calls) == sum(seen) == N - finished * BATCH  # only the rest was computed
    assert seconds >= saved["seconds"]


def _record(calls: list[int], model, x, k, **kwargs):
    calls.append(x.shape[0])
    return discrete_bound_per_image(model, x, k, **kwargs)


@pytest.mark.parametrize("change", ["k", "seed", "batch", "identity", "images"])
def test_a_state_of_another_evaluation_is_not_reused(model, images, tmp_path, monkeypatch, change, caplog) -> None:
    state = tmp_path / "state.json"
    _interrupting_after(2, monkeypatch)
    with pytest.raises(Interrupt):
        resumable_bound_per_image(model, images, K, state=state, batch_size=BATCH, identity={"step": 7})
    monkeypatch.setattr(resumable, "discrete_bound_per_image", discrete_bound_per_image)
    k, seed, batch, identity, imgs = K, 0, BATCH, {"step": 7}, images
    if change == "k":
        k = K + 1
    elif change == "seed":
        seed = 1
    elif change == "batch":
        batch = BATCH // 2
    elif change == "identity":
        identity = {"step": 8}
    else:
        imgs = images.clone()
        imgs[5, 100] ^= 1
    resumed: list[int] = []
    with caplog.at_level(logging.WARNING, logger=resumable.__name__):
        values, _ = resumable_bound_per_image(model, imgs, k, state=state, seed=seed, batch_size=batch,
                                              identity=identity, resumed=resumed.append)
    assert resumed == [] and "of another evaluation" in caplog.text
    fresh, _ = resumable_bound_per_image(model, imgs, k, state=tmp_path / "fresh.json", seed=seed, batch_size=batch,
                                         identity=identity)
    assert torch.equal(values, fresh)


def test_an_unreadable_state_is_replaced(model, images, tmp_path, caplog) -> None:
    state = tmp_path / "state.json"
    state.write_text('{"bounds": [1.0, ')  # cut off mid-write by something other than this module
    with caplog.at_level(logging.WARNING, logger=resumable.__name__):
        values, _ = resumable_bound_per_image(model, images, K, state=state, batch_size=BATCH)
    assert "unreadable" in caplog.text and values.shape == (N,)
    assert json.loads(state.read_text())["bounds"] == values.tolist()


def test_digest_ignores_the_dtype_but_not_the_pixels(images) -> None:
    assert images_digest(images) == images_digest(images.float())
    other = images.clone()
    other[0, 0] ^= 1
    assert images_digest(other) != images_digest(images)


def test_evaluate_run_resumes_and_removes_its_state(tmp_path, monkeypatch) -> None:
    run = tmp_path / "run"
    train(small_config(run, steps=4))
    reference = evaluate_run(run, k=K, num_images=30, batch_size=10, checkpoint="last", progress=False)
    path = Path(reference["path"])
    path.unlink()
    _interrupting_after(2, monkeypatch)
    with pytest.raises(Interrupt):
        evaluate_run(run, k=K, num_images=30, batch_size=10, checkpoint="last", progress=False)
    partial = path.with_name(path.stem + ".partial.json")
    assert len(json.loads(partial.read_text())["bounds"]) == 20 and not path.exists()
    monkeypatch.setattr(resumable, "discrete_bound_per_image", discrete_bound_per_image)
    resumed = evaluate_run(run, k=K, num_images=30, batch_size=10, checkpoint="last", progress=False)
    assert resumed["nll"] == reference["nll"] and resumed["nll_stderr"] == reference["nll_stderr"]
    assert not partial.exists() and Path(resumed["path"]) == result_path(run, "test", K, "last", num_images=30,
                                                                                batch_size=10)


def test_evaluate_run_scores_a_fixed_random_subset_not_the_first_images(tmp_path) -> None:
    # The binarized MNIST test set is not in random order, so the first N images are not a sample of it; the embedded
    # test split keeps that order. --num-images N must score the same random N images for every run and seed.
    from concretelab.data import fixed_subset, load_dataset
    from concretelab.run import load_run

    run = tmp_path / "run"
    train(small_config(run, steps=4))
    result = evaluate_run(run, k=K, num_images=30, batch_size=10, checkpoint="last", progress=False)
    model, _ = load_run(run, checkpoint="last")
    test = load_dataset("embedded").test
    subset = fixed_subset(test.shape[0], 30, 0)
    assert subset is not None and subset.tolist() != list(range(30)) and subset.tolist() == sorted(set(subset.tolist()))
    expected, _ = resumable_bound_per_image(model, test[subset], K, state=tmp_path / "subset.json", batch_size=10)
    first, _ = resumable_bound_per_image(model, test[:30], K, state=tmp_path / "first.json", batch_size=10)
    assert result["nll"] == pytest.approx(-float(expected.mean()), abs=1e-9)
    assert abs(result["nll"] - -float(first.mean())) > 1e-3
    # the standard error over images (sample sd / sqrt(n)) and its normal 95% interval: the "±" of a one-seed result
    stderr = statistics.stdev((-expected).tolist()) / math.sqrt(30)
    assert result["nll_stderr"] == pytest.approx(stderr, rel=1e-9)
    assert result["nll_ci95"] == pytest.approx([result["nll"] - 1.96 * stderr, result["nll"] + 1.96 * stderr], rel=1e-9)
    # each image's value is kept, in the subset's order, in the file too (for paired comparisons)
    stored = json.loads(Path(result["path"]).read_text())
    assert stored["per_image_nll"] == pytest.approx((-expected).tolist(), abs=1e-9)
    assert (result["subset_seed"], result["n_images"]) == (0, 30) and "randperm" in result["subset_rule"]
    # the name encodes every setting that decides the number: batches of 10 (not the default 100) decide the samples
    assert Path(result["path"]).name == f"eval-test-k{K}-last-subset30-b10.json"
    # another evaluation seed draws other samples, on the same images
    other = evaluate_run(run, k=K, num_images=30, batch_size=10, checkpoint="last", seed=1, progress=False)
    assert other["subset_seed"] == 0 and other["nll"] != result["nll"]


def test_paired_difference_is_the_mean_difference_with_its_interval() -> None:
    from concretelab.train.evaluate import paired_difference

    first = [100.0, 110.0, 120.0, 130.0]
    second = [101.0, 111.0, 123.0, 131.0]  # differences 1, 1, 3, 1: mean 1.5, sample sd 1
    mean, half = paired_difference(first, second)
    assert mean == pytest.approx(1.5) and half == pytest.approx(1.96 * 1.0 / 2.0)
    # the images' own spread (10 nats apart) cancels: the unpaired intervals would be far wider
    assert half < 1.96 * float(torch.tensor(second).std()) / 2
    assert paired_difference(torch.tensor([1.0]), torch.tensor([3.0]))[0] == 2.0
    assert math.isnan(paired_difference([1.0], [3.0])[1])
    with pytest.raises(ValueError, match="equally long, non-empty sets of values, got 3 and 2"):
        paired_difference([1.0, 2.0, 3.0], [1.0, 2.0])
