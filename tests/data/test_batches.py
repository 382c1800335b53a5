"""The resumable batch stream: epochs are permutations, and a resumed stream replays the uninterrupted one."""

from __future__ import annotations

import json

import pytest
import torch

from concretelab.data import BatchIterator, Dataset

N, BITS = 103, 7  # 103 images; pixels 0..6 spell each image's index in binary


def indexed_images(*, grey: bool = False) -> torch.Tensor:
    """(N, 16) uint8: the index in the first 7 pixels (0/1, or 0/255 as grey), the rest 0/1 or mid-grey."""
    bits = (torch.arange(N)[:, None] >> torch.arange(BITS)) & 1  # (N, 7)
    if not grey:
        rest = (torch.rand(N, 16 - BITS, generator=torch.Generator().manual_seed(0)) < 0.5).long()
        return torch.cat([bits, rest], dim=1).to(torch.uint8)
    return torch.cat([bits * 255, torch.full((N, 16 - BITS), 128)], dim=1).to(torch.uint8)


def decode(batch: torch.Tensor) -> list[int]:
    return (batch[:, :BITS].long() << torch.arange(BITS)).sum(dim=1).tolist()


def stream(iterator: BatchIterator, count: int) -> list[torch.Tensor]:
    return [next(iterator) for _ in range(count)]


def test_each_epoch_is_a_fresh_permutation():
    iterator = BatchIterator(indexed_images(), 10, seed=5)
    assert iterator.batches_per_epoch == 11
    epochs = []
    for _ in range(3):
        batches = stream(iterator, 11)
        assert [len(batch) for batch in batches] == [10] * 10 + [3]
        epochs.append([i for batch in batches for i in decode(batch)])
        assert sorted(epochs[-1]) == list(range(N))
    assert epochs[0] != epochs[1] != epochs[2]
    assert iterator.epoch == 2 and iterator.index == N


def test_batches_are_a_function_of_the_seed():
    same = stream(BatchIterator(indexed_images(), 16, seed=1), 9)
    again = stream(BatchIterator(indexed_images(), 16, seed=1), 9)
    assert all(torch.equal(a, b) for a, b in zip(same, again, strict=True))
    other = stream(BatchIterator(indexed_images(), 16, seed=2), 9)
    assert not all(torch.equal(a, b) for a, b in zip(same, other, strict=True))


@pytest.mark.parametrize("grey", [False, True], ids=["fixed", "dynamic"])
@pytest.mark.parametrize("stop", [1, 10, 11, 12, 30])
def test_resumed_stream_replays_the_uninterrupted_one(grey, stop):
    images = indexed_images(grey=grey)
    uninterrupted = stream(BatchIterator(images, 10, seed=3, dynamic_binarization=grey), 40)
    first = BatchIterator(images, 10, seed=3, dynamic_binarization=grey)
    head = stream(first, stop)
    state = json.loads(json.dumps(first.state_dict()))  # survives a JSON checkpoint
    resumed = BatchIterator(images, 10, seed=3, dynamic_binarization=grey)
    resumed.load_state_dict(state)
    tail = stream(resumed, 40 - stop)
    assert len(head + tail) == len(uninterrupted)
    for step, (expected, got) in enumerate(zip(uninterrupted, head + tail, strict=True)):
        assert torch.equal(expected, got), f"batch {step} differs after resuming at {stop}"


def test_dynamic_binarization_draws_fresh_pixels_per_epoch():
    iterator = BatchIterator(indexed_images(grey=True), N, seed=4, dynamic_binarization=True)
    first, second = next(iterator), next(iterator)  # one batch = one epoch, shuffled differently
    assert set(first.unique().tolist()) <= {0.0, 1.0}
    order_first, order_second = decode(first), decode(second)
    assert sorted(order_first) == sorted(order_second) == list(range(N))  # 0/255 pixels are exact
    by_image_first = first[torch.tensor(order_first).argsort()]
    by_image_second = second[torch.tensor(order_second).argsort()]
    assert not torch.equal(by_image_first[:, BITS:], by_image_second[:, BITS:])  # grey 128: new draws
    # 103 * 9 draws of Bernoulli(128/255): the frequency's standard error is 0.016; 6 sigma is 0.1
    assert abs(float(by_image_first[:, BITS:].mean()) - 128 / 255) < 0.1


