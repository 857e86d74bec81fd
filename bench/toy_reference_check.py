"""Measure a toy reference model the way the demo uses it, next to the generator and the paper's Table 1.

Greedy accuracy on held-out test problems (also with re-checks forbidden, and with the `fast` instruction), and
K samples per problem at temperature 0.7 (192 new tokens at most, as the demo's pre-sampling): accuracy by length
quartile within problems and globally, re-checks per trace by difficulty, catches and second-guessing flips.
`--save` records the numbers in the model folder's toy_meta.json (`statistics`), which 11_toy shows.

usage: python bench/toy_reference_check.py [--model DIR] [--n 1000] [--k 8] [--k-fast 4] [--threads 1] [--save]
"""
import argparse
import json
import time
from pathlib import Path

import pandas as pd
import torch

from o1_pruner.toy import (generator_samples, length_statistics, reference_path, reference_statistics, SPEED_STYLES,
                           statistics_table)


def by_difficulty(st: dict) -> pd.DataFrame:
    return pd.DataFrame(st["by_difficulty"]).T.round(3)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=str(reference_path()))
    ap.add_argument("--n", type=int, default=1000, help="held-out test problems")
    ap.add_argument("--k", type=int, default=8, help="samples per problem")
    ap.add_argument("--k-fast", type=int, default=4, help="samples per problem with the fast instruction")
    ap.add_argument("--temperature", type=float, default=0.7)
    ap.add_argument("--max-new-tokens", type=int, default=192)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--save", action="store_true", help="write the statistics into the model folder's toy_meta.json")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    pd.set_option("display.width", 160)
    t0 = time.time()
    st = reference_statistics(a.model, n=a.n, k=a.k, k_fast=a.k_fast, temperature=a.temperature,
                              max_new_tokens=a.max_new_tokens, seed=a.seed, batch_size=a.batch)
    secs = time.time() - t0
    gen = {T: length_statistics(generator_samples(a.n, k=a.k, temperature=T, seed=a.seed))
           for T in (1.0, a.temperature)}
    gen_fast = length_statistics(generator_samples(a.n, k=a.k, temperature=a.temperature, seed=a.seed,
                                                   **SPEED_STYLES["fast"]))
    meta_path = Path(a.model) / "toy_meta.json"
    meta = json.loads(meta_path.read_text()) if meta_path.exists() else {}
    print(f"model {a.model}: trained {meta.get('steps')} steps in {meta.get('train_seconds')} s "
          f"({meta.get('command', '?')})")
    print(f"{a.n} held-out test problems; measured in {secs:.0f} s on {a.threads} thread(s)\n")

    g, g0, gf = st["greedy"], st["greedy_no_checks"], st["greedy_fast"]
    print("== greedy decoding (the demo's evaluation)")
    print(f"accuracy {100 * g['accuracy']:.1f}%  mean tokens {g['tokens']:.1f}  re-checks per trace {g['checks']:.2f}"
          f"  truncated {g['truncated']:.3f}")
    for label, x in (("with re-checks forbidden", g0), ("told to hurry (fast)", gf)):
        print(f"{label}: accuracy {100 * x['accuracy']:.1f}% ({100 * (x['accuracy'] - g['accuracy']):+.1f} pts), "
              f"mean tokens {x['tokens']:.1f} ({100 * (x['tokens'] / g['tokens'] - 1):+.0f}%)"
              + (f", re-checks {x['checks']:.2f}" if "checks" in x else ""))
    print(by_difficulty(g).to_string(), "\n")

    s, sf = st["samples"], st["samples_fast"]
    print(f"== samples: {a.n} x K={a.k} at temperature {a.temperature}, at most {a.max_new_tokens} new tokens "
          "(the demo's pre-sampling)")
    print(f"accuracy {100 * s['accuracy']:.1f}%  mean tokens {s['tokens']:.1f}  re-checks per trace {s['checks']:.2f}"
          f"  truncated {s['truncated']:.4f}")
    print(f"told to hurry (fast, K={a.k_fast}): accuracy {100 * sf['accuracy']:.1f}%  mean tokens {sf['tokens']:.1f}"
          f"  re-checks per trace {sf['checks']:.2f}")
    print(by_difficulty(s).to_string(), "\n")
    named = {"reference T=%.1f" % a.temperature: s, "reference fast": sf,
             "generator T=%.1f" % a.temperature: gen[a.temperature],
             "generator fast T=%.1f" % a.temperature: gen_fast, "generator T=1 (data)": gen[1.0]}
    print("== accuracy (%) by length quartile of the samples, shortest first, next to the paper's Table 1 (Marco-o1)")
    print(statistics_table(named).to_string())
    if a.save:
        cmd = (f"bench/toy_reference_check.py --n {a.n} --k {a.k} --k-fast {a.k_fast} --temperature {a.temperature} "
               f"--max-new-tokens {a.max_new_tokens} --seed {a.seed}")
        meta["statistics"] = dict(st, measured_by=cmd, measured_seconds=round(secs),
                                  generator={"T=%.1f" % a.temperature: gen[a.temperature], "T=1": gen[1.0],
                                             "fast": gen_fast})
        meta_path.write_text(json.dumps(meta, indent=1) + "\n")
        print(f"\nstatistics written to {meta_path}")


if __name__ == "__main__":
    main()
