"""A real pretrained model (SmolLM2-135M-Instruct: BPE tokenizer, ChatML template) through all five stages, by the
CLIs and the Marco-o1 recipes a GPU user runs (CPU overrides only): K=4 with ZeRO-3 bf16 training under torchrun,
K=2 with plain mixed-precision training. Step 0 must be exact through build-dataset scoring and the real tokenizer."""
import json

import pytest

from o1_pruner.store import SampleStore
from o1_pruner.testing import real_model_pipeline, smollm2_dir


@pytest.fixture(scope="module")
def smol():
    return smollm2_dir()


def _common_checks(out, store, k, smol):
    recs = store.records()
    assert len(recs) == 4 * k and {r["sample_idx"] for r in recs} == set(range(k))
    assert store.meta["spec"]["model"] == str(smol)
    assert all(r["num_tokens"] > 0 and r["finish_reason"] in ("stop", "length") for r in recs)
    m = out["manifest"]
    assert m["reference_model"] == str(smol)   # found in the store written by `sample`
    assert m["tokenization"]["cutoff"] == 512 and m["ref_numerics"]["attn_implementation"] == "eager"
    assert m["stats"]["advantage"]["std"] > 0.5   # finished and truncated samples differ: a real learning signal
    tr = out["train"]
    ratios = [h["ratio"] for h in tr["log_history"] if "ratio" in h]
    assert abs(ratios[0] - 1) < 1e-4, ratios
    assert tr["config"]["cutoff_len"] == 512 and tr["numerics"]["dtype"] == m["ref_numerics"]["dtype"]
    return tr


@pytest.mark.slow
def test_five_stages_k4_zero3_bf16(smol, tmp_path):
    out = real_model_pipeline(tmp_path, smol, k=4)
    tr = _common_checks(out, SampleStore(tmp_path / "samples"), 4, smol)
    assert tr["numerics"] == {"dtype": "bfloat16", "autocast": "none", "attn_implementation": "eager"}
    assert (tmp_path / "analysis" / "summary.json").exists() and any((tmp_path / "analysis").glob("*.png"))
    met = out["metrics"]["metrics"]
    assert set(met) >= {"base", "pruned"} and met["base"]["gsm8k-test"]["n_problems"] == 4
    assert (tmp_path / "eval" / "report.md").read_text().count("pruned") >= 1


@pytest.mark.slow
def test_five_stages_k2_mixed_precision(smol, tmp_path):
    out = real_model_pipeline(tmp_path, smol, k=2, deepspeed=False, evaluate=False)
    tr = _common_checks(out, SampleStore(tmp_path / "samples"), 2, smol)
    assert tr["numerics"] == {"dtype": "float32", "autocast": "bfloat16", "attn_implementation": "eager"}
    assert json.loads((tmp_path / "rewarded" / "manifest.json").read_text())["counts"]["rows"] == 8
