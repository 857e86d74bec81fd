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
from o1_pruner.data import find_boxed
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
    ("Final Answer: The final answer is $\\frac{3}{4}$. I hope it is correct.", "last", "\\frac{3}{4}"),
    ("**Final Answer**\n\n$$42$$", "last", "42"),
    ("Answer: (C)", "last", "(C)"),
    ("The answer is 7. Checking again, the answer is correct.", "last", "7"),
    ("Adding them up gives $x = \\frac{7}{2}$ for the width.", "last", "x = \\frac{7}{2}"),
    ("so in total she pays 18 dollars for 3 books", "last", "3"),
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


def _evil_grade_item(args, timeout, mode, extraction="flexible"):
    r, g = args
    if r == "HANG":     # a computation stuck in C code: the alarm cannot interrupt it
        signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGALRM])
        time.sleep(60)
    if r == "CRASH": os._exit(3)
    return _real_grade_item(args, timeout, mode, extraction)

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


def test_grade_cli_extraction_option(tmp_path, capsys):
    ds, resp = _cli_files(tmp_path)
    _write_jsonl(resp, [{"id": "p1", "response": "so \\boxed{2}"},
                        {"id": "p3", "response": "3*3 = 9, so the answer is 9."}])
    args = ["--responses", str(resp), "--dataset", str(ds), "--n_workers", "1", "--progress", "false",
            "--output", str(tmp_path / "o.jsonl")]
    assert grade_cli(args) == 0
    res = [json.loads(l) for l in (tmp_path / "o.jsonl").read_text().splitlines()]
    assert [(r["correct"], r["reason"]) for r in res] == [(True, "ok"), (True, "ok (answer line)")]
    assert grade_cli(args + ["--extraction", "strict"]) == 0
    out = capsys.readouterr().out
    assert "strict extraction" in out and "0.5000" in out
    res = [json.loads(l) for l in (tmp_path / "o.jsonl").read_text().splitlines()]
    assert [(r["correct"], r["reason"]) for r in res] == [(True, "ok"), (False, "no answer found")]
    with pytest.raises(ValueError, match="--extraction must be one of"):   # a ConfigError: exit code 2 in the CLI
        grade_cli(args + ["--extraction", "loose"])


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


# --- extraction when nothing is boxed, strict mode, several boxes --------------------------------------------------

def _gsm(split, n):
    return [json.loads(l) for l in (SHARED / "gsm8k" / f"{split}.jsonl").read_text().splitlines()[:n]]


@pytest.mark.skipif(not (SHARED / "gsm8k" / "train.jsonl").exists(), reason="shared data not present")
def test_gsm8k_solutions_graded_by_their_hash_line():
    rows = _gsm("train", 300)
    golds = [r["answer"].split("####")[-1].strip() for r in rows]
    out = grade_batch([r["answer"] for r in rows], golds, n_workers=1, progress=False)
    assert all(g.correct and g.reason == "ok (####)" for g in out)
    strict = grade_batch([r["answer"] for r in rows[:20]], golds[:20], n_workers=1, progress=False, extraction="strict")
    assert all(g.reason == "no answer found" for g in strict)
    # without the #### line, the last expression (Math-Verify's extraction) still finds most answers
    bare = grade_batch([r["answer"].rsplit("####", 1)[0] for r in rows[:100]], golds[:100], n_workers=1, progress=False)
    assert sum(g.correct for g in bare) >= 90 and {g.reason for g in bare} <= {"ok (math-verify)", "ok (last number)"}


def _unbox(text):
    out, last = [], 0
    for start, a, b, end in filter(None, G._box_spans(text)):
        if start >= last: out += [text[last:start], text[a:b]]; last = end
    return "".join(out) + text[last:]


