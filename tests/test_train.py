"""Stage 4 trainer: objective, log-probs, optimisation direction, clipping, save/load, resume, freeze, LoRA, CLI."""
import json
import math

import datasets
import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from _train_helpers import add_ref_logp, rewarded_rows, write_rewarded_dataset
from o1_pruner.config import ConfigError, list_recipes, load_recipe
from o1_pruner.models import ModelArguments, _decoder_layers, apply_freeze, merge_lora, resolve_ds_config
from o1_pruner.tokens import BatchCollator, sequence_logprobs, tokenize_example
from o1_pruner.train import (CheckpointSelectionCallback, DataArguments, O1PrunerConfig, O1PrunerTrainer,
                             TrainDataError, o1_pruner_loss, prepare_rewarded_dataset, train_cli, train_o1_pruner)


@pytest.fixture(scope="module")
def tok(tiny_model_dir):
    return AutoTokenizer.from_pretrained(tiny_model_dir)  # the tokenizer the trainer itself loads


@pytest.fixture(scope="module")
def base_model(tiny_model_dir):
    return AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32).eval()


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory, tok, base_model):
    return write_rewarded_dataset(tmp_path_factory.mktemp("rewarded") / "ds", tok, base_model, n_problems=4)


def targs(out, **kw):
    base = dict(output_dir=str(out), use_cpu=True, per_device_train_batch_size=4, max_steps=2, learning_rate=1e-3,
                logging_steps=1, save_strategy="no", report_to=[], disable_tqdm=True, seed=0, data_seed=0,
                lr_scheduler_type="constant", weight_decay=0.0, dataloader_num_workers=0)
    base.update(kw)
    return O1PrunerConfig(**base)


def batch_of(tok, rows, cutoff=128):
    toks = [dict(tokenize_example(tok, r["messages"], r["completion"], cutoff), advantage=r["advantage"],
                 ref_logp=r["ref_logp"]) for r in rows]
    return BatchCollator(tok.pad_token_id)(toks)


# ---------------------------------------------------------------- objective

def test_loss_matches_hand_computation():
    lm = torch.tensor([-1.0, -2.5, -0.7, -1.2])
    ref = torch.tensor([-1.1, -2.0, -1.0, -1.2])
    adv = torch.tensor([1.0, -2.0, 0.5, -0.3])
    n = torch.tensor([10, 20, 5, 8])
    loss, m = o1_pruner_loss(lm, lm * n, n, ref, adv)
    expect = []
    for l, r, a in zip(lm.tolist(), ref.tolist(), adv.tolist()):
        ratio = math.exp(l - r)
        expect.append(max(-a * ratio, -a * min(max(ratio, 0.8), 1.2)))
    assert loss.item() == pytest.approx(sum(expect) / 4, rel=1e-6)
    # sample 3: A>0 and r = e^0.3 > 1.2 (clipped); sample 2: A<0, r = e^-0.5 < 0.8 (clipped)
    assert m["clip_frac"] == pytest.approx(0.5)
    assert m["ratio"] == pytest.approx(sum(math.exp(l - r) for l, r in zip(lm.tolist(), ref.tolist())) / 4, rel=1e-6)


