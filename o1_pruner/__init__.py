"""Length-Harmonizing Fine-Tuning (O1-Pruner): long-thinking LLMs answer with fewer reasoning tokens, as accurately.

Modules:

- `o1_pruner.backends`: Generation backends for pre-sampling: one interface, transformers (CPU or GPU) and vLLM (GPU).
- `o1_pruner.pipeline`: One recipe name runs the whole pipeline: the notebooks' configuration cell, the demo's runner.
- `o1_pruner.stages`: The pipeline's stages: name -> the function its command runs (for the CLI and `Pipeline`).
- `o1_pruner.testing`: Fixtures that need no downloads, for tests, notebook examples and benchmarks."""

__version__ = "0.1.0"
