"""The DAgger dataset on disk: TFDS array_record, RLDS layout, exact round trip, rollback."""

from __future__ import annotations

import json

import numpy as np
import pytest

from dexdistill.pipelines.io import dataset as dataset_lib

B, T, A = 3, 6, 2


def _seq(seed: int) -> dict:
    """One iteration's host sequences ``[B, T, ...]`` with episode ends inside."""
    rng = np.random.default_rng(seed)
    is_last = np.zeros((B, T), bool)
    is_last[0, 2] = True  # env 0: an episode ends mid-rollout
    is_last[1, T - 1] = True  # env 1: ends exactly at the rollout's end
    is_first = np.zeros((B, T), bool)
    is_first[0, 0] = is_first[0, 3] = True
    f32 = lambda *s: rng.normal(size=s).astype(np.float32)
    return {
        "obs": {"keypoints": f32(B, T, 4, 3), "proprio": f32(B, T, 5)},
        "teacher_mean": f32(B, T, A),
        "teacher_std": np.abs(f32(B, T, A)),
        "student_mean": f32(B, T, A),
        "action": f32(B, T, A),
        "teacher_acted": rng.random((B, T)) < 0.5,
        "is_first": is_first,
        "is_last": is_last,
        "is_terminal": np.zeros((B, T), bool),
        "reward": f32(B, T),
        "success": (rng.random((B, T)) < 0.3).astype(np.float32),
        "aux_target": f32(B, T, 3),
    }


def _provenance(i: int) -> dict:
    return {
        "task": "point_mass",
        "mixing": "step",
        "randomization": json.dumps({"physics": {"enabled": True}}),
        "teacher_step": 235,
        "seed": 0,
        "iteration": i,
        "beta": 0.5**i,
        "student_step": i,
    }


def test_segments_cut_at_episode_ends():
    assert dataset_lib.segments(np.array([0, 0, 1, 0, 0, 0], bool)) == [(0, 3), (3, 6)]
    assert dataset_lib.segments(np.array([0, 0, 0, 0, 0, 1], bool)) == [(0, 6)]
    assert dataset_lib.segments(np.array([1, 1], bool)) == [(0, 1), (1, 2)]


def _write(directory, seqs, cursor=None):
    cursor = cursor or dataset_lib.Cursor()
    writer = dataset_lib.DatasetWriter(directory, seqs[0], cursor, "test data")
    for i, seq in enumerate(seqs):
        writer.submit(seq, _provenance(len(cursor.shard_lengths) + i))
    return writer.close()


def test_dataset_round_trips_exactly_through_tfds(tmp_path):
    seqs = [_seq(0), _seq(1)]
    cursor = _write(tmp_path / "ds", seqs)
    assert cursor.shard_lengths == (B + 1, B + 1)  # env 0 split in two pieces
    source = dataset_lib.load(tmp_path / "ds")
    assert len(source) == cursor.episodes == 2 * (B + 1)
    expected = [
        ep
        for i, seq in enumerate(seqs)
        for ep in dataset_lib.episodes_of(seq, _provenance(i), i * (B + 1))
    ]
    for idx, want in enumerate(expected):
        got = dataset_lib.episode_arrays(source[idx])
        meta = got["episode_metadata"]
        for k, v in want["episode_metadata"].items():
            assert meta[k] == pytest.approx(v) if isinstance(v, float) else meta[k] == v, k
        for k, v in want["steps"]["observation"].items():
            np.testing.assert_array_equal(got["steps"]["observation"][k], v)
        for k, v in want["steps"].items():
            if k != "observation":
                np.testing.assert_array_equal(got["steps"][k], v, err_msg=k)
    first = dataset_lib.episode_arrays(source[0])
    assert first["steps"]["is_first"][0] and first["steps"]["is_last"][-1]
    assert first["episode_metadata"]["ends_episode"]
    assert not dataset_lib.episode_arrays(source[1])["episode_metadata"]["ends_episode"]


def test_rollback_drops_shards_written_after_the_checkpoint(tmp_path):
    directory = tmp_path / "ds"
    checkpointed = _write(directory, [_seq(0)])
    _write(directory, [_seq(1), _seq(2)], checkpointed)  # written, then "killed"
    assert len(dataset_lib.load(directory)) == 3 * (B + 1)
    # a kill mid-write of the metadata leaves it corrupt: rollback rebuilds it
    (directory / "dataset_info.json").write_text("{not json")
    resumed = _write(directory, [_seq(1)], checkpointed)  # the resumed run writes them again
    assert resumed.episodes == 2 * (B + 1)
    source = dataset_lib.load(directory)
    assert len(source) == 2 * (B + 1)
    ids = [int(source[i]["episode_metadata"]["episode_id"]) for i in range(len(source))]
    assert ids == list(range(2 * (B + 1)))


def test_loading_a_missing_dataset_says_what_to_run(tmp_path):
    with pytest.raises(FileNotFoundError, match="dexdistill distill"):
        dataset_lib.load(tmp_path)
