"""Length-Harmonizing Fine-Tuning (O1-Pruner): make long-thinking LLMs answer with fewer reasoning tokens and no loss of accuracy.

Modules:

- `o1_pruner.backends`: Generation backends for pre-sampling: one interface, a transformers implementation (CPU or GPU) and a vLLM one (GPU).
- `o1_pruner.pipeline`: One recipe name runs the whole pipeline: the stage notebooks' configuration cell.
- `o1_pruner.store`: Where pre-sampled solutions live: one folder format, one writer, and one reader with one rule for torn lines, corrupt lines and duplicates, for every stage that reads samples.
- `o1_pruner.testing`: Fixtures for tests, notebook examples and benchmarks that need no downloads: a tiny random model with a character tokenizer, hand-made sample stores written by the store's own writer, and a real pretrained SmolLM2."""

__version__ = "0.1.0"
