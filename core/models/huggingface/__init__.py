"""The Hugging Face adapter: the one place that touches transformers objects.

- `adapter`: `HuggingFaceModel`, the `core.models.boundary.LanguageModel` over a transformers
  model and tokenizer (tokenize, forward with per-layer captures, generate, one layer);
- `loading`: a registry model from disk onto a device, GGUF converted once to safetensors;
- `catalogue`: which model types and text model classes this transformers knows;
- `neuron_view`: bertviz's BERT neuron view data (queries, keys, attention) as plain data.

The package's own module loads nothing, so asking the catalogue or the neuron view does not
load transformers' model code until it is needed.
"""
