"""Check the toy reference model's properties: greedy accuracy, tokens, re-checks, sample accuracy by length quartile.

usage: python bench/toy_reference_check.py [--model DIR] [--n 300] [--k 8] [--temperature 0.7] [--threads 2]
"""
import argparse
import time

import numpy as np
import pandas as pd
import torch

from o1_pruner.toy import difficulty, extract_toy_answer, generate_batch, load_reference, make_problems, reference_path


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--model", default=str(reference_path()))
    ap.add_argument("--n", type=int, default=300)
    ap.add_argument("--k", type=int, default=8)
    ap.add_argument("--temperature", type=float, default=0.7)
    ap.add_argument("--batch", type=int, default=512)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    model, tok = load_reference(a.model)
    ds = make_problems(a.n, seed=a.seed, split="test")
    probs, golds = ds["problem"], ds["answer"]
    diff = [difficulty(p) for p in probs]
    print(f"model {a.model}: {sum(p.numel() for p in model.parameters()):,} parameters; {a.n} held-out test problems")

    def table(res, problems, gold, diffs):
        df = pd.DataFrame(res)
        df["problem"], df["gold"], df["difficulty"] = problems, gold, diffs
        df["correct"] = [extract_toy_answer(c) == g for c, g in zip(df.completion, df.gold)]
        df["waits"] = df.completion.str.count("Wait")
        return df

    t = time.time()
    g = table(generate_batch(model, tok, probs, batch_size=a.batch), probs, golds, diff)
    print(f"\n== greedy ({time.time() - t:.1f}s)")
    print(f"accuracy {g.correct.mean():.3f}  mean tokens {g.num_tokens.mean():.1f}  re-checks ('Wait') per trace {g.waits.mean():.2f}"
          f"  truncated {(g.finish_reason == 'length').mean():.3f}")
    print(g.groupby("difficulty").agg(n=("correct", "size"), accuracy=("correct", "mean"), tokens=("num_tokens", "mean"), waits=("waits", "mean")).round(3).to_string())

    # oracle-ish: greedy with re-checks forbidden ('W' only occurs in 'Wait')
    t = time.time()
    tok.padding_side = "left"
    w_id = tok.convert_tokens_to_ids("W")
    res = []
    for i in range(0, len(probs), a.batch):
        chunk = probs[i:i + a.batch]
        prompts = [tok.apply_chat_template([{"role": "user", "content": p}], tokenize=False, add_generation_prompt=True) for p in chunk]
        enc = tok(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
        with torch.no_grad():
            out = model.generate(**enc, do_sample=False, max_new_tokens=256, bad_words_ids=[[w_id]],
                                 eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
        for row in out[:, enc.input_ids.shape[1]:].tolist():
            n = row.index(tok.eos_token_id) + 1 if tok.eos_token_id in row else len(row)
            res.append(dict(completion=tok.decode(row[:n], skip_special_tokens=True), num_tokens=n))
    o = table(res, probs, golds, diff)
    print(f"\n== greedy with re-checks forbidden ({time.time() - t:.1f}s)")
    print(f"accuracy {o.correct.mean():.3f} ({100 * (o.correct.mean() - g.correct.mean()):+.1f} pts)  mean tokens {o.num_tokens.mean():.1f}"
          f" ({100 * (o.num_tokens.mean() / g.num_tokens.mean() - 1):+.0f}%)")

    t = time.time()
    sp = [p for p in probs for _ in range(a.k)]
    s = table(generate_batch(model, tok, sp, do_sample=True, temperature=a.temperature, batch_size=a.batch),
              sp, [x for x in golds for _ in range(a.k)], [x for x in diff for _ in range(a.k)])
    dt = time.time() - t
    print(f"\n== sampling {a.n} x K={a.k} at temperature {a.temperature} ({dt:.1f}s, {s.num_tokens.sum() / dt:.0f} tokens/s)")
    print(f"sample accuracy {s.correct.mean():.3f}  mean tokens {s.num_tokens.mean():.1f} (sd {s.num_tokens.std():.1f})"
          f"  re-checks per trace {s.waits.mean():.2f}  truncated {(s.finish_reason == 'length').mean():.3f}")
    s["quartile"] = pd.qcut(s.num_tokens.rank(method="first"), 4, labels=["Q1 short", "Q2", "Q3", "Q4 long"])
    print("accuracy by length quartile (all samples):")
    print(s.groupby("quartile", observed=True).agg(accuracy=("correct", "mean"), tokens=("num_tokens", "mean")).round(3).T.to_string())
    s["pq"] = s.groupby("problem").num_tokens.rank(method="first").sub(1).floordiv(a.k / 4).astype(int)
    print("accuracy by within-problem length quartile (0 = shortest samples of each problem):")
    print(s.groupby("pq").agg(accuracy=("correct", "mean"), tokens=("num_tokens", "mean")).round(3).T.to_string())
    print("by difficulty:")
    per = s.groupby(["difficulty", "problem"]).agg(acc=("correct", "mean"), sd=("num_tokens", "std")).reset_index()
    d = s.groupby("difficulty").agg(n=("correct", "size"), accuracy=("correct", "mean"), tokens=("num_tokens", "mean"), waits=("waits", "mean"))
    d["problems_not_all_right"] = per.groupby("difficulty").acc.apply(lambda x: (x < 1).mean())
    d["mean_within_problem_length_sd"] = per.groupby("difficulty").sd.mean()
    print(d.round(3).to_string())
    fixes = s.completion.str.count("Fix").mean()
    print(f"'Fix.' per sample {fixes:.3f}; samples with no re-check: {(s.waits == 0).mean():.3f} (accuracy {s[s.waits == 0].correct.mean():.3f})"
          f"; with >=1: accuracy {s[s.waits > 0].correct.mean():.3f}")


if __name__ == "__main__":
    main()
