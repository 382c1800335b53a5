"""``--data`` specs: one resolver from a name or a path to a ``Dataset``."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from concretelab.data import binarized_mnist, embedded, idx
from concretelab.data.dataset import Dataset

__all__ = ["DATA_NAMES", "load_dataset"]

logger = logging.getLogger(__name__)

DATA_NAMES = (embedded.NAME, binarized_mnist.NAME)
_ACCEPTED = (
    "'embedded' (the default subset shipped with concretelab), 'binarized-mnist' (the fetched cache), a folder "
    "holding {train,valid,test}.amat[.gz] or an .npz with arrays train/valid/test, an .npz file, or a folder "
    "of MNIST/Fashion-MNIST IDX files (train-images-idx3-ubyte[.gz], t10k-images-idx3-ubyte[.gz])"
)


def load_dataset(spec: str | os.PathLike[str] = embedded.NAME) -> Dataset:
    """The dataset a ``--data`` value names.

    Args:
        spec: ``"embedded"`` (default; 10,000/1,000/1,000 evenly spaced binarized MNIST images, shipped in
            the package), ``"binarized-mnist"`` (the full data set, after ``concretelab data fetch
            binarized-mnist``), or a path: a folder of ``{train,valid,test}.amat[.gz]``, a folder with
            one ``.npz`` or an ``.npz`` file (arrays ``train``, ``valid``, ``test``), or a folder of IDX files.
            The names win over same-named relative paths; write ``./embedded`` for a folder.

    Raises ``FileNotFoundError`` (a missing path, an unfetched cache, a folder without recognised files)
    or ``ValueError`` (a malformed file, a checksum mismatch) with a message saying what was expected.
    """
    if isinstance(spec, str) and spec == embedded.NAME:
        return embedded.load_embedded()
    if isinstance(spec, str) and spec == binarized_mnist.NAME:
        path = binarized_mnist.cache_file()
        if not path.is_file():
            raise FileNotFoundError(
                f"--data binarized-mnist: the data set is not in the cache ({path}); download it with "
                "`concretelab data fetch binarized-mnist`, or import a local copy with `concretelab data fetch "
                "binarized-mnist --from FOLDER` (a folder of {train,valid,test}.amat[.gz]), or pass that folder "
                "as --data FOLDER"
            )
        dataset = binarized_mnist.load_npz(path)
        if dataset.name != binarized_mnist.NAME:
            raise ValueError(
                f"{path} does not hold the full binarized MNIST; replace it with "
                "`concretelab data fetch binarized-mnist --force`"
            )
        return dataset
    path = Path(spec).expanduser()
    if not path.exists():
        raise FileNotFoundError(f"--data {os.fspath(spec)}: no such file or folder; expected {_ACCEPTED}")
    if path.is_file():
        if path.suffix != ".npz":
            raise ValueError(f"--data {path}: a single file must be an .npz; expected {_ACCEPTED}")
        return binarized_mnist.load_npz(path)
    if binarized_mnist.find_amat_files(path) is not None:
        return binarized_mnist.load_folder(path)
    if idx.find_idx_files(path) is not None:
        return idx.load_idx_folder(path)
    npz = sorted(path.glob("*.npz"))
    if len(npz) == 1:
        return binarized_mnist.load_npz(npz[0], name=path.resolve().name)
    found = sorted(child.name for child in path.iterdir())[:10]
    raise FileNotFoundError(
        f"--data {path}: no recognised data files in this folder (found {found}); expected {_ACCEPTED}"
    )
