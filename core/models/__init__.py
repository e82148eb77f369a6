"""Models: the registry of what can be loaded, device choice, the pool of loaded models,
checks before a model joins, and the model boundary. Only the adapter
(`core.models.huggingface`) touches transformers objects; everything else sees the
`core.models.boundary.LanguageModel` protocol: plain data, numpy arrays and (in per-layer
callbacks) torch tensors, with documented shapes.
"""
