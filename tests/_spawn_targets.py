"""Module-level targets for tests/test_demo.py's spawned processes (spawn imports them by name)."""
import json


def grade_many(out_path):
    from o1_pruner.grading import grade_batch
    n = 300  # above grade_batch's threshold for worker processes: a daemonic parent could not start them
    res = grade_batch([f"so \\boxed{{{i}}}" for i in range(n)], [str(i) for i in range(n - 1)] + ["-1"], n_workers=2, progress=False)
    print("graded", len(res))
    with open(out_path, "w") as f: json.dump([r.correct for r in res], f)


def fail(message):
    print("about to fail")
    raise ValueError(message)
