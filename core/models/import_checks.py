"""Checking a model before it joins the registry: hub ids, local directories, uploaded archives.

Nothing here loads weights or runs code from the model. The checks read ``config.json``,
the tokenizer's files and the safetensors headers, and refuse:

- a config with ``auto_map`` (in config.json or tokenizer_config.json): the model needs its
  own Python code, which this service never runs (`trust_remote_code` is always False);
- an architecture transformers does not know;
- a directory without tokenizer files or without ``*.safetensors`` weights;
- pickle-based weights (``.bin``, ``.pt``, ``.pth``, ``.pkl``, ``.ckpt``) in an upload:
  unpickling runs code. In a local directory or a hub snapshot they may sit next to the
  safetensors files; they are ignored, since models load with ``use_safetensors=True``;
- hub revisions that are not a full commit sha: a branch or tag can move, so the analysis
  saved today could not be reproduced tomorrow;
- archives with absolute or ``..`` paths, links, devices, too many members or too many bytes.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import re
import shutil
import stat
import tarfile
import zipfile
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO, Any

from core.domain.errors import HeadlightError
from core.models.huggingface.catalogue import Kind, is_known_model_type, text_model_kind

HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,95}/[A-Za-z0-9][A-Za-z0-9._-]{0,95}$")
COMMIT_SHA = re.compile(r"^[0-9a-f]{40}$")
PICKLE_SUFFIXES = frozenset({".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt"})
# Any one of these is a tokenizer transformers can build without custom code.
TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer.model",
    "spiece.model",
    "sentencepiece.bpe.model",
    "vocab.txt",
    "vocab.json",
)
MAX_ARCHIVE_MEMBERS = 2_000
_COPY_CHUNK = 1024 * 1024


class ModelCheckError(HeadlightError):
    """The model cannot join the registry; the message says what is wrong and what to do."""


@dataclass(frozen=True)
class ModelCheck:
    """What the checks found in a model directory."""

    directory: Path
    model_type: str
    architecture: str
    kind: Kind
    n_layers: int | None
    n_heads: int | None
    max_positions: int | None
    chat_template: bool
    weight_files: tuple[str, ...]
    weight_bytes: int
    notes: tuple[str, ...] = field(default=())


def check_hub_id(repo: str) -> str:
    repo = repo.strip()
    if not HUB_ID.match(repo) or ".." in repo or repo.endswith((".", "-")):
        raise ModelCheckError(
            f"'{repo}' is not a Hugging Face model id; write it as owner/name, e.g. "
            "HuggingFaceTB/SmolLM2-135M-Instruct (letters, digits, '.', '_' and '-')."
        )
    return repo


def check_commit_sha(revision: str, *, repo: str, cached_refs: dict[str, str] | None = None) -> str:
    """A full 40-character commit sha; a branch or tag is refused (it can move)."""
    revision = revision.strip()
    if COMMIT_SHA.match(revision):
        return revision
    hint = ""
    if cached_refs and revision in cached_refs:
        hint = f" In this server's cache '{revision}' of {repo} is {cached_refs[revision]}."
    raise ModelCheckError(
        f"Pin the revision to a full commit sha (40 hex characters), not '{revision or '(empty)'}': "
        f"a branch or tag can move, and saved analyses must be reproducible.{hint}"
    )


def cached_refs(repo: str) -> dict[str, str]:
    """Branch and tag names of ``repo`` in the local Hugging Face cache, with their commits."""
    from huggingface_hub.constants import HF_HUB_CACHE

    refs_dir = Path(HF_HUB_CACHE) / f"models--{repo.replace('/', '--')}" / "refs"
    if not refs_dir.is_dir():
        return {}
    refs = {}
    for ref in refs_dir.rglob("*"):
        if ref.is_file():
            refs[ref.relative_to(refs_dir).as_posix()] = ref.read_text(encoding="utf-8").strip()
    return refs


def hub_snapshot(repo: str, revision: str) -> Path:
    """The cached snapshot of ``repo`` at ``revision``; never downloads."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        return Path(snapshot_download(repo, revision=revision, local_files_only=True))
    except (LocalEntryNotFoundError, FileNotFoundError, ValueError, OSError):
        raise ModelCheckError(
            f"{repo} at revision {revision} is not in this server's Hugging Face cache, and this "
            "server never downloads models. Put it there first (on the server: "
            f"`huggingface-cli download {repo} --revision {revision}`), then add it again."
        ) from None


def _pickle_refusal(names: list[str]) -> ModelCheckError:
    return ModelCheckError(
        f"Pickle-based weight files are refused in uploads ({', '.join(names[:5])}): loading them "
        "can run code. Convert the weights to safetensors (model.save_pretrained does by default)."
    )


