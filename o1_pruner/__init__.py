"""Length-Harmonizing Fine-Tuning (O1-Pruner): make long-thinking LLMs answer with fewer reasoning tokens and no loss of accuracy.

Modules:

- `o1_pruner.backends`: Generation backends for pre-sampling: one interface, a transformers implementation (CPU or GPU) and a vLLM one (GPU).
- `o1_pruner.pipeline`: One recipe name runs the whole pipeline: the stage notebooks' configuration cell.
- `o1_pruner.testing`: Models for tests, examples and benchmarks that need no downloads: a real pretrained SmolLM2 from a PyPI wheel."""

__version__ = "0.1.0"
