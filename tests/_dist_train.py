"""Worker for tests/test_distributed.py: train a tiny model with O1PrunerTrainer (DeepSpeed ZeRO-3 on CPU), log losses.

usage: torchrun --nproc_per_node N tests/_dist_train.py MODEL_DIR DATA_DIR OUT_DIR PER_DEVICE_BATCH STEPS [DS_CONFIG [REF_SOURCE]]"""
import json
import sys

from o1_pruner.train import DataArguments, MethodArguments, ModelArguments, O1TrainingArguments, train_o1_pruner


def main(model_dir, data_dir, out_dir, per_device, steps, ds="zero3", ref_source="dataset"):
    args = O1TrainingArguments(
        output_dir=out_dir, use_cpu=True, per_device_train_batch_size=int(per_device), max_steps=int(steps),
        learning_rate=5e-3, lr_scheduler_type="constant", warmup_steps=0, weight_decay=0.0, max_grad_norm=10.0,
        logging_steps=1, save_strategy="no", report_to=[], disable_tqdm=True, seed=0, data_seed=0,
        train_sampling_strategy="sequential", deepspeed=None if ds == "none" else ds, ddp_backend="gloo",
        dataloader_num_workers=0)
    trainer = train_o1_pruner(ModelArguments(model_name_or_path=model_dir, ref_source=ref_source), DataArguments(dataset_dir=data_dir, cutoff_len=128),
                              MethodArguments(), args)
    if trainer.is_world_process_zero():
        logs = [h for h in trainer.state.log_history if "loss" in h]
        zero = trainer.accelerator.state.deepspeed_plugin.zero_stage if trainer.is_deepspeed_enabled else None
        json.dump({"world_size": args.world_size, "deepspeed": trainer.is_deepspeed_enabled, "zero_stage": zero,
                   "engine": type(trainer.model_wrapped).__name__, "logs": logs}, open(f"{out_dir}/losses.json", "w"), indent=1)


if __name__ == "__main__":
    main(*sys.argv[1:])
