"""Models: the registry of what can be loaded, device choice, loading, the pool of loaded
models, checks before a model joins, and the model boundary. Only the adapter touches
transformers objects; everything else sees numpy arrays with documented shapes.
"""
