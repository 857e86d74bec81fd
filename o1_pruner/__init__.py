"""Length-Harmonizing Fine-Tuning (O1-Pruner): make long-thinking LLMs answer with fewer reasoning tokens and no loss of accuracy.

Modules:

- `o1_pruner.backends`: Generation backends for pre-sampling: one interface, a transformers implementation (CPU or GPU) and a vLLM one (GPU).
- `o1_pruner.demo`: `o1-pruner demo` runs the five stages in rounds, the faithful recipe, the recommended variant and the paper's baselines on the toy overthinking model, and writes one report.
- `o1_pruner.models`: One way to load, freeze, adapt and merge the models every stage trains or scores, and to say how their forward pass computes: model options, DeepSpeed configs by name, the launch check, LoRA and its one merge.
- `o1_pruner.pipeline`: One recipe name runs the whole pipeline: the stage notebooks' configuration cell, and the demo's runner.
- `o1_pruner.stages`: The table of the pipeline's stages: name -> the function its command runs. The CLI and `Pipeline` both use it.
- `o1_pruner.store`: Where pre-sampled solutions live: one folder format, one writer, and one reader with one rule for torn lines, corrupt lines and duplicates, for every stage that reads samples.
- `o1_pruner.testing`: Fixtures for tests, notebook examples and benchmarks that need no downloads: a tiny random model with a character tokenizer, hand-made sample stores written by the store's own writer, and a real pretrained SmolLM2.
- `o1_pruner.tokens`: One token path for every stage: the training prompt through the chat template, the completion appended, one collator, and the per-sequence log-probabilities that scoring and training both compute.
- `o1_pruner.train`: Stage 4: fine-tune the model on its own pre-sampled solutions with the PPO-style clipped objective of O1-Pruner, on `transformers.Trainer` (full, freeze or LoRA; DDP or DeepSpeed; packed batches; resumable)."""

__version__ = "0.1.0"
