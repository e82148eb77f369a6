"""The opening of the screens that run models (Generate, Compare): the run permission, the
service, the actor, activity, and a model picker that marks unusable models."""

from __future__ import annotations

from dataclasses import dataclass

import streamlit as st
from streamlit.delta_generator import DeltaGenerator

from core.access import permissions
from core.domain.identity import Actor
from core.domain.settings import get_settings
from core.models.registry import ModelSpec
from core.service.analysis_service import AnalysisService
from ui.models_view import literal
from ui.resources import get_service
from ui.session import current_actor, current_viewer, mark_active


@dataclass(frozen=True)
class RunPage:
    """What a model-running screen needs: the models offered, each with why it cannot run."""

    service: AnalysisService
    actor: Actor
    specs: dict[str, ModelSpec]
    reasons: dict[str, str | None]
    # Why a model cannot run names server paths and cache layout: admins see it, others a
    # generic line (the Models screen has the detail).
    show_reasons: bool = False

    def label(self, model_id: str) -> str:
        # Selectbox options are shown as plain text (only the widget's label is Markdown),
        # so the spec's label needs no escaping here.
        spec = self.specs[model_id]
        return spec.label + ("" if self.reasons[model_id] is None else " — unavailable")

    def pick(self, label: str, *, key: str, index: int = 0, where: DeltaGenerator | None = None) -> ModelSpec:
        """A model selectbox; an unusable choice gets a warning with its reason."""
        place = where or st
        model_id = place.selectbox(label, list(self.specs), index=index, format_func=self.label, key=key)
        spec = self.specs[model_id]
        if self.reasons[model_id]:
            place.warning(self.unavailable_message(model_id))
        return spec

    def unavailable_message(self, model_id: str) -> str:
        """The warning under an unusable choice, as Markdown-safe text (labels and reasons
        are typed by admins or name paths)."""
        label = literal(self.specs[model_id].label)
        if self.show_reasons:
            return f"{label} cannot be used here: {literal(self.reasons[model_id] or '')}."
        return f"{label} is unavailable on this server right now; ask an admin."


def open_run_page(title: str) -> RunPage | None:
    """The screen's title, then its context; None (with a message) for visitors who may not run."""
    st.title(title)
    if not permissions.can_run(current_viewer(), guests_allowed=get_settings().guests_allowed):
        st.info("Sign in (sidebar) to run models.")
        return None
    service = get_service()
    mark_active()
    choices = service.model_choices()
    return RunPage(
        service=service,
        actor=current_actor(),
        specs={spec.id: spec for spec, _ in choices},
        reasons={spec.id: reason for spec, reason in choices},
        show_reasons=permissions.can_manage_models(current_viewer()),
    )