def test_loss_variants():
    lm, ref = torch.tensor([-1.0, -2.0]), torch.tensor([-1.05, -1.9])
    n, adv = torch.tensor([4, 6]), torch.tensor([1.0, -1.0])
    # sum ratio: exp(sum lp - ref * n)
    loss, _ = o1_pruner_loss(lm, lm * n, n, ref, adv, ratio_type="sum", clip_eps=10.0)
    r = [math.exp(-1.0 * 4 + 1.05 * 4), math.exp(-2.0 * 6 + 1.9 * 6)]
    assert loss.item() == pytest.approx((-r[0] + r[1]) / 2, rel=1e-5)
    # weighted SFT
    loss, _ = o1_pruner_loss(lm, lm * n, n, ref, adv, loss_type="weighted_sft")
    assert loss.item() == pytest.approx((1.0 * 1.0 - 2.0) / 2)
    # clamped advantages: the negative sample contributes nothing
    loss, _ = o1_pruner_loss(lm, lm * n, n, ref, adv, clamp_negative_advantages=True)
    assert loss.item() == pytest.approx(-math.exp(0.05) / 2, rel=1e-6)
    # KL k3 and SFT anchor add on top of the clipped loss
    base, _ = o1_pruner_loss(lm, lm * n, n, ref, adv)
    with_kl, m = o1_pruner_loss(lm, lm * n, n, ref, adv, kl_coef=0.5)
    d = (ref - lm).tolist()
    k3 = sum(math.exp(x) - 1 - x for x in d) / 2
    assert with_kl.item() == pytest.approx(base.item() + 0.5 * k3, rel=1e-6) and m["kl"] == pytest.approx(k3, rel=1e-5)
    with_sft, _ = o1_pruner_loss(lm, lm * n, n, ref, adv, sft_anchor_coef=2.0)
    assert with_sft.item() == pytest.approx(base.item() + 2.0 * 1.0, rel=1e-6)
    with pytest.raises(ValueError, match="ratio_type"):
        o1_pruner_loss(lm, lm, n, ref, adv, ratio_type="max")


# ---------------------------------------------------------------- log-probs

@pytest.mark.parametrize("chunk", [1, 7, 4096])
def test_chunked_logprobs_match_float64(tok, base_model, chunk):
    rows = add_ref_logp(rewarded_rows(3), tok, base_model)
    b = batch_of(tok, rows)
    model = AutoModelForCausalLM.from_pretrained(base_model.name_or_path, dtype=torch.float32)
    mean_lp, sum_lp, n = sequence_logprobs(model, b["input_ids"], b["attention_mask"], b["response_mask"], chunk)
    mean_lp.sum().backward()
    g_chunk = {k: p.grad.clone() for k, p in model.named_parameters()}
    model.zero_grad()
    m64 = model.double()
    logits = m64(input_ids=b["input_ids"], attention_mask=b["attention_mask"]).logits
    lp = logits[:, :-1].log_softmax(-1).gather(-1, b["input_ids"][:, 1:, None]).squeeze(-1)
    mask = (b["response_mask"][:, 1:] * b["attention_mask"][:, 1:]).double()
    ref_sum = (lp * mask).sum(1)
    ref_mean = ref_sum / mask.sum(1)
    assert n.tolist() == mask.sum(1).long().tolist()
    assert torch.allclose(sum_lp.double(), ref_sum, atol=1e-4)
    assert torch.allclose(mean_lp.double(), ref_mean, atol=1e-5)
    ref_mean.sum().backward()
    for k, p in m64.named_parameters():
        assert torch.allclose(g_chunk[k].double(), p.grad, atol=1e-5, rtol=1e-3), k


# ---------------------------------------------------------------- optimisation behaviour

def test_sgd_step_moves_logprobs_by_advantage_sign(tmp_path, tiny_model_dir, tok, base_model):
    rows = add_ref_logp(rewarded_rows(1), tok, base_model)  # one positive, one negative sample
    assert rows[0]["advantage"] > 0 > rows[1]["advantage"]
    for i, row in enumerate(rows):  # one SGD step (no momentum) on each sample alone
        ds = prepare_rewarded_dataset(datasets.Dataset.from_list([row]), tok, 128)
        model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)
        tr = O1PrunerTrainer(model=model, args=targs(tmp_path / str(i), optim="sgd", learning_rate=0.05, max_steps=1,
                                                     per_device_train_batch_size=1),
                             train_dataset=ds, data_collator=BatchCollator(tok.pad_token_id), processing_class=tok)
        tr.train()
        b = batch_of(tok, [row])
        with torch.no_grad():
            after = sequence_logprobs(model.eval(), b["input_ids"], b["attention_mask"], b["response_mask"])[0].item()
        if row["advantage"] > 0:
            assert after > row["ref_logp"] + 1e-4, (row["ref_logp"], after)
        else:
            assert after < row["ref_logp"] - 1e-4, (row["ref_logp"], after)