def _read_json(path: Path, what: str) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelCheckError(f"{what} cannot be read as JSON: {exc}.") from None
    if not isinstance(data, dict):
        raise ModelCheckError(f"{what} must hold a JSON object.")
    return data


def _infer_kind(model_type: str, architectures: list[str]) -> Kind:
    kind = text_model_kind(model_type, architectures)
    if kind is None:
        raise ModelCheckError(
            f"transformers has no text model class for '{model_type}' "
            f"(architectures: {', '.join(architectures) or 'none listed'}); only causal language "
            "models and encoders can be analysed."
        )
    return kind


def _config_number(config: dict[str, Any], *names: str) -> int | None:
    text_config = config.get("text_config") if isinstance(config.get("text_config"), dict) else {}
    for source in (config, text_config):
        for name in names:
            value = source.get(name)
            if isinstance(value, int) and not isinstance(value, bool):
                return value
    return None


def _check_safetensors(path: Path) -> None:
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as handle:  # reads the header only
            if not list(handle.keys()):
                raise ModelCheckError(f"{path.name} holds no tensors.")
    except ModelCheckError:
        raise
    except Exception as exc:  # safetensors raises its own error types for a damaged header
        raise ModelCheckError(f"{path.name} is not a readable safetensors file: {exc}.") from None


def inspect_directory(directory: Path, *, refuse_pickle: bool) -> ModelCheck:
    """Check a model directory as described in the module docstring; nothing is loaded."""
    try:
        return _inspect_directory(directory, refuse_pickle=refuse_pickle)
    except OSError as exc:
        # An unreadable directory or file (permissions, a vanished mount) is the admin's to fix,
        # so it becomes a refusal with a reason rather than a crashed page.
        raise ModelCheckError(_os_reason(exc, f"{directory} cannot be read on this server")) from None


def _os_reason(exc: OSError, what: str) -> str:
    detail = exc.strerror or type(exc).__name__
    name = f" ({exc.filename})" if exc.filename else ""
    return f"{what}: {detail}{name}."


def _inspect_directory(directory: Path, *, refuse_pickle: bool) -> ModelCheck:
    if not directory.is_dir():
        raise ModelCheckError(f"{directory} is not a directory on this server.")
    config_path = directory / "config.json"
    if not config_path.is_file():
        raise ModelCheckError(f"No config.json in {directory}: it is not a transformers model directory.")
    config = _read_json(config_path, "config.json")
    if "auto_map" in config:
        raise ModelCheckError(
            "This model needs its own Python code (config.json has 'auto_map'); Headlight never runs "
            "code that comes with a model (no trust_remote_code). Choose a model whose architecture "
            "transformers ships."
        )
    tokenizer_config_path = directory / "tokenizer_config.json"
    tokenizer_config = (
        _read_json(tokenizer_config_path, "tokenizer_config.json") if tokenizer_config_path.is_file() else {}
    )
    if "auto_map" in tokenizer_config:
        raise ModelCheckError(
            "This model's tokenizer needs its own Python code (tokenizer_config.json has 'auto_map'); "
            "Headlight never runs code that comes with a model."
        )
    model_type = config.get("model_type")
    if not isinstance(model_type, str) or not is_known_model_type(model_type):
        raise ModelCheckError(
            f"config.json names the architecture '{model_type}', which this version of transformers "
            "does not know."
        )
    architectures = [a for a in config.get("architectures") or [] if isinstance(a, str)]
    kind = _infer_kind(model_type, architectures)
    if not any((directory / name).is_file() for name in TOKENIZER_FILES):
        raise ModelCheckError(
            f"No tokenizer in {directory.name}: expected one of {', '.join(TOKENIZER_FILES)} "
            "(save it with tokenizer.save_pretrained)."
        )
    files = [p for p in directory.iterdir() if p.is_file()]
    pickles = sorted(p.name for p in files if p.suffix.lower() in PICKLE_SUFFIXES)
    if pickles and refuse_pickle:
        raise _pickle_refusal(pickles)
    weights = sorted(p for p in files if p.suffix == ".safetensors")
    if not weights:
        raise ModelCheckError(
            "No *.safetensors weights found"
            + (f" (only pickle-based files: {', '.join(pickles[:5])})" if pickles else "")
            + ". Headlight loads safetensors only; convert the weights with model.save_pretrained."
        )
    for path in weights:
        _check_safetensors(path)
    index_path = directory / "model.safetensors.index.json"
    if index_path.is_file():
        index = _read_json(index_path, "model.safetensors.index.json")
        shards = set((index.get("weight_map") or {}).values())
        missing = sorted(name for name in shards if not (directory / str(name)).is_file())
        if missing:
            raise ModelCheckError(f"Weight shards listed in the index are missing: {', '.join(missing[:5])}.")
    notes = []
    if pickles:
        notes.append(f"pickle-based files ignored ({', '.join(pickles[:5])}); only safetensors are loaded")
    chat_template = "chat_template" in tokenizer_config or (directory / "chat_template.jinja").is_file()
    return ModelCheck(
        directory=directory,
        model_type=model_type,
        architecture=architectures[0] if architectures else model_type,
        kind=kind,
        n_layers=_config_number(config, "num_hidden_layers", "n_layer", "num_layers"),
        n_heads=_config_number(config, "num_attention_heads", "n_head", "num_heads"),
        max_positions=_config_number(config, "max_position_embeddings", "n_positions", "n_ctx"),
        chat_template=chat_template,
        weight_files=tuple(p.name for p in weights),
        weight_bytes=sum(p.stat().st_size for p in weights),
        notes=tuple(notes),
    )