@pytest.mark.skipif(not (SHARED / "math500" / "test.jsonl").exists(), reason="shared data not present")
def test_math500_solutions_boxed_and_unboxed():
    rows = [json.loads(l) for l in (SHARED / "math500" / "test.jsonl").read_text().splitlines()[:60]]
    boxed = grade_batch([r["solution"] for r in rows], [r["answer"] for r in rows], n_workers=1, progress=False)
    assert sum(g.correct for g in boxed) >= 57 and all(g.reason == "ok" for g in boxed)
    bare = grade_batch([_unbox(r["solution"]) for r in rows], [r["answer"] for r in rows], n_workers=1, progress=False)
    assert all("\\boxed" not in _unbox(r["solution"]) for r in rows)
    assert 30 <= sum(g.correct for g in bare) < 57   # the last expression of a solution is often not its answer
    assert {g.reason for g in bare} <= {"ok (math-verify)", "ok (answer line)", "no answer found", "ok (last number)"}


@pytest.mark.parametrize("response,gold,correct,reason", [
    ("Let me compute: 48/2 = 24 in May, 48 + 24 = 72 in total.\n\n**Final Answer:** 72", "72", True,
     "ok (answer line)"),
    ("The area is $\\pi r^2 = 25\\pi$.\n\nFinal Answer: The final answer is $25\\pi$. I hope it is correct.",
     "25\\pi", True, "ok (answer line)"),
    ("Therefore the answer is: $\\frac{3}{5}$", "\\frac{3}{5}", True, "ok (answer line)"),
    ("So Janet makes 9 * 2 = $18 every day.\n#### 18", "18", True, "ok (####)"),
    ("Solving, the two roots are $x=2$ and $x=3$, so the larger one is $3$.", "3", True, "ok (math-verify)"),
    ("<think>Try 5... no, 6 works.</think>\nThe number of ways is 6.", "6", True, "ok (math-verify)"),
    ("The remaining balance after two payments is 1,250 dollars", "1250", True, "ok (math-verify)"),
    ("I think it is seven, since we add 3 and 4", "7", False, "ok (math-verify)"),
    ("I'm not sure how to finish this one.", "7", False, "no answer found"),
])
def test_unboxed_model_style_responses(response, gold, correct, reason):
    g = grade(response, gold)
    assert (g.correct, g.reason) == (correct, reason), g
    assert grade(response, gold, extraction="strict").reason == "no answer found"


def test_last_number_only_for_numeric_gold():
    # Math-Verify's plain-number pattern wants a space or `=` before the number: here only the last-number rule finds it
    assert G._extract("x" * 10 + "12", gold="12") == ("12", "last number", None)
    assert grade("x" * 10 + "12", "12") == Grade(True, "12", "ok (last number)")
    assert G._extract("x" * 10 + "12", gold="\\frac{1}{2}").rule == "none"


def test_strict_and_mode_options():
    r = "My first guess \\boxed{5} was wrong; the answer is 6."
    assert grade(r, "6").correct is False and grade(r, "6").reason == "ok"   # a box wins over any later text
    assert grade("the answer is 6", "6", extraction="strict").reason == "no answer found"
    assert grade("x", "1", extraction="loose").reason.startswith("error: ValueError")
    with pytest.raises(ValueError): grade_batch(["a"], ["1"], extraction="loose")
    with pytest.raises(ValueError): extract_answer("a", extraction="loose")