def test_no_gradient_from_clipped_side(tok, base_model, tiny_model_dir):
    rows = add_ref_logp(rewarded_rows(1), tok, base_model)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)

    def grads(adv, ref_shift):
        model.zero_grad()
        r = [dict(rows[0], advantage=adv, ref_logp=rows[0]["ref_logp"] + ref_shift)]
        b = batch_of(tok, r)
        mean_lp, sum_lp, n = sequence_logprobs(model, b["input_ids"], b["attention_mask"], b["response_mask"])
        loss, _ = o1_pruner_loss(mean_lp, sum_lp, n, b["ref_logp"], b["advantage"])
        loss.backward()
        return sum(float(p.grad.abs().sum()) for p in model.parameters() if p.grad is not None)

    assert grads(1.0, -0.5) == 0.0   # r = e^0.5 > 1.2 with A > 0: clipped
    assert grads(-1.0, 0.5) == 0.0   # r = e^-0.5 < 0.8 with A < 0: clipped
    assert grads(1.0, 0.5) > 0.0     # r < 0.8 with A > 0: not clipped, gradient flows
    assert grads(-1.0, -0.5) > 0.0   # r > 1.2 with A < 0: not clipped (pessimistic side)
    assert grads(1.0, 0.0) > 0.0     # r = 1


# ---------------------------------------------------------------- end to end, save/load, online reference

def _run(data_dir, tiny_model_dir, out, model_kw=None, method_kw=None, **train_kw):
    return train_o1_pruner(ModelArguments(model_name_or_path=str(tiny_model_dir), **(model_kw or {})),
                           DataArguments(dataset_dir=str(data_dir)), targs(out, cutoff_len=128, **(method_kw or {}), **train_kw))


def test_full_train_saves_and_loads_and_logs(tmp_path, data_dir, tiny_model_dir, base_model):
    tr = _run(data_dir, tiny_model_dir, tmp_path / "out")
    logs = [h for h in tr.state.log_history if "loss" in h]
    assert len(logs) == 2
    for k in ("ratio", "clip_frac", "kl", "adv_mean", "adv_std", "pad_frac", "tokens_per_s"):
        assert k in logs[0], k
    assert logs[0]["ratio"] == pytest.approx(1.0, abs=1e-5)  # step 1: policy == reference
    assert 0 <= logs[0]["pad_frac"] < 1
    loaded = AutoModelForCausalLM.from_pretrained(tmp_path / "out")
    sd0, sd1 = base_model.state_dict(), loaded.state_dict()
    assert any(not torch.equal(sd0[k], sd1[k]) for k in sd0)
    info = json.loads((tmp_path / "out" / "o1_pruner_train.json").read_text())
    assert info["global_step"] == 2 and info["dataset_manifest"]["cutoff_len"] == 128


def test_online_reference_matches_dataset_reference(tmp_path, data_dir, tiny_model_dir):
    a = _run(data_dir, tiny_model_dir, tmp_path / "a", max_steps=2)
    b = _run(data_dir, tiny_model_dir, tmp_path / "b", method_kw=dict(ref_source="online"), max_steps=2)
    la = [h["loss"] for h in a.state.log_history if "loss" in h]
    lb = [h["loss"] for h in b.state.log_history if "loss" in h]
    assert la == pytest.approx(lb, abs=1e-5)
    assert b.ref_model is not None and not any(p.requires_grad for p in b.ref_model.parameters())


