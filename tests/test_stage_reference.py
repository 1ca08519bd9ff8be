"""docs/stage-configs.md is what the config dataclasses say (regenerate it when a field changes)."""

from pathlib import Path

from vtp.stages.reference import field_comments, stage_config_reference
from vtp.train.config import TokenizerTrainConfig

PAGE = Path(__file__).resolve().parents[1] / "docs" / "stage-configs.md"


def test_committed_page_matches_the_dataclasses():
    assert PAGE.read_text() == stage_config_reference(), (
        "docs/stage-configs.md is stale: run `python -m vtp.stages.reference > docs/stage-configs.md`")


def test_field_comments_are_read_from_the_source():
    notes = field_comments(TokenizerTrainConfig)
    assert notes["decoder_width"] == "0 = encoder width"
    assert "encoder" not in notes  # a field without a comment gets none, not its neighbour's
