import json
import warnings

import datasets
import pytest

from o1_pruner import grading
from o1_pruner.data import (BUILTIN_DATASETS, BUILTIN_DIR, FIELD_TEST_SETS, PAPER_TEST_SETS, PROBLEM_COLUMNS, DataError,
                            MissingAnswer, build_messages, find_boxed, load_problems, normalize_row, render_prompt,
                            training_messages, SPEED_SUFFIXES, SYSTEM_PROMPTS)

SHARED_FILES = {  # file -> rows that have a usable gold answer
    "o1-pruner-paper/math_test.json": 458, "o1-pruner-paper/gsm8k.json": 1319, "o1-pruner-paper/gaokao.json": 383,
    "o1-pruner-paper/math_train_hard.json": 408, "gsm8k/train.jsonl": 7473, "gsm8k/test.jsonl": 1319,
    "qwen25-math-eval/aime24.jsonl": 30, "qwen25-math-eval/amc23.jsonl": 40,
    "qwen25-math-eval/gaokao2023en.jsonl": 383, "qwen25-math-eval/minerva_math.jsonl": 272, "math500/test.jsonl": 500,
}


@pytest.mark.parametrize("rel,n", SHARED_FILES.items())
def test_every_shared_file_loads(shared_data, rel, n):
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        ds = load_problems(shared_data / rel)
    assert len(ds) == n
    assert tuple(ds.column_names) == PROBLEM_COLUMNS
    assert PROBLEM_COLUMNS == ("id", "problem", "answer", "solution", "source", "level", "subject")
    assert all(a.strip() for a in ds["answer"]) and all(p.strip() for p in ds["problem"])
    assert len(set(ds["id"])) == len(ds)
    if n in (383, 408):  # rows with an empty answer (2 GaoKao, 3 MATH-train) with an empty answer are reported, not silently lost
        assert any("skipped" in str(x.message) for x in w)


def test_gsm8k_answers_and_solutions(shared_data):
    ds = load_problems(shared_data / "gsm8k/test.jsonl", limit=3)
    assert ds[0]["answer"] == "18" and "####" not in ds[0]["solution"] and ds[0]["solution"]
    train = load_problems(shared_data / "gsm8k/train.jsonl")
    assert not any("," in a for a in train["answer"])


def test_minerva_answer_from_boxed_solution(shared_data):
    ds = load_problems(shared_data / "qwen25-math-eval/minerva_math.jsonl")
    row = ds[0]
    assert row["answer"] == find_boxed(row["solution"])


def test_builtin_sets_match_shared_files(shared_data):
    assert [len(load_problems(n)) for n in PAPER_TEST_SETS] == [458, 1319, 383]
    a = load_problems("math-test")
    b = load_problems(shared_data / "o1-pruner-paper/math_test.json")
    assert a["answer"] == b["answer"] and a["problem"] == b["problem"]
    assert set(BUILTIN_DATASETS) >= set(PAPER_TEST_SETS)


def test_missing_answer_policy(tmp_path):
    f = tmp_path / "p.jsonl"
    f.write_text('{"question": "1+1?", "answer": "2"}\n{"question": "2+2?", "answer": ""}\n')
    with pytest.warns(UserWarning, match="skipped 1 of 2"):
        assert len(load_problems(f)) == 1
    with pytest.raises(MissingAnswer, match="row 1"):
        load_problems(f, skip_missing_answers=False)


def test_unmappable_row_is_a_clear_error(tmp_path):
    f = tmp_path / "odd.jsonl"
    f.write_text('{"q": "1+1?", "a": "2"}\n{"q": "2+2?", "a": "4"}\n')
    with pytest.raises(DataError, match=r"odd.jsonl: row 0 has no problem text.*\['a', 'q'\]"):
        load_problems(f)
    ds = load_problems(f, problem_field="q", answer_field="a")
    assert ds["answer"] == ["2", "4"]
    f2 = tmp_path / "half.jsonl"
    f2.write_text('{"q": "1+1?", "a": "2"}\n{"x": 1}\n')
    with pytest.raises(DataError, match="row 1"):
        load_problems(f2, problem_field="q", answer_field="a")
    with pytest.warns(UserWarning, match="skipped 1 of 2"):
        assert len(load_problems(f2, problem_field="q", answer_field="a", skip_invalid=True)) == 1


def test_bad_json_line_names_the_line(tmp_path):
    f = tmp_path / "bad.jsonl"
    f.write_text('{"problem": "a", "answer": "1"}\n{"problem": "b", "answer": \n')
    with pytest.raises(DataError, match="bad.jsonl: line 2"):
        load_problems(f)


def test_formats_parquet_csv_saved_dataset(tmp_path):
    rows = [{"problem": f"p{i}", "answer": str(i), "level": i % 3} for i in range(6)]
    ds = datasets.Dataset.from_list(rows)
    ds.to_parquet(str(tmp_path / "x.parquet"))
    ds.to_csv(str(tmp_path / "x.csv"), index=False)
    ds.save_to_disk(str(tmp_path / "saved"))
    datasets.DatasetDict({"train": ds}).save_to_disk(str(tmp_path / "saved_dict"))
    (tmp_path / "x.json").write_text(json.dumps({"data": rows}))
    for src in ["x.parquet", "x.csv", "saved", "x.json"]:
        out = load_problems(tmp_path / src)
        assert out["answer"] == [str(i) for i in range(6)] and out["level"][1] == "1", src
    assert len(load_problems(tmp_path / "saved_dict", split="train")) == 6
    with pytest.raises(DataError, match="pass split="):
        load_problems(tmp_path / "saved_dict")


