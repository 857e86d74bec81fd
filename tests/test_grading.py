"""Tests of o1_pruner.grading: extraction, equivalence, robustness, timeouts, parallel batches, CLI."""
from __future__ import annotations

import importlib.util
import json
import os
import signal
import sys
import time
import types
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

from o1_pruner import grading as G
from o1_pruner.grading import Grade, extract_answer, grade, grade_batch, grade_cli, is_correct, split_thinking

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
HOSTILE = [
    "\\boxed{__import__('os').system('touch pwned1')}",
    "\\boxed{eval(\"open('pwned2','w').write('x')\")}",
    "The answer is exec('import os; os.system(\"touch pwned3\")')",
    "#### __import__('subprocess').call(['touch','pwned4'])",
    "\\boxed{\\text{__import__('os').system('touch pwned5')}}",
    "$\\boxed{().__class__.__bases__[0].__subclasses__()}$ and \\boxed{open('pwned6','w')}",
    "\\boxed{lambda: __import__('os').system('touch pwned7')}",
]


@pytest.mark.parametrize("text,mode,want", [
    ("a \\boxed{1} b \\boxed{2}", "last", "2"),
    ("a \\boxed{1} b \\boxed{2}", "first", "1"),
    ("\\boxed{\\frac{a}{b^{2}}}", "last", "\\frac{a}{b^{2}}"),
    ("$\\boxed 7$.", "last", "7"),
    ("\\fbox{x+1}", "last", "x+1"),
    ("\\boxed{3} then cut \\boxed{\\frac{1", "last", "3"),
    ("\\boxed{}", "last", None),
    ("blah\n#### 1,234", "last", "1,234"),
    ("So, the answer is $-3$.", "last", "-3"),
    ("<think>\\boxed{1}</think> final \\boxed{2}", "first", "2"),
    ("<think>\\boxed{1}", "last", None),
    ("reasoning \\boxed{1}</think> final \\boxed{2}", "first", "2"),
])
def test_extract(text, mode, want):
    assert extract_answer(text, mode=mode) == want


def test_split_thinking():
    assert split_thinking("<think>a</think>b") == ("a", "b")
    assert split_thinking("<think>a") == ("a", "")
    assert split_thinking("a</think>b") == ("a", "b")
    assert split_thinking("ab") == (None, "ab")


@pytest.mark.parametrize("pred,gold,ok", [
    ("14/3", "\\frac{14}{3}", True), ("4\\frac{2}{3}", "\\frac{14}{3}", True), ("4.6", "\\frac{14}{3}", False),
    ("\\dfrac{1}{2}", "0.5", True), ("$\\frac12$", "\\frac{1}{2}", True), ("10", "10\\text{ cm}", True),
    ("1000", "1,000", True), ("2,16", "2, 16", True), ("[2,5)", "[2,5)", True), ("(2,5)", "[2,5)", False),
    ("(1,2)", "(1, 2)", True), ("2\\sqrt{2}", "\\sqrt{8}", True), ("30", "30^\\circ", True),
    ("C", "\\text{(C)}", True), ("(B)", "\\text{(C)}", False), ("18.0", "18", True), ("17", "18", False),
    ("\\frac{\\pi}{3}", "$\\frac{\\pi}{3}$", True), ("-1-\\sqrt{3}i", "$-1-\\sqrt{3}i$", True),
])
def test_equivalence(pred, gold, ok):
    assert is_correct(f"Reasoning... so the result is $\\boxed{{{pred}}}$.", gold) is ok


def test_mode_first_vs_last():
    r = "Guess \\boxed{5}. Hmm, recheck: \\boxed{6}"
    assert grade(r, "6").correct and not grade(r, "6", mode="first").correct


@pytest.mark.parametrize("resp,reason", [
    ("", "empty response"), ("   \n", "empty response"), (None, "not a string"), (12, "not a string"),
    (b"\\boxed{1}", "not a string"), ("x" * 1_048_576, "too long"), ("\x00\xff\xfe\x01garbage", "no answer found"),
    ("no answer", "no answer found"), ("\\boxed{" + "1" * 5000 + "}", "too long"),
])
def test_bad_inputs(resp, reason):
    g = grade(resp, "1")
    assert isinstance(g, Grade) and g.correct is False and g.reason == reason


def test_bad_gold():
    assert grade("\\boxed{1}", None).reason.startswith("gold")
    assert grade("\\boxed{27}", 27.0).correct and grade("\\boxed{3}", 3).correct