def content_revision(check: ModelCheck) -> str:
    """A revision for a local or uploaded copy: the sha256 of its config, tokenizer and weights.

    Recorded when the model is added, so the registry says which bytes its analyses came from.
    """
    digest = hashlib.sha256()
    names = ["config.json", "tokenizer_config.json", *TOKENIZER_FILES, *check.weight_files]
    try:
        for name in sorted(set(names)):
            path = check.directory / name
            if path.is_file():
                digest.update(name.encode() + b"\0")
                with path.open("rb") as handle:
                    digest.update(hashlib.file_digest(handle, "sha256").digest())
    except OSError as exc:
        what = f"The model files in {check.directory} cannot be read"
        raise ModelCheckError(_os_reason(exc, what)) from None
    return f"sha256-{digest.hexdigest()[:16]}"


# --- Archives --------------------------------------------------------------------------------

# What a damaged or truncated archive raises while it is read: a bad zip directory, a corrupt
# deflate or gzip stream, a tar cut short. Each becomes a refusal naming the problem.
_ARCHIVE_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, gzip.BadGzipFile, tarfile.TarError)


def archive_kind(filename: str) -> str:
    name = filename.lower()
    if name.endswith(".zip"):
        return "zip"
    if name.endswith((".tar.gz", ".tgz", ".tar")):
        return "tar"
    raise ModelCheckError(
        f"'{filename}' is not a zip or tar.gz archive; upload the model directory as .zip, .tar.gz or .tar."
    )


def _safe_member_path(name: str) -> PurePosixPath:
    """The member's path inside the target; absolute and '..' paths are refused."""
    normalised = name.replace("\\", "/")
    path = PurePosixPath(normalised)
    if normalised.startswith("/") or re.match(r"^[A-Za-z]:", normalised) or ".." in path.parts:
        raise ModelCheckError(f"The archive member '{name}' points outside the archive; refused.")
    parts = [part for part in path.parts if part not in ("", ".")]
    if not parts:
        raise ModelCheckError(f"The archive member '{name}' has no name; refused.")
    return PurePosixPath(*parts)


def _safe_folder_path(name: str) -> PurePosixPath | None:
    """Like `_safe_member_path` for a folder entry; None for the archive's root (``./``), which
    ``tar -C model .`` writes."""
    if name.replace("\\", "/").strip("/.") == "" and ".." not in name:
        return None
    return _safe_member_path(name)


@dataclass
class _Layout:
    """The paths an archive has named so far: two members may not unpack to one path, and no
    path may be both a file and a folder (``a`` then ``a/b``). Checked before anything is
    written, so these archives are refused with a reason rather than by the file system."""

    files: set[PurePosixPath] = field(default_factory=set)
    folders: set[PurePosixPath] = field(default_factory=set)

    def add_file(self, path: PurePosixPath, name: str) -> None:
        if path in self.files:
            raise ModelCheckError(f"The archive holds '{path}' more than once (member '{name}'); refused.")
        if path in self.folders:
            raise ModelCheckError(f"The archive member '{name}' is both a file and a folder; refused.")
        self._add_parents(path, name)
        self.files.add(path)

    def add_folder(self, path: PurePosixPath, name: str) -> None:
        if path in self.files:
            raise ModelCheckError(f"The archive member '{name}' is both a file and a folder; refused.")
        self._add_parents(path, name)
        self.folders.add(path)

    def _add_parents(self, path: PurePosixPath, name: str) -> None:
        for parent in path.parents:
            if parent == PurePosixPath("."):
                continue
            if parent in self.files:
                raise ModelCheckError(
                    f"The archive member '{name}' sits under '{parent}', which is a file; refused."
                )
            self.folders.add(parent)


@dataclass
class _Budget:
    max_bytes: int
    used: int = 0
    members: int = 0

    def count_member(self, declared: int) -> None:
        self.members += 1
        if self.members > MAX_ARCHIVE_MEMBERS:
            raise ModelCheckError(f"The archive has more than {MAX_ARCHIVE_MEMBERS:,} files; refused.")
        if declared > self.max_bytes:
            raise ModelCheckError(self.too_big())

    def too_big(self) -> str:
        return f"The archive unpacks to more than {self.max_bytes / 2**20:,.0f} MiB; refused."


