"""Helpers shared by the training tests: a hand-made rewarded dataset for a tiny model."""
from __future__ import annotations

import datasets
import torch

from o1_pruner.tokens import BatchCollator, sequence_logprobs, tokenize_example


def rewarded_rows(n_problems: int = 6):
    """Rows of a toy rewarded dataset: per problem a short correct answer (A>0) and a long one (A<0)."""
    rows = []
    for i in range(n_problems):
        q = f"What is {i} + {i + 1}?"
        ans = str(2 * i + 1)
        comps = [(f"{ans}<|im_end|>", 1.0 + 0.1 * i), (f"Let me think. {i} plus {i + 1}... wait, check: {ans}<|im_end|>", -0.6 - 0.05 * i)]
        for j, (c, a) in enumerate(comps):
            rows.append(dict(problem_id=f"p{i}", sample_idx=j, messages=[{"role": "system", "content": "Be brief."},
                             {"role": "user", "content": q}], completion=c, advantage=a, reward=a, length=len(c),
                             correct=True, lbar=30.0, abar=1.0))
    return rows


def add_ref_logp(rows, tokenizer, model, cutoff: int = 128):
    """Add ref_logp / n_response_tokens computed by the (reference) `model`."""
    toks = [tokenize_example(tokenizer, r["messages"], r["completion"], cutoff) for r in rows]
    batch = BatchCollator(tokenizer.pad_token_id)([dict(t, advantage=0.0) for t in toks])
    with torch.no_grad():
        mean_lp, _, n = sequence_logprobs(model.eval(), batch["input_ids"], batch["attention_mask"], batch["response_mask"])
    return [dict(r, ref_logp=float(m), n_response_tokens=int(k)) for r, m, k in zip(rows, mean_lp, n)]


def write_rewarded_dataset(path, tokenizer, model, n_problems: int = 6, cutoff: int = 128):
    """Save a toy rewarded dataset folder (+ manifest.json) whose ref_logp comes from `model`."""
    rows = add_ref_logp(rewarded_rows(n_problems), tokenizer, model, cutoff)
    datasets.Dataset.from_list(rows).save_to_disk(str(path))
    (path / "manifest.json").write_text('{"note": "hand-made test dataset", "cutoff_len": %d}' % cutoff)
    return path