def test_freeze_trains_only_last_layers(tmp_path, data_dir, tiny_model_dir, base_model):
    tr = _run(data_dir, tiny_model_dir, tmp_path / "out", model_kw=dict(finetuning_type="freeze", freeze_trainable_layers=1))
    after = tr.model.state_dict()
    n_layers = len(_decoder_layers(base_model))
    for k, v in base_model.state_dict().items():
        changed = not torch.equal(v, after[k])
        assert changed == k.startswith(f"model.layers.{n_layers - 1}."), k
    with pytest.raises(ValueError, match="layers"):
        apply_freeze(AutoModelForCausalLM.from_pretrained(tiny_model_dir), 99)


def test_lora_adapter_saves_loads_and_merges(tmp_path, data_dir, tiny_model_dir, tok):
    from peft import AutoPeftModelForCausalLM
    out = tmp_path / "lora"
    tr = _run(data_dir, tiny_model_dir, out, model_kw=dict(finetuning_type="lora", lora_r=4, lora_alpha=8, merge_lora=True),
              learning_rate=5e-2)
    assert (out / "adapter_config.json").exists() and not (out / "model.safetensors").exists()
    peft_model = AutoPeftModelForCausalLM.from_pretrained(out).eval()
    merged = AutoModelForCausalLM.from_pretrained(out / "merged").eval()
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()
    ids = torch.tensor([tok("<|im_start|>user\nWhat is 1 + 2?<|im_end|>")["input_ids"]])
    with torch.no_grad():
        lp, lm, lb = peft_model(ids).logits, merged(ids).logits, base(ids).logits
    assert torch.allclose(lp, lm, atol=1e-4)
    assert not torch.allclose(lp, lb, atol=1e-4)  # the adapter learned something
    # merge_lora as a function too
    merged2 = AutoModelForCausalLM.from_pretrained(merge_lora(out, tmp_path / "m2", str(tiny_model_dir)))
    with torch.no_grad():
        assert torch.allclose(merged2(ids).logits, lm, atol=1e-5)
    # online reference for LoRA = the base model with the adapter disabled (no second copy)
    tr2 = _run(data_dir, tiny_model_dir, tmp_path / "lora2", model_kw=dict(finetuning_type="lora", lora_r=4), method_kw=dict(ref_source="online"), max_steps=1)
    assert tr2.ref_model is None
    assert [h for h in tr2.state.log_history if "loss" in h][0]["ratio"] == pytest.approx(1.0, abs=1e-5)


def test_resume_continues_where_it_stopped(tmp_path, data_dir, tiny_model_dir):
    full = _run(data_dir, tiny_model_dir, tmp_path / "full", max_steps=4, save_strategy="steps", save_steps=2,
                per_device_train_batch_size=2)
    assert (tmp_path / "full" / "checkpoint-2").exists()
    resumed = _run(data_dir, tiny_model_dir, tmp_path / "resumed", max_steps=4, per_device_train_batch_size=2,
                   resume_from_checkpoint=str(tmp_path / "full" / "checkpoint-2"))
    steps = [h["step"] for h in resumed.state.log_history if "loss" in h]
    assert steps == [1, 2, 3, 4] and resumed.state.global_step == 4  # history 1-2 restored from the checkpoint
    la = {h["step"]: h["loss"] for h in full.state.log_history if "loss" in h}
    lb = {h["step"]: h["loss"] for h in resumed.state.log_history if "loss" in h}
    for s in (3, 4):
        assert lb[s] == pytest.approx(la[s], abs=1e-6)
    sa, sb = full.model.state_dict(), resumed.model.state_dict()
    for k in sa:
        assert torch.allclose(sa[k], sb[k], atol=1e-6), k


