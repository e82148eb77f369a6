"""What can be loaded, and the loaded models.

The registry of `models.yaml` (`registry`: `ModelSpec`, `Registry`, `availability`); device
and dtype choice (`device`); the pool of loaded models, least recently used first out under a
memory budget (`pool.ModelPool`); checks a model passes before it joins (`import_checks`);
GGUF conversion ahead of the first request (`warmup`); and the model boundary: the
`LanguageModel` protocol and what crosses it (`boundary`: `Tokenized`, `Capture`, `Forward`,
`Generation`, `Sampling`), implemented once by the Hugging Face adapter (`huggingface`), the
only code that imports transformers or bertviz's model classes. Everything else sees plain
data, numpy arrays and (in per-layer callbacks) torch tensors, with documented shapes.
"""