@settings(max_examples=60, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("\\boxed{}()^_0123456789+-*/=,.$ abcfrq<>think/#\x00")), max_size=80))
def test_never_raises(s):
    g = grade(s, "1", timeout=2)
    assert isinstance(g, Grade) and isinstance(g.correct, bool) and isinstance(g.reason, str)
    assert not g.reason.startswith("error"), g


def test_hostile_strings_run_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for h in HOSTILE:
        g = grade(h, "0")
        assert g.correct is False
    out = grade_batch(HOSTILE * 2, ["0"] * len(HOSTILE) * 2, n_workers=2, progress=False)
    assert [g.correct for g in out] == [False] * len(out)
    assert list(tmp_path.iterdir()) == []


def test_timeout_in_process():
    t0 = time.time()
    g = grade("\\boxed{(x+1)^{2000}}", "x^{2000}+1", timeout=0.5)
    assert g.reason == "timeout" and g.extracted == "(x+1)^{2000}"
    assert time.time() - t0 < 30


def test_grade_batch_parallel_matches_serial():
    pairs = [("\\boxed{\\frac{1}{2}}", "0.5"), ("\\boxed{3}", "4"), ("none", "1"), (None, "1"), ("#### 1,000", "1000")] * 8
    a = grade_batch(pairs, n_workers=1, progress=False)
    b = grade_batch([p[0] for p in pairs], [p[1] for p in pairs], n_workers=2, chunk_size=3, progress=False)
    assert a == b and [g.correct for g in a[:5]] == [True, False, False, False, True]
    with pytest.raises(ValueError): grade_batch(["a"], ["1", "2"])


def test_grade_batch_real_timeout():
    pairs = [("\\boxed{2^{10^{10}}}", "1"), ("\\boxed{5}", "5"), ("\\boxed{(x+1)^{2000}}", "x^{2000}+1"), ("\\boxed{6}", "6")]
    out = grade_batch(pairs, n_workers=2, timeout=0.5, progress=False)
    assert [g.reason for g in out] == ["timeout", "ok", "timeout", "ok"]
    assert [g.correct for g in out] == [False, True, False, True]


def _evil_grade_item(args, timeout, mode):
    r, g = args
    if r == "HANG":     # a computation stuck in C code: the alarm cannot interrupt it
        signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGALRM])
        time.sleep(60)
    if r == "CRASH": os._exit(3)
    return _real_grade_item(args, timeout, mode)

_real_grade_item = G._grade_item


def test_grade_batch_survives_hung_and_crashed_workers(monkeypatch):
    monkeypatch.setattr(G, "_grade_item", _evil_grade_item)   # workers are forked: they see the patch
    pairs = [("\\boxed{1}", "1"), ("HANG", "1"), ("\\boxed{2}", "2"), ("CRASH", "1"), ("\\boxed{3}", "3"), ("\\boxed{4}", "5")]
    t0 = time.time()
    out = grade_batch(pairs, n_workers=2, timeout=0.3, grace=0.5, chunk_size=2, progress=False)
    assert time.time() - t0 < 30
    assert out[1].reason == "timeout" and out[3].reason.startswith("error: worker died")
    assert [g.correct for g in out] == [True, False, True, False, True, False]


def _write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def _cli_files(tmp_path):
    ds = tmp_path / "problems.jsonl"
    _write_jsonl(ds, [{"id": "p1", "problem": "1+1?", "answer": "2"}, {"id": "p2", "problem": "half?", "answer": "\\frac{1}{2}"},
                      {"id": "p3", "problem": "3*3?", "answer": "9"}])
    resp = tmp_path / "responses.jsonl"
    _write_jsonl(resp, [{"id": "p1", "response": "so \\boxed{2}"}, {"problem_id": "p2", "completion": "it is \\boxed{0.5}"},
                        {"id": "p3", "response": "I am not sure"}, {"id": "p9", "response": "\\boxed{1}"}])
    with open(resp, "a") as f: f.write("{not json\n")
    return ds, resp


def _check_cli_output(rc, out, outfile):
    assert rc == 0
    assert "accuracy" in out and "0.6667" in out and "skipped lines" in out
    res = [json.loads(l) for l in outfile.read_text().splitlines()]
    assert [r["correct"] for r in res] == [True, True, False] and res[2]["reason"] == "no answer found"


