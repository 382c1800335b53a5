"""``concretelab data``: fetch binarized MNIST into the cache, or describe a ``--data`` value.

concretelab data fetch binarized-mnist [--from FOLDER] [--url URL] [--timeout S] [--force]
concretelab data info [SPEC]
"""

from __future__ import annotations

import argparse

from concretelab.cli import CLIError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("data", help="fetch data sets into the cache, describe a --data value")
    actions = parser.add_subparsers(dest="data_command", metavar="ACTION")
    actions.required = True

    from concretelab.data import BINARIZED_MNIST_URL

    fetch = actions.add_parser(
        "fetch",
        help="download (or import with --from) binarized MNIST into the user's cache, checksum-verified",
    )
    fetch.add_argument("dataset", choices=["binarized-mnist"], help="the data set to fetch")
    fetch.add_argument(
        "--from",
        dest="source",
        metavar="FOLDER",
        help="import a local copy instead of downloading: a folder of {train,valid,test}.amat[.gz] or an .npz",
    )
    fetch.add_argument("--url", default=BINARIZED_MNIST_URL, help="folder URL holding binarized_mnist_*.amat")
    fetch.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for the network (default 60)")
    fetch.add_argument("--force", action="store_true", help="replace a valid copy already in the cache")
    fetch.add_argument("--no-progress", action="store_true", help="hide the download progress bars")
    fetch.set_defaults(func=run_fetch)

    info = actions.add_parser("info", help="load a --data value and print its splits, pixel means and checksums")
    info.add_argument("spec", nargs="?", default="embedded", help="a --data value (default: embedded)")
    info.set_defaults(func=run_info)


def run_fetch(args: argparse.Namespace) -> int:
    from concretelab.data import FetchError, fetch_binarized_mnist

    try:
        path = fetch_binarized_mnist(
            source=args.source,
            url=args.url,
            timeout=args.timeout,
            force=args.force,
            progress=not args.no_progress,
        )
    except FetchError as error:
        raise CLIError(str(error)) from error
    print(f"binarized MNIST ready in {path}; use it with --data binarized-mnist")
    return 0


def run_info(args: argparse.Namespace) -> int:
    from concretelab.data import SPLITS, load_dataset
    from concretelab.data._files import sha256_of_array

    dataset = load_dataset(args.spec)
    print(f"name: {dataset.name}")
    print(f"source: {dataset.source}")
    print(f"image shape: {dataset.image_shape[0]} x {dataset.image_shape[1]}")
    print(f"dynamic binarization of train: {'yes' if dataset.dynamic_binarization else 'no'}")
    scale = 255.0 if dataset.dynamic_binarization else 1.0
    for split in SPLITS:
        images = dataset.split(split)
        mean = float(images.numpy().mean(dtype="float64")) / (scale if split == "train" else 1.0)
        print(f"{split}: {images.shape[0]} images, mean pixel {mean:.4f}, sha256 {sha256_of_array(images.numpy())}")
    return 0
