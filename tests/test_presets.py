"""Every preset is a valid, described config."""

from __future__ import annotations

import pytest

from dexdistill.pipelines import presets


@pytest.mark.parametrize("name", sorted(presets.PRESETS))
def test_every_preset_validates_and_is_described(name: str) -> None:
    cfg = presets.PRESETS[name]
    cfg.validate()
    assert presets.DESCRIPTIONS[name]
    # the final evaluation of `dexdistill run` matches the stages' own final evaluations
    assert cfg.evaluate.episodes == cfg.distill.final_eval_episodes