def test_grade_cli_with_fake_loader(tmp_path, monkeypatch, capsys):
    import datasets
    ds, resp = _cli_files(tmp_path)
    fake = types.ModuleType("o1_pruner.data")
    fake.load_problems = lambda source, split=None, limit=None: datasets.Dataset.from_json(str(source))
    monkeypatch.setitem(sys.modules, "o1_pruner.data", fake)
    rc = grade_cli(["--responses", str(resp), "--dataset", str(ds), "--output", str(tmp_path / "o.jsonl"),
                    "--n_workers", "1", "--progress", "false"])
    _check_cli_output(rc, capsys.readouterr().out, tmp_path / "o.jsonl")


@pytest.mark.skipif(importlib.util.find_spec("o1_pruner.data") is None,
                    reason="o1_pruner.data (load_problems) is not in this checkout yet")
def test_grade_cli_real_loader(tmp_path, capsys):
    ds, resp = _cli_files(tmp_path)
    rc = grade_cli(["--responses", str(resp), "--dataset", str(ds), "--output", str(tmp_path / "o.jsonl"),
                    "--n_workers", "1", "--progress", "false"])
    _check_cli_output(rc, capsys.readouterr().out, tmp_path / "o.jsonl")


@pytest.mark.skipif(not (SHARED / "o1-pruner-paper" / "math_test.json").exists(), reason="shared data not present")
def test_real_golds_match_themselves():
    rows = json.loads((SHARED / "o1-pruner-paper" / "math_test.json").read_text())[:150]
    out = grade_batch([f"... $\\boxed{{{r['ground_truth_answer']}}}$" for r in rows], [r["ground_truth_answer"] for r in rows],
                      n_workers=1, progress=False)
    assert sum(g.correct for g in out) >= 148


@pytest.mark.parametrize("pred,gold,want", [
    ("0.5", "\\frac{1}{2}", True), ("-\\frac{3}{4}", "-0.75", True), ("2/4", "\\frac12", None), ("2/4", "\\frac{1}{2}", True),
    ("7", "8", False), ("\\frac{1}{3}", "\\frac{2}{3}", False), ("0.333", "\\frac{1}{3}", False),
    ("0.333333", "\\frac{1}{3}", None),   # within Math-Verify's rounding: Math-Verify decides
    ("4\\frac{2}{3}", "\\frac{14}{3}", None), ("1/0", "5", None), ("x", "5", None)])
def test_rational_fast_path(pred, gold, want):
    assert G._rational_match(pred, gold) == want
    if want is not None:   # the fast path agrees with Math-Verify
        gp, pp = G._parse(gold, False), G._parse(pred, False)
        assert bool(G.verify(list(gp), list(pp), timeout_seconds=None)) == want


@pytest.mark.parametrize("pred,gold,surely", [
    ("x^2+1", "x^2+2", True), ("2\\cos(\\pi t+\\pi/4)", "2\\cos(\\pi t+\\pi/3)", True), ("25", "\\frac{\\cos(2t)}{15}", True),
    ("(-3,-9)", "(-3,-6)", True), ("(1,2,3)", "(1,2,4)", True), ("(1,2,3)", "(1,2,3,4)", True), ("(1,3)", "(1,2)", True), ("[1,2]", "[1,2)", True),
    ("(x+1)^2", "x^2+2x+1", False), ("2\\sqrt{2}", "\\sqrt{8}", False), ("0.3333333", "\\frac{1}{3}", False),
    ("\\text{answer}", "answer", False), ("y=2x+1", "y=2x+2", False), ("0.0000001", "0.0000002", False), ("(2,1)", "(2,1)", False)])
def test_surely_unequal_never_contradicts_verify(pred, gold, surely):
    gp, pp = G._parse(G._normalize(gold), False), G._parse(G._normalize(pred), False)
    assert G._surely_unequal(gp, pp) == surely
    if surely: assert not G.verify(list(gp), list(pp), timeout_seconds=None)


def test_grade_batch_warm_start_same_results():
    pairs = [(f"so $\\boxed{{{p}}}$", g) for p, g in [("x^2+1", "x^2+2"), ("(x+1)^2", "x^2+2x+1"), ("3", "3"), ("0.5", "\\frac12")]] * 3
    assert [g.correct for g in grade_batch(pairs, n_workers=2, progress=False)] == [False, True, True, True] * 3