def _copy(source: IO[bytes], target: Path, budget: _Budget) -> None:
    """Copy counting real bytes: a member's declared size may lie (zip bombs), and the total of
    several members is only known as they are written."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with target.open("xb") as out:
        while chunk := source.read(_COPY_CHUNK):
            budget.used += len(chunk)
            if budget.used > budget.max_bytes:
                raise ModelCheckError(budget.too_big())
            out.write(chunk)


def _refuse_pickles(names: Iterable[PurePosixPath]) -> None:
    pickles = sorted(str(name) for name in names if name.suffix.lower() in PICKLE_SUFFIXES)
    if pickles:
        raise _pickle_refusal(pickles)


def _extract_zip(data: IO[bytes], target: Path, budget: _Budget) -> None:
    archive = zipfile.ZipFile(data)
    with archive:
        infos = archive.infolist()
        if len(infos) > MAX_ARCHIVE_MEMBERS:
            raise ModelCheckError(f"The archive has more than {MAX_ARCHIVE_MEMBERS:,} files; refused.")
        # The central directory lists every member up front: refuse the whole archive before
        # writing anything when a name is unsafe, repeated or clashes, or a pickle is inside.
        layout = _Layout()
        members = []
        for info in infos:
            if info.is_dir():
                folder = _safe_folder_path(info.filename)
                if folder is not None:
                    layout.add_folder(folder, info.filename)
                continue
            path = _safe_member_path(info.filename)
            # Unix type bits, when the archiver wrote them (writers may leave them 0 for files).
            file_type = stat.S_IFMT(info.external_attr >> 16)
            if file_type and file_type != stat.S_IFREG:
                raise ModelCheckError(f"The archive member '{info.filename}' is a link or device; refused.")
            layout.add_file(path, info.filename)
            members.append((info, path))
        _refuse_pickles(path for _, path in members)
        for info, path in members:
            budget.count_member(info.file_size)
            with archive.open(info) as source:
                _copy(source, target / path, budget)


def _extract_tar(data: IO[bytes], target: Path, budget: _Budget) -> None:
    archive = tarfile.open(fileobj=data, mode="r:*")  # noqa: SIM115 - closed by the `with` below
    with archive:
        layout = _Layout()
        # One member at a time (not getmembers(), which reads the whole stream first): the
        # count and size budget stop a hostile archive as soon as it crosses them. A tar has
        # no index, so a pickle is refused when it comes up; what was unpacked is removed.
        for member in archive:
            if member.isdir():
                folder = _safe_folder_path(member.name)
                if folder is not None:
                    layout.add_folder(folder, member.name)
                continue
            path = _safe_member_path(member.name)
            if not member.isfile():
                raise ModelCheckError(f"The archive member '{member.name}' is a link or device; refused.")
            layout.add_file(path, member.name)
            _refuse_pickles([path])
            budget.count_member(member.size)
            source = archive.extractfile(member)
            if source is None:
                raise ModelCheckError(f"The archive member '{member.name}' cannot be read.")
            with source:
                _copy(source, target / path, budget)


def extract_archive(data: IO[bytes], filename: str, target: Path, *, max_bytes: int) -> Path:
    """Unpack an uploaded archive into ``target`` (which must not exist) and return the model
    directory: ``target`` itself, or its only top-level folder.

    On any refusal nothing is left behind; a damaged archive or a disk error is a
    `ModelCheckError` saying so.
    """
    kind = archive_kind(filename)
    budget = _Budget(max_bytes=max_bytes)
    try:
        target.mkdir(parents=True)
    except OSError as exc:
        raise ModelCheckError(_os_reason(exc, "The upload cannot be unpacked on this server")) from None
    try:
        (_extract_zip if kind == "zip" else _extract_tar)(data, target, budget)
        if budget.members == 0:
            raise ModelCheckError("The archive is empty.")
    except ModelCheckError:
        shutil.rmtree(target, ignore_errors=True)
        raise
    except _ARCHIVE_ERRORS as exc:
        shutil.rmtree(target, ignore_errors=True)
        label = "zip" if kind == "zip" else "tar"
        raise ModelCheckError(
            f"The file is not a readable {label} archive, or it is damaged: {exc or type(exc).__name__}."
        ) from None
    except OSError as exc:
        shutil.rmtree(target, ignore_errors=True)
        raise ModelCheckError(_os_reason(exc, "The archive could not be unpacked")) from None
    except BaseException:
        shutil.rmtree(target, ignore_errors=True)
        raise
    entries = [entry for entry in target.iterdir() if not entry.name.startswith("__MACOSX")]
    if len(entries) == 1 and entries[0].is_dir():
        return entries[0]
    return target
