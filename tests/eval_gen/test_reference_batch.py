"""Reference statistics from an ADM-suite reference batch .npz, and the Inception metric's name on a
real probe set (test-created weights: `inception_fd`, never `gfid`)."""

import warnings

import numpy as np
import pytest
import torch

import vtp.stages.eval as eval_stage
from tests.eval_gen.test_probe_set_stages import FEAT, folder
from tests.eval_gen.test_stages_pipeline import Recorder, ctx
from vtp.eval.inception import fid_inception_v3
from vtp.eval.reference_batch import ReferenceBatchError, read_reference_batch


def test_reads_mu_and_sigma_and_names_what_is_wrong(tmp_path):
    good = tmp_path / "good.npz"
    np.savez(good, mu=np.arange(4.0, dtype=np.float32), sigma=np.eye(4, dtype=np.float32), acts=np.zeros((2, 4)))
    mu, sigma = read_reference_batch(good, dim=4)
    assert mu.dtype == np.float64 and np.array_equal(mu, np.arange(4.0)) and np.array_equal(sigma, np.eye(4))
    np.savez(tmp_path / "short.npz", mu=np.zeros(4), sigma=np.eye(3))
    np.savez(tmp_path / "nosigma.npz", mu=np.zeros(4))
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    cases = {"short.npz": r"mu \(4,\) and sigma \(3, 3\); expected \(4,\) and \(4, 4\)", "nosigma.npz": "no 'sigma' array",
             "junk.npz": "cannot read", "absent.npz": "not found"}
    for name, words in cases.items():
        with pytest.raises(ReferenceBatchError, match=words) as e:
            read_reference_batch(tmp_path / name, dim=4)
        assert str(tmp_path / name) in str(e.value)


@pytest.mark.slow  # Inception at 299 px on CPU
def test_real_probe_set_with_test_weights_is_inception_fd_and_a_wrong_npz_is_refused(stages, probe_dir, tmp_path):
    import vtp.stages.dit as dit_stage
    import vtp.stages.extract as extract_stage

    root, tok_dir = stages
    ext_dir = root / "runs" / "extract"
    with pytest.warns(UserWarning):
        extract_stage.run(ctx(root, "extract", {"dataset": folder(probe_dir), "num_images": 61, "stats_samples": 40},
                              {"tokenizer": tok_dir}))
    dit_stage.run(ctx(root, "dit", {"steps": 2, "batch_size": 8}, {"extract": ext_dir}))
    weights = tmp_path / "pt_inception-test.pth"
    torch.save(fid_inception_v3().state_dict(), weights)
    ref = tmp_path / "VIRTUAL_test.npz"
    np.savez(ref, mu=np.zeros(2048, dtype=np.float32), sigma=np.eye(2048, dtype=np.float32))
    base = {"dataset": folder(probe_dir), "num_samples": 4, "steps": 2, "reference_images": 30, "feature_net": FEAT,
            "inception_weights": str(weights), "probe_train_images": 0, "recon_images": 8}
    parents = {"tokenizer": tok_dir, "extract": ext_dir, "dit": root / "runs" / "dit"}
    for config in ({**base, "inception_reference_images": 4}, {**base, "inception_reference": str(ref)}):
        rec = Recorder()
        with warnings.catch_warnings():  # the broken file is read (and warned about) by some phases only
            warnings.simplefilter("ignore", UserWarning)
            eval_stage.run(ctx(root, "eval", config, parents, rec))
        assert "gfid" not in rec.metrics and rec.metrics["inception_fd"] >= 0
        assert "rfid" not in rec.metrics and rec.metrics["inception_recon_fd"] >= 0  # held-out reconstructions
        assert rec.tags["inception_network"].startswith("inception-v3-fid-unverified-")
    assert rec.tags["inception_reference"].startswith("VIRTUAL_test.npz-")
    np.savez(ref, mu=np.zeros(64), sigma=np.eye(64))
    with pytest.raises(ReferenceBatchError, match="expected \\(2048,\\) and \\(2048, 2048\\)"), warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        eval_stage.run(ctx(root, "eval", {**base, "inception_reference": str(ref)}, parents, Recorder()))