def _agreement(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a == b).double().mean())


def test_dynamic_binarization_is_fresh_at_every_step_and_for_every_seed():
    # Constant grey-128 images, so the shuffle cannot make two batches differ: only the draws can. Two independent
    # Bernoulli(128/255) fields agree on a pixel with probability p² + (1 − p)² = 0.50002; over 20 x 784 pixels the
    # agreement's standard error is 0.0036, so 0.5 ± 0.03 is 8 of them. Reused draws would agree everywhere (1.0).
    images = torch.full((60, 784), 128, dtype=torch.uint8)

    def batches(seed: int, count: int) -> list[torch.Tensor]:
        return stream(BatchIterator(images, 20, seed=seed, dynamic_binarization=True), count)

    seed0, seed1 = batches(0, 6), batches(1, 6)  # 3 batches per epoch: two epochs each
    pairs = {
        "the next batch of the epoch": (seed0[0], seed0[1]),
        "the same position one epoch later": (seed0[0], seed0[3]),
        "the same step of another seed": (seed0[0], seed1[0]),
        "the same step of another seed, in the next epoch": (seed0[4], seed1[4]),
    }
    for what, (a, b) in pairs.items():
        assert abs(_agreement(a, b) - 0.5) < 0.03, f"{what}: the draws agree on {_agreement(a, b):.3f} of the pixels"
    for batch in seed0:
        assert abs(float(batch.mean()) - 128 / 255) < 0.03
    # and the stream is a function of the seed: the same seed draws the same pixels again
    assert all(torch.equal(a, b) for a, b in zip(seed0, batches(0, 6), strict=True))


def test_dataset_train_batches_follow_the_dataset_flag():
    grey = indexed_images(grey=True)
    data = Dataset("toy", grey, grey[:5, :] // 255, grey[:5] // 255, image_shape=(4, 4), dynamic_binarization=True)
    batches = data.train_batches(8, seed=0, dtype=torch.float64)
    batch = next(batches)
    assert batches.dynamic_binarization and batch.dtype == torch.float64 and tuple(batch.shape) == (8, 16)
    assert set(batch.unique().tolist()) <= {0.0, 1.0}


def test_drop_last_skips_the_short_batch():
    iterator = BatchIterator(indexed_images(), 25, seed=0, drop_last=True)
    assert iterator.batches_per_epoch == 4
    batches = stream(iterator, 8)
    assert all(len(batch) == 25 for batch in batches)
    assert len(set(decode(torch.cat(batches[:4])))) == 100 and iterator.epoch == 1


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"seed": 9}, r"saved seed=9 differs from this iterator's seed=3"),
        ({"batch_size": 7}, r"saved batch_size=7 differs"),
        ({"num_examples": 50}, r"saved num_examples=50 differs"),
        ({"index": 104}, r"expected epoch >= 0 and 0 <= index <= 103, got epoch=0, index=104"),
        ({"epoch": -1}, r"expected epoch >= 0"),
    ],
)
def test_load_state_dict_rejects_a_foreign_state(change, message):
    iterator = BatchIterator(indexed_images(), 10, seed=3)
    state = {**iterator.state_dict(), **change}
    with pytest.raises(ValueError, match=message):
        iterator.load_state_dict(state)


def test_load_state_dict_requires_the_position():
    with pytest.raises(ValueError, match=r"state lacks the keys \['epoch', 'index'\]"):
        BatchIterator(indexed_images(), 10, seed=3).load_state_dict({"seed": 3, "batch_size": 10, "num_examples": N})


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"batch_size": 0}, "batch_size must be an integer >= 1, got 0"),
        ({"seed": -1}, "seed must be an integer >= 0, got -1"),
        ({"batch_size": 200, "drop_last": True}, "batch_size=200 exceeds the 103 images"),
        ({"images": torch.zeros(3, 4)}, r"images must be a torch.uint8 tensor of shape \(N, D\), got torch.float32"),
    ],
)
def test_invalid_arguments_are_rejected(kwargs, message):
    arguments = {"images": indexed_images(), "batch_size": 10, "seed": 0, **kwargs}
    with pytest.raises(ValueError, match=message):
        BatchIterator(arguments.pop("images"), arguments.pop("batch_size"), **arguments)
