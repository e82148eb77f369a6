"""The Models screen's actions (admins only): one function per user action, each in its own
transaction, over the session-level functions of `core.store.model_admin`.

A change and its audit event commit together; the registry is refreshed once the
transaction has committed (`model_admin` arranges that).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import IO, Literal

from core.domain.identity import Viewer
from core.domain.settings import Settings
from core.service.analysis_service import AnalysisService
from core.store import model_admin
from core.store.model_admin import FailureRow, LoadOutcome, ModelListing, NewModel
from core.store.transaction import unit_of_work

Origin = Literal["local", "hub", "upload"]


@dataclass(frozen=True)
class ModelsOverview:
    """The registry's models with their state in this process, and recent load failures."""

    listing: ModelListing
    failures: list[FailureRow]


@dataclass(frozen=True)
class AddedModel:
    model_id: str
    revision: str
    warnings: tuple[str, ...]


@dataclass(frozen=True)
class ModelFiles:
    """Where a new model's files are: a directory on the server, the hub cache, or an upload."""

    origin: Origin
    directory: str = ""
    repo: str = ""
    revision: str = ""
    upload: IO[bytes] | None = None
    filename: str = ""


def overview(*, viewer: Viewer, service: AnalysisService, uploads_dir: Path) -> ModelsOverview:
    with unit_of_work() as session:
        listing = model_admin.model_rows(
            session=session, viewer=viewer, service=service, uploads_dir=uploads_dir
        )
        return ModelsOverview(listing, model_admin.recent_failures(session=session, viewer=viewer))


def load_model(*, viewer: Viewer, service: AnalysisService, model_id: str) -> LoadOutcome:
    """Load a model into this process's memory; a failure is an outcome, not an error."""
    with unit_of_work() as session:
        return model_admin.load(session=session, viewer=viewer, service=service, model_id=model_id)


def unload_model(*, viewer: Viewer, service: AnalysisService, model_id: str) -> bool:
    """Drop a model from this process's memory; False when it was not loaded."""
    with unit_of_work() as session:
        return model_admin.unload(session=session, viewer=viewer, service=service, model_id=model_id)


def set_enabled(*, viewer: Viewer, service: AnalysisService, model_id: str, enabled: bool) -> None:
    with unit_of_work() as session:
        model_admin.set_enabled(
            session=session, viewer=viewer, service=service, model_id=model_id, enabled=enabled
        )


def set_default(*, viewer: Viewer, service: AnalysisService, model_id: str) -> None:
    with unit_of_work() as session:
        model_admin.set_default(session=session, viewer=viewer, service=service, model_id=model_id)


def add_model(
    *, viewer: Viewer, service: AnalysisService, settings: Settings, new: NewModel, files: ModelFiles
) -> AddedModel:
    """Check a model's files and register it; it is on and in the pickers once this returns."""
    with unit_of_work() as session:
        common = {"session": session, "viewer": viewer, "service": service, "new": new}
        if files.origin == "local":
            added = model_admin.add_local(directory=files.directory, **common)
        elif files.origin == "hub":
            added = model_admin.add_hub(repo=files.repo, revision=files.revision, **common)
        else:
            if files.upload is None:
                raise model_admin.ModelAdminError("Choose an archive to upload first.")
            added = model_admin.add_upload(
                data=files.upload,
                filename=files.filename,
                uploads_dir=settings.uploaded_models_dir,
                max_bytes=settings.model_upload_max_mb * 2**20,
                **common,
            )
        return AddedModel(added.row.model_id, added.row.revision, added.warnings)