def test_missing_file_and_unknown_hub_name(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        load_problems(tmp_path / "nope.jsonl")
    with pytest.raises(DataError, match="Hugging Face Hub"):
        load_problems("no-such-org/no-such-dataset-o1p")


def test_shuffle_limit_deterministic():
    a = load_problems("gsm8k-test", shuffle=True, seed=3, limit=10)["id"]
    assert a == load_problems("gsm8k-test", shuffle=True, seed=3, limit=10)["id"]
    assert a != load_problems("gsm8k-test", limit=10)["id"]
    with pytest.raises(DataError):
        load_problems("gsm8k-test", limit=-1)


def test_find_boxed_nested_and_first():
    t = r"first \boxed{\frac{a}{b^{2}}} then \boxed {x}"
    assert find_boxed(t) == "x" and find_boxed(t, "first") == r"\frac{a}{b^{2}}"
    assert find_boxed(None) is None


def test_prompts(char_tokenizer):
    m = build_messages("Q", system="qwq", speed="very_fast")
    assert m[0]["content"] == SYSTEM_PROMPTS["qwq"]
    assert m[1]["content"] == "Solve the problem: Q" + SPEED_SUFFIXES["very_fast"]
    assert build_messages("Q", system="Be brief.")[0]["content"] == "Be brief."
    assert training_messages("Q", system=None) == [{"role": "user", "content": "Q"}]
    text = render_prompt(char_tokenizer, build_messages("Q", system=None, user_template="{problem}"))
    assert text == "<|im_start|>user\nQ<|im_end|>\n<|im_start|>assistant\n"
    with pytest.raises(ValueError, match="must contain"):
        build_messages("Q", user_template="no placeholder")


def test_normalize_numeric_answers():
    assert normalize_row({"problem": "p", "answer": 3}, 0, "f")["answer"] == "3"
    assert normalize_row({"problem": "p", "answer": 27.0}, 0, "f")["answer"] == "27"
    assert normalize_row({"problem": "p", "answer": 0.5}, 0, "f")["answer"] == "0.5"
    with pytest.raises(DataError, match="not an object"):
        normalize_row(["p", "3"], 5, "f")


FIELD_SETS = {  # name -> (shared file, rows, levels, subjects)
    "math-500": ("math500/test.jsonl", 500, {"1", "2", "3", "4", "5"}, 7),
    "aime24": ("qwen25-math-eval/aime24.jsonl", 30, {None}, 0),
    "amc23": ("qwen25-math-eval/amc23.jsonl", 40, {None}, 0),
    "minerva-math": ("qwen25-math-eval/minerva_math.jsonl", 272, {None}, 9),
}


@pytest.mark.parametrize("name", FIELD_SETS)
def test_field_builtin_sets_load_offline_with_metadata(name):
    rel, n, levels, n_subjects = FIELD_SETS[name]
    assert (BUILTIN_DIR / BUILTIN_DATASETS[name]).is_file()   # shipped in the package, not read from ../shared
    ds = load_problems(name)
    assert len(ds) == n and set(ds["source"]) == {name} and len(set(ds["id"])) == n
    assert all(a.strip() for a in ds["answer"]) and all(p.strip() for p in ds["problem"])
    assert set(ds["level"]) == levels
    assert len({s for s in ds["subject"] if s is not None}) == n_subjects
    assert set(FIELD_TEST_SETS) == set(FIELD_SETS)


def test_field_builtin_sets_match_shared_files(shared_data):
    for name, (rel, n, _, _) in FIELD_SETS.items():
        assert (BUILTIN_DIR / BUILTIN_DATASETS[name]).read_bytes() == (shared_data / rel).read_bytes(), name
    m500 = load_problems("math-500").to_pandas()
    assert m500.level.value_counts().to_dict() == {"5": 134, "4": 128, "3": 105, "2": 90, "1": 43}
    assert m500.subject.value_counts()["Algebra"] == 124
    assert load_problems("amc23")["answer"][0] == "27" and load_problems("aime24")["answer"][0] == "204"
    minerva = load_problems("minerva-math")
    assert minerva[0]["subject"].startswith("Introduction to Astronomy")
    assert all(a == find_boxed(s) for a, s in zip(minerva["answer"], minerva["solution"]))


def test_builtin_license_files_shipped():
    names = {p.name for p in BUILTIN_DIR.iterdir()}
    assert {"LICENSE", "LICENSE-MATH", "LICENSE-Apache-2.0", "README.md"} <= names
    readme = (BUILTIN_DIR / "README.md").read_text()
    assert all(f"`{n}`" in readme for n in BUILTIN_DATASETS)


def test_one_boxed_extractor():
    assert grading._box_spans.__module__ == find_boxed.__module__ == "o1_pruner.data"   # the grader uses data's
    assert find_boxed("\\boxed{" * 5000 + "1" + "}" * 5000) == "1"
