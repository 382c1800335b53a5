"""Datasets for concretelab: binarized MNIST, MNIST/Fashion-MNIST IDX files, and a resumable batch stream.

The whole public surface:

    from concretelab.data import load_dataset

    data = load_dataset("embedded")          # or "binarized-mnist", or a folder / .npz path
    data.train, data.valid, data.test        # (N, 784) torch.uint8 tensors
    data.train_mean                          # (784,) float32 pixel means, for the output-bias init
    batches = data.train_batches(100, seed=0)
    x = next(batches)                        # (100, 784) float32 0/1, binarized per batch if needed
    state = batches.state_dict()             # put it in the checkpoint; load_state_dict(state) resumes

- ``load_dataset`` resolves every ``--data`` value: ``embedded`` (default; 10,000/1,000/1,000
  evenly spaced images of binarized MNIST's splits, shipped in the package), ``binarized-mnist`` (the full
  data set in the user's cache, after ``concretelab data fetch binarized-mnist``), a folder of
  ``{train,valid,test}.amat[.gz]``, an ``.npz`` with arrays ``train``/``valid``/``test``, or a folder of
  MNIST/Fashion-MNIST IDX files (dynamically binarized).
- ``Dataset`` holds the splits, ``name``, ``image_shape``, ``dynamic_binarization`` and
  ``train_mean``; ``BatchIterator`` is its deterministic, resumable training stream;
  ``binarize`` draws ``Bernoulli(grey / 255)`` pixels from a caller's generator.
- ``fixed_subset`` picks a fixed random subset of a split (the binarized MNIST test set is not in random
  order, so its first images are not a sample of it).
- ``load_labelled_idx_folder`` reads MNIST/Fashion-MNIST images *with their class labels*
  (``LabelledImages``, grey levels as stored) for classification examples.
- ``fetch_binarized_mnist`` fills the cache (download or local import, checksum-verified);
  ``cache_dir`` is the cache root (``$XDG_CACHE_HOME/concretelab`` or ``~/.cache/concretelab``).

This package imports nothing else from concretelab. See docs/data.md for formats and checksums.
"""

from concretelab.data._files import cache_dir
from concretelab.data.batches import BatchIterator
from concretelab.data.dataset import SPLITS, Dataset, binarize
from concretelab.data.fetch import BINARIZED_MNIST_URL, FetchError, fetch_binarized_mnist
from concretelab.data.idx import LabelledImages, load_labelled_idx_folder
from concretelab.data.resolve import DATA_NAMES, load_dataset
from concretelab.data.subsets import SUBSET_RULE, SUBSET_SEED, fixed_subset

__all__ = [
    "BINARIZED_MNIST_URL",
    "DATA_NAMES",
    "SPLITS",
    "SUBSET_RULE",
    "SUBSET_SEED",
    "BatchIterator",
    "Dataset",
    "FetchError",
    "LabelledImages",
    "binarize",
    "cache_dir",
    "fetch_binarized_mnist",
    "fixed_subset",
    "load_dataset",
    "load_labelled_idx_folder",
]
