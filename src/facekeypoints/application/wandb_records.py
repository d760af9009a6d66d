"""Read back what a Weights & Biases run wrote in offline mode, without a W&B server.

wandb 0.2x/0.3x in offline mode writes no ``wandb-summary.json`` or ``config.yaml``: a run
directory ``DIR/wandb/offline-run-<time>-<id>/`` holds the run's records in one binary
``run-<id>.wandb`` file (what ``wandb sync`` uploads later), plus the files the run saved
under ``files/``. ``wandb.Api`` reads runs from a server only, so this module reads that
file: a 7-byte header (``:W&B``, a magic number, a version) and then records in 32 KiB
blocks, each a 7-byte header (checksum, length, full/first/middle/last) and a piece of a
protobuf message, decoded with wandb's own ``wandb.proto.wandb_internal_pb2.Record``.

A resumed run (the same id) writes another directory; :func:`read_wandb_run` reads them in
order, a later value at the same step replacing the earlier one (as ``wandb sync`` of the
resumed run does). Needs the ``wandb`` package (``pip install 'facekeypoints[tracking]'``).

Examples
--------
>>> from facekeypoints.wandb_records import wandb_run_dirs
>>> wandb_run_dirs("no/such/dir", "abc123")
[]
"""
from __future__ import annotations

import json
import os
import struct
from pathlib import Path
from typing import Any, Iterator

__all__ = ["WandbRecordError", "wandb_run_dirs", "wandb_records", "wandb_run_written",
           "read_wandb_run"]

_HEADER = b":W&B"
_HEADER_SIZE = 7
_BLOCK = 32 * 1024
_CHUNK_HEADER = 7
_FULL, _FIRST, _MIDDLE, _LAST = 1, 2, 3, 4


class WandbRecordError(ValueError):
    """A ``.wandb`` file that is not one, or cut short; the message names the file."""


def wandb_run_dirs(directory: str | os.PathLike, run_id: str) -> list[Path]:
    """The offline run directories of ``run_id`` under ``directory``, oldest first.

    Parameters
    ----------
    directory : str or path-like
        What was given to ``wandb.init(dir=...)`` (``--log wandb:DIR``'s DIR); its ``wandb``
        folder holds the runs.
    run_id : str
        The W&B run id.

    Returns
    -------
    list of Path
        ``DIR/wandb/offline-run-<time>-<id>`` folders (one per fit or resume), by time; W&B
        names a second one started in the same second ``offline-run-<time>-<id>-1``.
    """
    root = Path(directory) / "wandb"
    if not root.is_dir():
        return []
    found = []
    for path in root.glob(f"offline-run-*-{run_id}*"):
        parts = path.name.split("-")          # offline, run, <time>, <id>[, <n>]
        if (path.is_dir() and len(parts) in (4, 5) and parts[3] == run_id
                and (len(parts) == 4 or parts[4].isdigit())):
            found.append(((parts[2], int(parts[4]) if len(parts) == 5 else 0), path))
    return [path for _, path in sorted(found)]


def _chunks(data: bytes, name: str) -> Iterator[bytes]:
    if data[:len(_HEADER)] != _HEADER:
        raise WandbRecordError(f"{name} is not a W&B run file (no ':W&B' header)")
    pos, parts = _HEADER_SIZE, None
    while pos + _CHUNK_HEADER <= len(data):
        left = _BLOCK - pos % _BLOCK
        if left < _CHUNK_HEADER:                 # a block's tail too short for a header
            pos += left
            continue
        _, length, kind = struct.unpack("<IHB", data[pos:pos + _CHUNK_HEADER])
        if kind == 0 and length == 0:            # padding to the end of the block
            pos += left
            continue
        end = pos + _CHUNK_HEADER + length
        if end > len(data):
            raise WandbRecordError(f"{name} is cut short at byte {pos} (a run still writing, "
                                   "or killed); read it again after the run has ended")
        piece = data[pos + _CHUNK_HEADER:end]
        pos = end
        if kind == _FULL:
            yield piece
        elif kind == _FIRST:
            parts = [piece]
        elif kind in (_MIDDLE, _LAST) and parts is not None:
            parts.append(piece)
            if kind == _LAST:
                yield b"".join(parts)
                parts = None
        else:
            raise WandbRecordError(f"{name}: unexpected record kind {kind} at byte {pos}")