def test_checkpoint_selection_callback(tmp_path, data_dir, tiny_model_dir):
    calls = []

    def fake_eval(model, tokenizer, val_dataset):
        calls.append(len(calls))
        # accuracy stays put, responses get shorter, then accuracy collapses at the last evaluation
        return {"accuracy": [0.5, 0.5, 0.5, 0.1][len(calls) - 1], "mean_tokens": [100, 80, 60, 10][len(calls) - 1]}

    cb = CheckpointSelectionCallback(fake_eval, eval_steps=1, tolerance=0.05)
    tr = train_o1_pruner(ModelArguments(model_name_or_path=str(tiny_model_dir)),
                         DataArguments(dataset_dir=str(data_dir), val_size=1),
                         targs(tmp_path / "out", max_steps=3, cutoff_len=128), callbacks=[cb])
    sel = json.loads((tmp_path / "out" / "selection.json").read_text())
    assert [h["step"] for h in sel["history"]] == [0, 1, 2, 3]
    assert sel["best"]["step"] == 2  # shortest while accuracy >= 0.5 - 0.05
    assert (tmp_path / "out" / "best" / "model.safetensors").exists()
    assert cb.val_dataset is not None and len(set(cb.val_dataset["problem_id"])) == 1
    assert tr.eval_dataset is not None and len(tr.train_dataset) == 6


def test_checkpoint_selection_against_a_fixed_baseline(tmp_path, data_dir, tiny_model_dir):
    """Iterative rounds: the bar is the original reference's accuracy, not this run's (lucky) step 0."""
    accs, toks = [0.9, 0.78, 0.8, 0.6], [100, 80, 70, 10]
    seen = []

    def fake_eval(model, tokenizer, val_dataset):
        seen.append(1)
        return {"accuracy": accs[len(seen) - 1], "mean_tokens": toks[len(seen) - 1]}

    tr = train_o1_pruner(ModelArguments(model_name_or_path=str(tiny_model_dir)),
                         DataArguments(dataset_dir=str(data_dir), val_size=1),
                         targs(tmp_path / "out", max_steps=3, cutoff_len=128, select_eval_steps=1, select_tolerance=0.01,
                               select_baseline_accuracy=0.79), eval_fn=fake_eval)
    sel = json.loads((tmp_path / "out" / "selection.json").read_text())
    assert sel["baseline_accuracy"] == 0.79 and sel["best"]["step"] == 2  # 0.8 >= 0.79 - 0.01 at 70 tokens; step 0's 0.9 is no bar
    assert (tmp_path / "out" / "best" / "model.safetensors").exists() and tr.state.global_step == 3


# ---------------------------------------------------------------- data checks

def test_prepare_rewarded_dataset_errors(tok, base_model):
    rows = add_ref_logp(rewarded_rows(2), tok, base_model)
    with pytest.raises(TrainDataError, match="ref_logp"):
        prepare_rewarded_dataset(datasets.Dataset.from_list([{k: v for k, v in r.items() if k != "ref_logp"} for r in rows]), tok, 128)
    # a cutoff other than the dataset's: n_response_tokens disagree -> clear error naming the fix
    with pytest.raises(TrainDataError, match="n_response_tokens"):
        prepare_rewarded_dataset(datasets.Dataset.from_list(rows), tok, 70)
    ok = prepare_rewarded_dataset(datasets.Dataset.from_list(rows), tok, 70, need_ref_logp=False)
    assert max(ok["length"]) == 70
    bad = [dict(r, advantage=float("nan")) for r in rows]
    with pytest.raises(TrainDataError, match="advantage"):
        prepare_rewarded_dataset(datasets.Dataset.from_list(bad), tok, 128)


def test_collator_pads_right():
    b = BatchCollator(0)([{"input_ids": [5, 6, 7], "response_mask": [0, 1, 1], "advantage": 1, "ref_logp": -1},
                             {"input_ids": [5], "response_mask": [0], "advantage": -1, "ref_logp": -2}])
    assert b["input_ids"].tolist() == [[5, 6, 7], [5, 0, 0]]
    assert b["attention_mask"].tolist() == [[1, 1, 1], [1, 0, 0]]
    assert b["response_mask"].tolist() == [[0, 1, 1], [0, 0, 0]]
    assert b["ref_logp"].tolist() == [-1.0, -2.0]