@pytest.mark.parametrize("response,gold,want,reason", [
    ("The solutions are $\\boxed{(2, 2)}$ and $\\boxed{(6, 2)}$.", "(2, 2), (6, 2)", True, "ok (several boxes)"),
    ("The solutions are $\\boxed{(2, 2)}$ and $\\boxed{(6, 2)}$.", "(6, 2), (2, 2)", True, "ok (several boxes)"),
    ("The possible values are \\boxed{1}, \\boxed{2}, \\boxed{3}.", "1, 2, 3", True, "ok (several boxes)"),
    ("The possible values are \\boxed{1}, \\boxed{2}, \\boxed{3}.", "\\{1,2,3\\}", True, "ok (several boxes)"),
    ("So $x = \\boxed{-2}$ or $x = \\boxed{5}$.", "-2, 5", True, "ok (several boxes)"),
    ("The roots are \\boxed{2+\\sqrt{3}} and \\boxed{2-\\sqrt{3}}", "2 \\pm \\sqrt{3}", True, "ok (several boxes)"),
    ("The possible values are \\boxed{1}, \\boxed{2}, \\boxed{4}.", "1, 2, 3", False, "ok (several boxes)"),
    ("First I got \\boxed{1}, but rechecking, it is \\boxed{2} and \\boxed{3}.", "2, 3", True, "ok (several boxes)"),
    ("The answer is \\boxed{(2, 2), (6, 2)}", "(2, 2), (6, 2)", True, "ok"),
    # one-part gold: the last box decides, as before, even right after a wrong one
    ("So \\boxed{3}, \\boxed{4}", "4", True, "ok"),
    ("I first thought \\boxed{12}, and then \\boxed{15}", "15", True, "ok"),
    ("The pair is \\boxed{1} and \\boxed{2}", "(1, 2)", False, "ok"),
])
def test_several_boxes(response, gold, want, reason):
    g = grade(response, gold)
    assert (g.correct, g.reason) == (want, reason), g


# --- bounded extraction and the per-item timeout on every path -----------------------------------------------------

PATHOLOGICAL = ["\\boxed{" * 16000, "\\fbox{" * 16000 + "1", "{" * 50000 + "\\boxed{1", "\\[" * 30000,
                "answer: " * 20000, "$\\frac{" * 10000, "#### " * 20000]


@pytest.mark.parametrize("text", PATHOLOGICAL)
def test_pathological_input_finishes_within_its_timeout(text):
    g = grade(text, "1", timeout=5)
    assert g.reason != "timeout" and not g.reason.startswith("error"), g
    assert grade(text, "1", timeout=5, extraction="strict").reason == "no answer found"


def test_pathological_batch_in_process():
    out = grade_batch(PATHOLOGICAL + ["\\boxed{1}"], ["1"] * (len(PATHOLOGICAL) + 1), timeout=5, progress=False)
    assert [g.reason != "timeout" for g in out] == [True] * len(out) and out[-1].correct


def _slow_spans(text):
    time.sleep(30)
    return []


def test_timeout_covers_extraction(monkeypatch):
    monkeypatch.setattr(G, "_box_spans", _slow_spans)
    t0 = time.time()
    assert grade("\\boxed{1}", "1", timeout=0.5).reason == "timeout"
    out = grade_batch([("\\boxed{1}", "1")] * 2, n_workers=None, timeout=0.5, progress=False)   # < 256: in process
    assert [g.reason for g in out] == ["timeout", "timeout"]
    assert time.time() - t0 < 20


def test_extraction_is_linear_in_boxes():
    spans = G._box_spans("\\boxed{" * 16000 + "1" + "}" * 16000)
    assert len(spans) == 16000 and all(s is not None for s in spans)
    assert find_boxed("\\boxed{" * 16000 + "1" + "}" * 16000) == "1"


# --- the quick numeric check agrees with Math-Verify ---------------------------------------------------------------

def _mv_value(e, k):
    import sympy
    name = lambda x: x.name.lower().replace("{", "").replace("}", "")
    sub = {x: sympy.E if x.name == "e" else G._probe(name(x), k) for x in e.free_symbols}
    return complex(e.xreplace(sub).evalf(30))


@pytest.mark.skipif(not (SHARED / "math500" / "test.jsonl").exists(), reason="shared data not present")
def test_quick_reader_values_equal_math_verify_on_real_golds():
    import sys as _sys
    _sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
    from _golds import all_golds
    golds = sorted({G._normalize(g) for gs in all_golds(SHARED).values() for g in gs})
    checked = 0
    for s in golds:
        q = G._quick_values(s)
        if q is None or q[0] != "scalar" or G._rational(s) is not None: continue
        e = G._parse(s, False)[0]
        if isinstance(e, str): continue   # Math-Verify could not parse it: it compares strings, never equal to ours
        for k in range(2):
            assert abs(_mv_value(e, k) - q[1][0][0][k]) <= 1e-7 * max(1, abs(q[1][0][0][k])), s
        checked += 1
    assert checked > 150


