"""What this version of transformers knows: model types and text model classes.

Read from transformers' auto mappings (names only: no model code is imported).
"""

from __future__ import annotations

from typing import Literal

Kind = Literal["causal", "encoder"]


def is_known_model_type(model_type: str) -> bool:
    """Whether transformers has a configuration for ``model_type`` (config.json's "model_type")."""
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING_NAMES

    return model_type in CONFIG_MAPPING_NAMES


def text_model_kind(model_type: str, architectures: list[str]) -> Kind | None:
    """ "causal" or "encoder" for a model transformers can load as a text model, else None.

    ``architectures`` (config.json's list of class names) decides when given: a causal
    language-model class makes it causal; otherwise a base model class for ``model_type``
    makes it an encoder.
    """
    from transformers.models.auto.modeling_auto import (
        MODEL_FOR_CAUSAL_LM_MAPPING_NAMES,
        MODEL_MAPPING_NAMES,
    )

    causal_classes: set[str] = set()
    for names in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES.values():
        causal_classes.update([names] if isinstance(names, str) else names)
    if architectures:
        if any(arch in causal_classes for arch in architectures):
            return "causal"
        if model_type in MODEL_MAPPING_NAMES:
            return "encoder"
    elif model_type in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES:
        return "causal"
    elif model_type in MODEL_MAPPING_NAMES:
        return "encoder"
    return None