# ---------------------------------------------------------------- configs, recipes, CLI

def test_ds_configs_and_recipes():
    for name in ("zero2", "zero2_offload", "zero3", "zero3_offload"):
        cfg = json.loads(open(resolve_ds_config(name)).read())
        assert cfg["train_micro_batch_size_per_gpu"] == "auto"
    assert json.loads(open(resolve_ds_config("zero3")).read())["zero_optimization"]["stage"] == 3
    with pytest.raises(FileNotFoundError, match="zero3"):
        resolve_ds_config("zero9")
    import dataclasses
    fields = {f.name for t in (ModelArguments, DataArguments, O1PrunerConfig) for f in dataclasses.fields(t)}
    names = list_recipes()
    for r in ("marco-o1-train", "qwq-32b-train", "r1-distill-1.5b-train", "r1-distill-1.5b-lora-train",
              "qwen3-8b-train", "qwen3-8b-lora-train", "tiny-cpu-train"):
        assert r in names
        rec = load_recipe(r)
        assert set(rec) <= fields, (r, set(rec) - fields)
        if rec.get("deepspeed"):
            resolve_ds_config(rec["deepspeed"])
    marco = load_recipe("marco-o1-train")
    assert (marco["learning_rate"], marco["gradient_accumulation_steps"], marco["max_grad_norm"]) == (2e-7, 8, 10.0)
    assert load_recipe("qwq-32b-train")["freeze_trainable_layers"] == 48
    for r in names:   # the paper's recipe details, in every training recipe of the family
        rec = load_recipe(r)
        if "cutoff_len" in rec: assert rec.get("method") in ("dpo", "sft-shortest"), r   # O1-Pruner: the dataset's cutoff
        if r.startswith("qwq-32b") and not r.endswith("-sample"):
            assert rec["max_grad_norm"] == 10.0 and rec["save_only_model"] is True, r   # reference: 10; ~300 GB states
        if "warmup_steps" in rec: assert 0 < rec["warmup_steps"] < 1, r   # a ratio (transformers >= 5)
    for name in ("zero3", "zero3_offload"):   # its linear rounds the bias add twice in bf16: step 0 would not be exact
        assert json.loads(open(resolve_ds_config(name)).read())["zero_optimization"]["memory_efficient_linear"] is False


def test_random_sampler_by_default(tmp_path):
    args = O1PrunerConfig(output_dir=str(tmp_path), use_cpu=True, report_to=[])
    assert args.train_sampling_strategy == "random"   # the reference code's; group_by_length groups advantage signs


def test_cli_trains_end_to_end(tmp_path, data_dir, tiny_model_dir):
    out = tmp_path / "cli"
    rc = train_cli(["--recipe", "tiny-cpu-train", "--model_name_or_path", str(tiny_model_dir), "--dataset_dir", str(data_dir),
                    "--output_dir", str(out), "--max_steps", "2", "--cutoff_len", "128", "--clip_eps", "0.1"])
    assert rc == 0
    assert AutoModelForCausalLM.from_pretrained(out) is not None
    info = json.loads((out / "o1_pruner_train.json").read_text())
    assert info["config"]["clip_eps"] == 0.1 and info["global_step"] == 2
    with pytest.raises(ConfigError, match="does not exist"):
        train_cli(["--recipe", "tiny-cpu-train", "--model_name_or_path", str(tiny_model_dir), "--dataset_dir", str(tmp_path / "nope"),
                   "--output_dir", str(tmp_path / "x")])
    with pytest.raises(ConfigError, match="method"):
        train_cli(["--recipe", "tiny-cpu-train", "--model_name_or_path", str(tiny_model_dir), "--dataset_dir", str(data_dir),
                   "--output_dir", str(tmp_path / "x"), "--method", "ppo"])
