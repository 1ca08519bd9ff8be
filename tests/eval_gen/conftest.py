"""Fixtures of the eval-stage tests on a real (test-written) probe set."""

import json

import pytest

import vtp.stages.eval as eval_stage
import vtp.stages.extract as extract_stage
from tests.eval_gen.test_stages_pipeline import PatchTokenizer
from tests.imagefolders import write_imagefolder


@pytest.fixture
def probe_dir(tmp_path):
    return write_imagefolder(tmp_path / "probe", per_class=20, corrupt=1)  # 61 files, 3 classes


@pytest.fixture
def stages(tmp_path, monkeypatch):
    tok = PatchTokenizer()
    tok_dir = tmp_path / "runs" / "tok"
    (tok_dir / "checkpoints").mkdir(parents=True)
    (tok_dir / "checkpoints" / "3.json").write_text(json.dumps({"k": 3, "step": 30}))
    loader = lambda ctx: (tok, {"step": 30})  # noqa: E731
    monkeypatch.setattr(extract_stage, "load_checkpoint_tokenizer", loader)
    monkeypatch.setattr(eval_stage, "load_checkpoint_tokenizer", loader)
    return tmp_path, tok_dir