@settings(max_examples=150, deadline=None)
@given(st.recursive(st.sampled_from(["2", "3", "0.5", "x", "y", "\\pi", "e", "a_{1}", "\\omega", "12"]),
                    lambda t: st.one_of(st.tuples(t, st.sampled_from(["+", "-", "\\cdot ", "/", " ", ""]), t)
                                        .map("".join),
                                        t.map(lambda a: f"\\frac{{{a}}}{{2}}"), t.map(lambda a: f"\\sqrt{{{a}}}"),
                                        t.map(lambda a: f"({a})^{{2}}"), t.map(lambda a: f"\\sin({a})"),
                                        t.map(lambda a: f"-{a}")),
                    max_leaves=6))
def test_quick_reader_values_equal_math_verify_random(s):
    q = G._quick_values(G._normalize(s))
    if q is None or q[0] != "scalar": return
    e = G._parse(G._normalize(s), False)[0]
    if isinstance(e, str): return
    for k in range(2):
        assert abs(_mv_value(e, k) - q[1][0][0][k]) <= 1e-7 * max(1, abs(q[1][0][0][k])), (s, str(e))


@pytest.mark.parametrize("pred,gold", [
    ("(1,2,4)", "(1,2,3)"), ("[1, 3)", "[1, 2)"), ("\\{1, 5\\}", "\\{2, 1\\}"), ("y = 2x + 1", "y = 2x + 3"),
    ("4", "(1, 2)"), ("1, 2, 3", "7"), ("\\frac{\\sqrt{3}}{2}", "\\frac{\\sqrt{2}}{2}"), ("2\\pi r", "\\pi r^2"),
    ("\\sin 2x", "2\\sin x"), ("e^{-2t}", "e^{-t}"), ("\\omega_{n} x", "2\\omega_{n} x"),
    ("x", "y"), ("C", "628"), ("32", "(-\\infty, -3)"), ("[x+1]^2", "(x+2)^2")])
def test_quick_differ_only_when_math_verify_says_unequal(pred, gold):
    p, g = G._normalize(pred), G._normalize(gold)
    assert G._quick_differ(p, g)
    assert not G.verify(list(G._parse(g, False)), list(G._parse(p, False)), timeout_seconds=None)


@pytest.mark.parametrize("pred,gold", [
    ("(1, 2)", "\\{1, 2\\}"), ("(3, 1]", "(5, 2]"), ("2\\frac{1}{2}", "\\frac{5}{2}"), ("(2)(3)", "5"),
    ("\\nu", "n u"), ("E", "e"),
    ("2, \\frac{4}{2}", "2"), ("0.3333333", "\\frac{1}{3}"), ("\\nu", "n u"), ("x^{T}", "x"), ("2dx", "2d x")])
def test_quick_differ_gives_up_where_math_verify_reads_differently(pred, gold):
    assert not G._quick_differ(G._normalize(pred), G._normalize(gold))


def test_quick_differ_never_contradicts_verify_on_wrong_variants():
    import random
    sys_path = str(Path(__file__).resolve().parents[1] / "bench")
    import sys as _sys
    if sys_path not in _sys.path: _sys.path.insert(0, sys_path)
    from bench_grading import build_pairs
    pairs, _ = build_pairs(1200, seed=7, k=1)
    claims = 0
    for r, g in pairs:
        p, gg = G._normalize(extract_answer(r)), G._normalize(g)
        if p == gg or G._rational_match(p, gg) is not None or not G._quick_differ(p, gg): continue
        claims += 1
        assert not G.verify(list(G._parse(gg, False)), list(G._parse(p, False)), timeout_seconds=None), (p, gg)
    assert claims > 20
