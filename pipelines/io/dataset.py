"""The aggregated DAgger dataset on disk: TFDS, ``array_record`` files, RLDS layout.

Every DAgger iteration's rollout (``B`` envs x ``T`` steps) is cut at episode
ends into RLDS episodes and written as **one shard** by a background thread, so
the device never waits for the disk. A record is an episode, or the part of one
that fell inside one iteration (``episode_metadata.starts_at_reset`` /
``ends_episode`` say which; ``env_index`` and ``episode_id`` order the parts).

Steps hold the student's observation, the teacher's label (mean, std), the
student's own mean, the action executed, who acted, reward, success and the
RLDS flags ``is_first`` / ``is_last`` / ``is_terminal``. Episode metadata is the
provenance: DAgger iteration, beta, teacher and student checkpoint steps, task,
randomization config, seed.

Reading needs no TensorFlow::

    import tensorflow_datasets as tfds
    source = tfds.builder_from_directory("RUN/dataset").as_data_source("train")
    episode = source[0]; episode["episode_metadata"]["beta"]; episode["steps"][0]["action"]

Crash safety: a shard is listed in ``dataset_info.json`` only after it is
complete. The stage checkpoints the writer's :class:`Cursor` together with the
student state (after :meth:`DatasetWriter.wait`); on resume
:func:`rollback` drops shards written after that checkpoint, and the resumed
run, being deterministic, writes them again. No episode is lost or duplicated.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import queue
import re
import tempfile
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jax
import numpy as np

NAME = "dexdistill_dagger"
VERSION = "1.0.0"
SPLIT = "train"
_STEP_FIELDS = {
    # Labelled field -> RLDS step field
    "action": "action",
    "teacher_mean": "teacher_action",
    "teacher_std": "teacher_std",
    "student_mean": "student_action",
    "teacher_acted": "teacher_acted",
    "is_first": "is_first",
    "is_last": "is_last",
    "is_terminal": "is_terminal",
    "reward": "reward",
    "success": "success",
    "aux_target": "aux_target",
}
_META = {
    "episode_id": np.int64,
    "iteration": np.int32,
    "env_index": np.int32,
    "beta": np.float32,
    "teacher_step": np.int64,
    "student_step": np.int64,
    "seed": np.int32,
    "starts_at_reset": np.bool_,
    "ends_episode": np.bool_,
}
_META_TEXT = ("task", "mixing", "randomization")


@dataclasses.dataclass(frozen=True)
class Cursor:
    """What is durably on disk: one shard per DAgger iteration written."""

    shard_lengths: tuple[int, ...] = ()
    num_bytes: int = 0

    @property
    def episodes(self) -> int:
        return sum(self.shard_lengths)

    def to_json(self) -> dict[str, Any]:
        return {"shard_lengths": list(self.shard_lengths), "num_bytes": self.num_bytes}

    @classmethod
    def from_json(cls, d: Mapping[str, Any] | None) -> Cursor:
        if not d:
            return cls()
        return cls(tuple(int(x) for x in d["shard_lengths"]), int(d["num_bytes"]))


def _features(example: Mapping[str, Any]) -> Any:
    """TFDS features for sequence-major rollout leaves ``[B, T, ...]`` (``example``)."""
    import tensorflow_datasets as tfds

    def tensor(x: Any) -> Any:
        shape = tuple(x.shape[2:])
        if not shape:
            return tfds.features.Scalar(dtype=np.dtype(x.dtype))
        return tfds.features.Tensor(shape=shape, dtype=np.dtype(x.dtype))

    steps = {"observation": {k: tensor(v) for k, v in example["obs"].items()}}
    steps.update({dst: tensor(example[src]) for src, dst in _STEP_FIELDS.items()})
    meta: dict[str, Any] = {k: tfds.features.Scalar(dtype=d) for k, d in _META.items()}
    meta.update({k: tfds.features.Text() for k in _META_TEXT})
    return tfds.features.FeaturesDict(
        {"steps": tfds.features.Dataset(steps), "episode_metadata": meta}
    )


def _info(directory: Path, example: Mapping[str, Any], description: str) -> Any:
    import tensorflow_datasets as tfds

    identity = tfds.core.dataset_info.DatasetIdentity(
        name=NAME, version=VERSION, data_dir=str(directory), module_name=""
    )
    return tfds.core.DatasetInfo(
        builder=identity, features=_features(example), description=description
    )


def segments(is_last: np.ndarray) -> list[tuple[int, int]]:
    """``[T]`` episode-end flags -> ``[(start, stop), ...]`` pieces, each in one episode."""
    ends = [int(t) + 1 for t in np.flatnonzero(is_last)]
    bounds = [0, *[e for e in ends if e < len(is_last)], len(is_last)]
    return list(zip(bounds[:-1], bounds[1:], strict=True))


def episodes_of(
    seq: Mapping[str, Any], provenance: Mapping[str, Any], first_id: int
) -> list[dict[str, Any]]:
    """Host ``[B, T, ...]`` sequences -> RLDS episode dicts, ids from ``first_id``."""
    out = []
    num_envs = seq["is_last"].shape[0]
    for b in range(num_envs):
        for start, stop in segments(seq["is_last"][b]):
            steps = {"observation": {k: v[b, start:stop] for k, v in seq["obs"].items()}}
            steps.update({dst: seq[src][b, start:stop] for src, dst in _STEP_FIELDS.items()})
            meta = {k: provenance[k] for k in (*_META_TEXT, "iteration", "beta", "seed")}
            meta.update(
                episode_id=first_id + len(out),
                env_index=b,
                teacher_step=provenance["teacher_step"],
                student_step=provenance["student_step"],
                starts_at_reset=bool(seq["is_first"][b, start]),
                ends_episode=bool(seq["is_last"][b, stop - 1]),
            )
            out.append({"steps": steps, "episode_metadata": meta})
    return out


def _shard_index(path: Path) -> int | None:
    m = re.fullmatch(rf"{NAME}-{SPLIT}\.array_record-(\d+)", path.name)
    return int(m.group(1)) if m else None


def rollback(directory: str | Path, cursor: Cursor, example: Mapping[str, Any]) -> None:
    """Makes ``directory`` hold exactly the shards of ``cursor`` (drops later ones)."""
    import tensorflow_datasets as tfds

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    for path in directory.iterdir():
        idx = _shard_index(path)
        if idx is not None and idx >= len(cursor.shard_lengths):
            path.unlink()
    info = _info(directory, example, "")
    info_path = directory / "dataset_info.json"
    if info_path.exists():
        with contextlib.suppress(Exception):  # corrupt metadata (kill mid-write): rebuilt below
            info.read_from_directory(directory)
    template = tfds.core.naming.ShardedFileTemplate(
        dataset_name=NAME,
        data_dir=directory,
        split=SPLIT,
        filetype_suffix="array_record",
        template="{DATASET}-{SPLIT}.{FILEFORMAT}-{SHARD_INDEX}",
    )
    split = tfds.core.SplitInfo(
        name=SPLIT,
        shard_lengths=list(cursor.shard_lengths),
        num_bytes=cursor.num_bytes,
        filename_template=template,
    )
    info.set_splits(tfds.core.SplitDict([split]))
    info.set_file_format("array_record", override=True, override_if_initialized=True)
    with tempfile.TemporaryDirectory(dir=directory) as tmp:
        info.write_to_directory(tmp)
        for name in ("dataset_info.json", "features.json"):
            os.replace(Path(tmp) / name, directory / name)


class DatasetWriter:
    """Writes one shard per DAgger iteration on a background thread.

    ``submit`` returns at once (the device arrays are fetched on the thread);
    ``wait`` blocks until everything submitted is on disk and returns the cursor.
    An error on the thread is raised by the next ``submit`` / ``wait``.
    """

    def __init__(
        self, directory: str | Path, example: Mapping[str, Any], cursor: Cursor, description: str
    ):
        self.directory = Path(directory)
        self._example = example
        self._description = description
        rollback(self.directory, cursor, example)
        self._cursor = cursor
        self._error: BaseException | None = None
        self._queue: queue.Queue = queue.Queue()
        self._thread = threading.Thread(target=self._loop, name="dataset-writer", daemon=True)
        self._thread.start()

    @property
    def cursor(self) -> Cursor:
        return self._cursor

    def submit(self, seq: Mapping[str, Any], provenance: Mapping[str, Any]) -> None:
        """Queues one iteration's sequences (leaves ``[B, T, ...]``, device or host)."""
        self._raise()
        self._queue.put((seq, dict(provenance)))

    def wait(self) -> Cursor:
        self._queue.join()
        self._raise()
        return self._cursor

    def close(self) -> Cursor:
        cursor = self.wait()
        self._queue.put(None)
        self._thread.join(timeout=10)
        return cursor

    def _raise(self) -> None:
        if self._error is not None:
            raise RuntimeError(f"dataset writer failed: {self._error}") from self._error

    def _loop(self) -> None:
        while True:
            job = self._queue.get()
            try:
                if job is None:
                    return
                if self._error is None:
                    self._write(*job)
            except BaseException as err:  # surfaced in the main thread
                self._error = err
            finally:
                self._queue.task_done()

    def _write(self, seq: Mapping[str, Any], provenance: dict[str, Any]) -> None:
        from tensorflow_datasets.core import sequential_writer

        host = jax.device_get(seq)
        episodes = episodes_of(host, provenance, self._cursor.episodes)
        info = _info(self.directory, self._example, self._description)
        writer = sequential_writer.SequentialWriter(
            info,
            max_examples_per_shard=len(episodes) + 1,
            overwrite=False,
            file_format="array_record",
        )
        writer.initialize_splits([SPLIT], fail_if_exists=False)
        writer.add_examples({SPLIT: episodes})
        writer.close_splits([SPLIT])
        split = info.splits[SPLIT]
        self._cursor = Cursor(tuple(split.shard_lengths), int(split.num_bytes))


def load(directory: str | Path) -> Any:
    """The dataset's ``train`` split as a random-access source (no TensorFlow needed)."""
    import tensorflow_datasets as tfds

    directory = Path(directory)
    if not (directory / "dataset_info.json").exists():
        raise FileNotFoundError(f"no dataset in {directory}: run `dexdistill distill` first")
    return tfds.builder_from_directory(str(directory)).as_data_source(SPLIT)


def episode_arrays(episode: Mapping[str, Any]) -> dict[str, Any]:
    """One data-source episode -> ``{"steps": {field: [L, ...]}, "episode_metadata": ...}``."""
    steps = [episode["steps"][i] for i in range(len(episode["steps"]))]

    def stack(items: list[Any]) -> Any:
        if isinstance(items[0], Mapping):
            return {k: stack([it[k] for it in items]) for k in items[0]}
        return np.stack([np.asarray(x) for x in items])

    meta = {
        k: v.decode() if isinstance(v, bytes) else v for k, v in episode["episode_metadata"].items()
    }
    return {"steps": stack(steps), "episode_metadata": meta}
