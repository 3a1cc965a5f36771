"""Rows from the Hugging Face hub, through the ``datasets`` library.

``REGENESIS_HUB_MIRROR`` names a folder of hub snapshots laid out as ``<owner>/<name>/`` (what
``huggingface-cli download --repo-type dataset owner/name --local-dir MIRROR/owner/name``
writes): a hub id found there is loaded from that folder, anything else from the hub itself.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from regenesis.errors import BadInput
from regenesis.tasks.readers import Row

MIRROR_VARIABLE = "REGENESIS_HUB_MIRROR"


def hub_location(hub_id: str) -> str:
    """The path ``datasets.load_dataset`` is given for ``hub_id``: a mirror folder or the id."""
    mirror = os.environ.get(MIRROR_VARIABLE)
    if mirror and (Path(mirror) / hub_id).is_dir():
        return str(Path(mirror) / hub_id)
    return hub_id


def hub_splits(hub_id: str, config: str | None = None) -> list[str]:
    """The split names of a hub dataset."""
    import datasets  # heavy: the datasets library

    try:
        return list(datasets.get_dataset_split_names(hub_location(hub_id), config))
    except Exception as exc:  # network, missing dataset or config: all fixable by the user
        raise _unreachable(hub_id, config, exc) from None


def hub_rows(hub_id: str, split: str, config: str | None = None) -> Iterator[Row]:
    """The records of one split of a hub dataset (one config of it, when it has several)."""
    dataset = _load(hub_id, config, split)
    where = f"{hub_id}[{config + '/' if config else ''}{split}]"
    for index, record in enumerate(dataset):
        yield Row(f"{where} row {index + 1}", index, dict(record))


def _load(hub_id: str, config: str | None, split: str):
    import datasets  # heavy: the datasets library

    try:
        return datasets.load_dataset(hub_location(hub_id), config, split=split)
    except ValueError as exc:  # an unknown split or config
        raise BadInput(f"hub dataset {hub_id}: {exc}") from None
    except Exception as exc:  # network, missing dataset: all fixable by the user
        raise _unreachable(hub_id, config, exc) from None


def _unreachable(hub_id: str, config: str | None, exc: Exception) -> BadInput:
    reason = str(exc).splitlines()[0] if str(exc) else ""
    return BadInput(f"could not load {hub_id}{' (' + config + ')' if config else ''} from the Hugging Face hub: "
                    f"{type(exc).__name__}: {reason}. Pass --data PATH (or --data-root DIR) to load a local "
                    f"copy instead")
