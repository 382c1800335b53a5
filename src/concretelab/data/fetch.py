"""Download binarized MNIST into the user's cache, or import a local copy, with checksum verification.

The three ``.amat`` files are fetched from the address the ecosystem uses (Larochelle's public
folder, ``BINARIZED_MNIST_URL``) with ``urllib``, parsed, checked against the published array
checksums, and stored as one compressed ``.npz`` (uint8 arrays ``train``, ``valid``, ``test``) at
``concretelab.data.binarized_mnist.cache_file``, written atomically.
"""

from __future__ import annotations

import http.client
import io
import logging
import os
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
from tqdm import tqdm

from concretelab.data import binarized_mnist
from concretelab.data._files import atomic_write, gunzip_if_needed, write_npz
from concretelab.data.amat import parse_amat
from concretelab.data.dataset import SPLITS

__all__ = ["BINARIZED_MNIST_URL", "FetchError", "fetch_binarized_mnist"]

logger = logging.getLogger(__name__)

BINARIZED_MNIST_URL = "http://www.cs.toronto.edu/~larocheh/public/datasets/binarized_mnist/"
_CHUNK = 1 << 20


class FetchError(RuntimeError):
    """A download failed (offline, unreachable, HTTP error, incomplete transfer)."""


def fetch_binarized_mnist(
    *,
    source: str | os.PathLike[str] | None = None,
    url: str = BINARIZED_MNIST_URL,
    timeout: float = 60.0,
    force: bool = False,
    progress: bool = True,
) -> Path:
    """Put verified binarized MNIST into the cache and return the cache file's path.

    Args:
        source: a local copy to import instead of downloading: a folder of
            ``{train,valid,test}.amat[.gz]`` or an ``.npz`` with arrays ``train``, ``valid``, ``test``.
        url: the folder URL holding ``binarized_mnist_{train,valid,test}.amat`` (``http(s)://`` or
            ``file://``).
        timeout: seconds to wait for the connection and for each read.
        force: replace a cache file that is already present and valid.
        progress: show a tqdm progress bar per file (on stderr).

    Raises ``FetchError`` when a download fails, ``FileNotFoundError`` for a missing ``source`` and
    ``ValueError`` when the data are not binarized MNIST (wrong shape or checksum).
    """
    if timeout <= 0:
        raise ValueError(f"fetch_binarized_mnist: timeout must be > 0 seconds, got {timeout}")
    target = binarized_mnist.cache_file()
    if target.exists() and not force:
        try:
            binarized_mnist.read_npz(target)
        except ValueError as error:
            logger.warning("%s is damaged (%s); fetching again", target, error)
        else:
            logger.info("binarized MNIST is already in the cache: %s (use --force to replace it)", target)
            return target
    if source is not None:
        arrays = _import_local(Path(source))
    else:
        arrays = {split: _download_split(url, split, timeout=timeout, progress=progress) for split in SPLITS}
    atomic_write(target, lambda file: write_npz(file, arrays))
    logger.info("binarized MNIST verified and stored in %s", target)
    return target


def _import_local(source: Path) -> dict[str, np.ndarray]:
    if not source.exists():
        raise FileNotFoundError(f"--from {source}: no such file or folder")
    if source.is_dir():
        files = binarized_mnist.find_amat_files(source)
        if files is not None:
            arrays = {split: binarized_mnist.read_amat(path) for split, path in files.items()}
        else:
            npz = sorted(source.glob("*.npz"))
            if len(npz) != 1:
                raise FileNotFoundError(
                    f"--from {source}: expected {{train,valid,test}}.amat[.gz] files or a single .npz in this folder"
                )
            arrays = binarized_mnist.read_npz(npz[0])
    else:
        arrays = binarized_mnist.read_npz(source)
    for split in SPLITS:
        _require_full_split(split, arrays[split], source=str(source))
    return arrays


def _require_full_split(split: str, array: np.ndarray, *, source: str) -> None:
    """Raise unless ``array`` is the complete, checksum-verified ``split`` of binarized MNIST."""
    if not binarized_mnist.verify_split(split, array, source=source):
        expected = (binarized_mnist.NUM_IMAGES[split], binarized_mnist.NUM_PIXELS)
        raise ValueError(
            f"{source}: the {split} split has shape {array.shape}, expected {expected}; this is not the full "
            "binarized MNIST"
        )


def _download_split(url: str, split: str, *, timeout: float, progress: bool) -> np.ndarray:
    file_url = url.rstrip("/") + f"/binarized_mnist_{split}.amat"
    text = gunzip_if_needed(_download(file_url, timeout=timeout, progress=progress), source=file_url)
    array = parse_amat(text, width=binarized_mnist.NUM_PIXELS, source=file_url)
    _require_full_split(split, array, source=file_url)
    return array


def _download(url: str, *, timeout: float, progress: bool) -> bytes:
    """The body at ``url``, with a progress bar; ``FetchError`` with the reason when it cannot be had."""
    hint = (
        "check the network connection (this machine may be offline), or import a copy you already have "
        "with `concretelab data fetch binarized-mnist --from FOLDER`"
    )
    buffer = io.BytesIO()
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
            name = url.rsplit("/", 1)[-1]
            with tqdm(
                total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=name, disable=not progress
            ) as bar:
                while chunk := response.read(_CHUNK):
                    buffer.write(chunk)
                    bar.update(len(chunk))
    except urllib.error.HTTPError as error:
        raise FetchError(f"could not download {url}: the server answered HTTP {error.code} {error.reason}") from error
    except urllib.error.URLError as error:
        raise FetchError(f"could not download {url}: {error.reason}; {hint}") from error
    except (TimeoutError, ConnectionError, http.client.HTTPException) as error:
        reason = f"no answer within {timeout:g} s" if isinstance(error, TimeoutError) else repr(error)
        raise FetchError(f"could not download {url}: {reason}; {hint}") from error
    if total is not None and buffer.tell() != total:
        raise FetchError(f"could not download {url}: received {buffer.tell()} of {total} bytes; try again")
    return buffer.getvalue()