def wandb_records(path: str | os.PathLike) -> Iterator[Any]:
    """The records of one ``run-<id>.wandb`` file, in the order written.

    Parameters
    ----------
    path : str or path-like
        The file.

    Yields
    ------
    wandb.proto.wandb_internal_pb2.Record
        Each record (``record.WhichOneof('record_type')``: ``'run'``, ``'history'``,
        ``'config'``, ``'files'``, ``'summary'``, ``'exit'`` ...).

    Raises
    ------
    WandbRecordError
        When the file is not a W&B run file or is cut short.
    """
    from wandb.proto import wandb_internal_pb2

    path = Path(path)
    for piece in _chunks(path.read_bytes(), str(path)):
        record = wandb_internal_pb2.Record()
        record.ParseFromString(piece)
        yield record


def wandb_run_written(path: str | os.PathLike) -> bool:
    """Whether a ``run-<id>.wandb`` file holds a finished run, written to its end.

    ``wandb.Run.finish`` returns before wandb-core has written the file out; this tells when
    it has: the file reads to its end and holds the run's ``exit`` record.

    Parameters
    ----------
    path : str or path-like
        The file.

    Returns
    -------
    bool
        True once the run's records are all on disk.
    """
    try:
        return any(r.WhichOneof("record_type") == "exit" for r in wandb_records(path))
    except (OSError, WandbRecordError):
        return False


def _items(items) -> dict[str, Any]:
    out = {}
    for item in items:
        key = item.key or "/".join(item.nested_key)
        if key:
            out[key] = json.loads(item.value_json)
    return out


def read_wandb_run(directory: str | os.PathLike, run_id: str) -> dict[str, Any]:
    """Everything a W&B offline run recorded: its name, group, config, history and files.

    Parameters
    ----------
    directory : str or path-like
        ``wandb.init``'s ``dir`` (``--log wandb:DIR``'s DIR).
    run_id : str
        The run id (``run.json``'s ``tracking`` keeps it).

    Returns
    -------
    dict
        ``id``, ``name``, ``project``, ``group``; ``config`` (the last value of each key);
        ``history``: one dict per step, oldest first, with ``_step`` and the logged values (a
        resumed run's value at a step replaces the earlier one); ``files``: the names the
        run saved (under each directory's ``files/``); ``exit_codes``: one per directory
        (None where the run did not finish); ``dirs``: the directories read.

    Raises
    ------
    WandbRecordError
        When no run ``run_id`` is under ``directory``, or a file is not a W&B run file.

    Examples
    --------
    >>> from facekeypoints.wandb_records import read_wandb_run
    >>> run = read_wandb_run("runs/wandb", "abc123")        # doctest: +SKIP
    >>> [row["valid_rmse_px"] for row in run["history"]]    # doctest: +SKIP
    """
    dirs = wandb_run_dirs(directory, run_id)
    if not dirs:
        raise WandbRecordError(f"no W&B run {run_id} under {Path(directory) / 'wandb'}; give "
                               "the DIR of --log wandb:DIR and the run id from run.json")
    out: dict[str, Any] = {"id": run_id, "name": None, "project": None, "group": None,
                           "config": {}, "history": [], "files": [], "exit_codes": [],
                           "dirs": dirs}
    steps: dict[int, dict[str, Any]] = {}
    for folder in dirs:
        exit_code = None
        for record in wandb_records(folder / f"run-{run_id}.wandb"):
            kind = record.WhichOneof("record_type")
            if kind == "run":
                run = record.run
                out["name"] = run.display_name or out["name"]
                out["project"] = run.project or out["project"]
                out["group"] = run.run_group or out["group"]
                out["config"].update(_items(run.config.update))
            elif kind == "config":
                out["config"].update(_items(record.config.update))
            elif kind == "history":
                row = _items(record.history.item)
                step = int(row.get("_step", record.history.step.num))
                steps[step] = row
            elif kind == "files":
                out["files"] += [f.path for f in record.files.files if f.path not in
                                 out["files"]]
            elif kind == "exit":
                exit_code = record.exit.exit_code
        out["exit_codes"].append(exit_code)
    out["config"].pop("_wandb", None)
    out["history"] = [steps[s] for s in sorted(steps)]
    return out
