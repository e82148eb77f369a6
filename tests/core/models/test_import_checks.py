"""Checks before a model joins the registry: hub ids and revisions, directories, archives.

No network and no real weights: the model directories hold a tiny random Llama saved with
`save_pretrained` and the bundled MiniLM tokenizer.
"""

from __future__ import annotations

import io
import json
import tarfile
import zipfile
from pathlib import Path

import pytest

from core.models.import_checks import (
    ModelCheckError,
    check_commit_sha,
    check_hub_id,
    content_revision,
    extract_archive,
    hub_snapshot,
    inspect_directory,
)
from tests.fixtures.tiny import save_tiny

SHA = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny(tmp_path_factory.mktemp("tiny") / "tiny-llama")


def copy_of(source: Path, target: Path) -> Path:
    target.mkdir()
    for path in source.iterdir():
        (target / path.name).write_bytes(path.read_bytes())
    return target


def edit_json(path: Path, **changes: object) -> None:
    data = json.loads(path.read_text())
    data.update(changes)
    path.write_text(json.dumps(data))


def test_a_saved_model_directory_passes(model_dir: Path) -> None:
    check = inspect_directory(model_dir, refuse_pickle=True)
    assert (check.kind, check.model_type, check.architecture) == ("causal", "llama", "LlamaForCausalLM")
    assert (check.n_layers, check.n_heads, check.max_positions) == (2, 4, 128)
    assert check.weight_files == ("model.safetensors",) and check.weight_bytes > 0
    revision = content_revision(check)
    assert revision.startswith("sha256-") and revision == content_revision(check)


@pytest.mark.parametrize(
    "repo", ["", "gpt2", "a/b/c", "../etc", "owner/na me", "owner/-x", "o/x..y", "o/" + "x" * 97]
)
def test_bad_hub_ids_are_refused(repo: str) -> None:
    with pytest.raises(ModelCheckError, match=r"not a Hugging Face model id"):
        check_hub_id(repo)


def test_good_hub_id_and_pinned_revision() -> None:
    assert check_hub_id(" HuggingFaceTB/SmolLM2-135M-Instruct ") == "HuggingFaceTB/SmolLM2-135M-Instruct"
    assert check_commit_sha(SHA, repo="o/x") == SHA


@pytest.mark.parametrize("revision", ["main", "v1.0", SHA[:12], SHA.upper(), ""])
def test_unpinned_revisions_are_refused(revision: str) -> None:
    with pytest.raises(ModelCheckError, match=r"full commit sha"):
        check_commit_sha(revision, repo="o/x")


def test_refusal_names_the_cached_commit_of_a_branch() -> None:
    with pytest.raises(ModelCheckError, match=rf"'main' of o/x is {SHA}"):
        check_commit_sha("main", repo="o/x", cached_refs={"main": SHA})


def test_hub_model_outside_the_cache_is_refused_without_downloading() -> None:
    with pytest.raises(ModelCheckError, match=r"not in this server's Hugging Face cache.*never downloads"):
        hub_snapshot("headlight-tests/no-such-model", SHA)


def test_missing_directory_and_config(tmp_path: Path) -> None:
    with pytest.raises(ModelCheckError, match=r"not a directory"):
        inspect_directory(tmp_path / "absent", refuse_pickle=False)
    with pytest.raises(ModelCheckError, match=r"No config.json"):
        inspect_directory(tmp_path, refuse_pickle=False)


def test_remote_code_is_refused(model_dir: Path, tmp_path: Path) -> None:
    """A config with auto_map needs the model's own code: refused, in config or tokenizer config."""
    directory = copy_of(model_dir, tmp_path / "remote")
    edit_json(directory / "config.json", auto_map={"AutoModelForCausalLM": "modeling_x.XForCausalLM"})
    with pytest.raises(ModelCheckError, match=r"needs its own Python code.*trust_remote_code"):
        inspect_directory(directory, refuse_pickle=False)
    directory = copy_of(model_dir, tmp_path / "remote-tokenizer")
    edit_json(directory / "tokenizer_config.json", auto_map={"AutoTokenizer": ["tok.XTokenizer", None]})
    with pytest.raises(ModelCheckError, match=r"tokenizer needs its own Python code"):
        inspect_directory(directory, refuse_pickle=False)


def test_unknown_architecture_is_refused(model_dir: Path, tmp_path: Path) -> None:
    directory = copy_of(model_dir, tmp_path / "unknown")
    edit_json(directory / "config.json", model_type="my-own-arch")
    with pytest.raises(ModelCheckError, match=r"'my-own-arch'.*does not know"):
        inspect_directory(directory, refuse_pickle=False)


def test_missing_tokenizer_and_weights(model_dir: Path, tmp_path: Path) -> None:
    directory = copy_of(model_dir, tmp_path / "no-tokenizer")
    for name in ("tokenizer.json", "vocab.txt"):
        (directory / name).unlink(missing_ok=True)
    with pytest.raises(ModelCheckError, match=r"No tokenizer"):
        inspect_directory(directory, refuse_pickle=False)
    directory = copy_of(model_dir, tmp_path / "no-weights")
    (directory / "model.safetensors").unlink()
    with pytest.raises(ModelCheckError, match=r"No \*\.safetensors weights"):
        inspect_directory(directory, refuse_pickle=False)
    (directory / "pytorch_model.bin").write_bytes(b"pickle")
    with pytest.raises(ModelCheckError, match=r"only pickle-based files: pytorch_model.bin"):
        inspect_directory(directory, refuse_pickle=False)


def test_damaged_safetensors_is_refused(model_dir: Path, tmp_path: Path) -> None:
    directory = copy_of(model_dir, tmp_path / "damaged")
    (directory / "model.safetensors").write_bytes(b"\xff" * 16)
    with pytest.raises(ModelCheckError, match=r"not a readable safetensors file"):
        inspect_directory(directory, refuse_pickle=False)


def test_pickle_files_next_to_safetensors(model_dir: Path, tmp_path: Path) -> None:
    """Ignored (with a note) in a server directory; refused outright in an upload."""
    directory = copy_of(model_dir, tmp_path / "both")
    (directory / "pytorch_model.bin").write_bytes(b"pickle")
    check = inspect_directory(directory, refuse_pickle=False)
    assert "pytorch_model.bin" in check.notes[0] and "only safetensors" in check.notes[0]
    with pytest.raises(ModelCheckError, match=r"Pickle-based weight files are refused"):
        inspect_directory(directory, refuse_pickle=True)


def zip_of(files: dict[str, bytes]) -> io.BytesIO:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    buffer.seek(0)
    return buffer


def tar_of(
    model_dir: Path, *, prefix: str = "model/", extra: list[tarfile.TarInfo] | None = None
) -> io.BytesIO:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for path in model_dir.iterdir():
            archive.add(path, arcname=prefix + path.name)
        for info in extra or []:
            archive.addfile(info, io.BytesIO(b"x" * info.size) if info.isfile() else None)
    buffer.seek(0)
    return buffer


def test_zip_and_tar_archives_unpack_to_the_model(model_dir: Path, tmp_path: Path) -> None:
    files = {f"copy/{p.name}": p.read_bytes() for p in model_dir.iterdir()}
    directory = extract_archive(zip_of(files), "m.zip", tmp_path / "z", max_bytes=2**30)
    assert directory == tmp_path / "z" / "copy"
    assert inspect_directory(directory, refuse_pickle=True).kind == "causal"
    directory = extract_archive(tar_of(model_dir), "m.tar.gz", tmp_path / "t", max_bytes=2**30)
    assert inspect_directory(directory, refuse_pickle=True).n_layers == 2
    flat = extract_archive(tar_of(model_dir, prefix=""), "m.tgz", tmp_path / "flat", max_bytes=2**30)
    assert flat == tmp_path / "flat" and (flat / "config.json").is_file()


@pytest.mark.parametrize("name", ["../evil.txt", "/etc/evil", "a/../../evil", "C:/evil", "..\\evil"])
def test_path_traversal_is_refused_and_nothing_is_left(name: str, tmp_path: Path) -> None:
    with pytest.raises(ModelCheckError, match=r"points outside the archive"):
        extract_archive(zip_of({"config.json": b"{}", name: b"x"}), "m.zip", tmp_path / "x", max_bytes=2**20)
    assert not (tmp_path / "x").exists() and not (tmp_path / "evil.txt").exists()


def test_links_in_tar_are_refused(model_dir: Path, tmp_path: Path) -> None:
    link = tarfile.TarInfo("model/link")
    link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
    with pytest.raises(ModelCheckError, match=r"link or device"):
        extract_archive(tar_of(model_dir, extra=[link]), "m.tar.gz", tmp_path / "x", max_bytes=2**30)
    assert not (tmp_path / "x").exists()


def test_pickle_in_archive_is_refused_before_unpacking(tmp_path: Path) -> None:
    archive = zip_of({"m/config.json": b"{}", "m/pytorch_model.bin": b"pickle"})
    with pytest.raises(ModelCheckError, match=r"Pickle-based weight files are refused.*pytorch_model.bin"):
        extract_archive(archive, "m.zip", tmp_path / "x", max_bytes=2**20)
    assert not (tmp_path / "x").exists()


def test_size_limit_counts_real_bytes(tmp_path: Path) -> None:
    """Each member's declared size is under the limit, so only counting the bytes actually
    written (across members) can refuse the archive: together they unpack to 3 MiB."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for index in range(3):
            archive.writestr(f"m/model-{index}.safetensors", b"\0" * 2**20)
    buffer.seek(0)
    with pytest.raises(ModelCheckError, match=r"unpacks to more than 2 MiB"):
        extract_archive(buffer, "m.zip", tmp_path / "x", max_bytes=2 * 2**20)
    assert not (tmp_path / "x").exists()


def test_a_zip_header_that_lies_about_the_size_is_refused(tmp_path: Path) -> None:
    """A member whose headers claim 10 bytes but whose data inflates to 3 MiB never unpacks
    past the lie, and the archive is refused as damaged, with nothing left behind."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("m/model.safetensors", b"\0" * (3 * 2**20))
    data = bytearray(buffer.getvalue())
    real = (3 * 2**20).to_bytes(4, "little")
    lie = (10).to_bytes(4, "little")
    assert data.count(real) == 2  # the local header and the central directory
    data = bytearray(bytes(data).replace(real, lie))
    with pytest.raises(ModelCheckError, match=r"damaged|more than"):
        extract_archive(io.BytesIO(bytes(data)), "m.zip", tmp_path / "x", max_bytes=2 * 2**20)
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize(
    ("names", "message"),
    [
        (["m/config.json", "m/./config.json"], r"holds 'm/config.json' more than once"),
        (["m/config.json", "m//config.json"], r"more than once"),
        (["m/a", "m/a/b"], r"sits under 'm/a', which is a file"),
        (["m/a/b", "m/a"], r"both a file and a folder"),
    ],
)
def test_duplicate_and_clashing_members_are_refused(names: list[str], message: str, tmp_path: Path) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name in names:
            archive.writestr(zipfile.ZipInfo(name), b"{}")
    buffer.seek(0)
    with pytest.raises(ModelCheckError, match=message):
        extract_archive(buffer, "m.zip", tmp_path / "z", max_bytes=2**20)
    assert not (tmp_path / "z").exists()
    members = [tarfile.TarInfo(name) for name in names]
    for member in members:
        member.size = 2
    with pytest.raises(ModelCheckError, match=message):
        extract_archive(tar_of_members(members), "m.tar", tmp_path / "t", max_bytes=2**20)
    assert not (tmp_path / "t").exists()


def tar_of_members(members: list[tarfile.TarInfo], mode: str = "w") -> io.BytesIO:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode=mode) as archive:  # type: ignore[call-overload]
        for info in members:
            archive.addfile(info, io.BytesIO(b"x" * info.size) if info.isfile() else None)
    buffer.seek(0)
    return buffer


@pytest.mark.parametrize("name", ["../evil.txt", "/etc/evil", "a/../../evil", "/abs/config.json"])
def test_tar_path_traversal_and_absolute_names_are_refused(name: str, tmp_path: Path) -> None:
    member = tarfile.TarInfo(name)
    member.size = 1
    config = tarfile.TarInfo("m/config.json")
    config.size = 1
    with pytest.raises(ModelCheckError, match=r"points outside the archive"):
        extract_archive(tar_of_members([config, member], "w:gz"), "m.tar.gz", tmp_path / "x", max_bytes=2**20)
    assert not (tmp_path / "x").exists() and not (tmp_path / "evil.txt").exists()


def test_tar_members_are_counted_as_they_come(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The member budget stops a tar while it is read (no getmembers() of the whole stream)."""
    monkeypatch.setattr(tarfile.TarFile, "getmembers", lambda self: pytest.fail("whole index read"))
    monkeypatch.setattr("core.models.import_checks.MAX_ARCHIVE_MEMBERS", 3)
    members = [tarfile.TarInfo(f"m/f{i}") for i in range(5)]
    for member in members:
        member.size = 1
    with pytest.raises(ModelCheckError, match=r"more than 3 files"):
        extract_archive(tar_of_members(members), "m.tar", tmp_path / "x", max_bytes=2**20)


def test_a_tar_of_the_current_directory_unpacks(model_dir: Path, tmp_path: Path) -> None:
    """``tar -C model -czf m.tgz .`` writes a './' entry and './name' members."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        archive.add(model_dir, arcname=".")
    buffer.seek(0)
    directory = extract_archive(buffer, "m.tgz", tmp_path / "x", max_bytes=2**30)
    assert directory == tmp_path / "x" and (directory / "config.json").is_file()


def test_damaged_archives_are_refused_with_a_reason(model_dir: Path, tmp_path: Path) -> None:
    """A corrupt deflate stream, a cut-off gzip or tar, and garbage are all refusals, never raw
    zlib/EOF/tar errors, and leave nothing behind."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("m/config.json", b"{" + b"a" * 5000 + b"}")
    data = bytearray(buffer.getvalue())
    header = 30 + len("m/config.json")  # the deflate stream starts after the local header
    data[header : header + 8] = b"\xff" * 8
    cases = [(bytes(data), "m.zip")]
    whole = tar_of(model_dir).getvalue()
    cases.append((whole[: len(whole) // 2], "m.tar.gz"))  # gzip stream cut off
    plain = tar_of_members([tarfile.TarInfo("m/config.json")]).getvalue()
    big = tarfile.TarInfo("m/model.safetensors")
    big.size = 4096
    cut = tar_of_members([big]).getvalue()[:1024]  # a member's data cut off mid-tar
    cases += [(cut, "m.tar"), (b"\x1f\x8b" + b"garbage" * 10, "m.tgz"), (plain[:100], "m.tar")]
    for index, (payload, name) in enumerate(cases):
        target = tmp_path / f"x{index}"
        with pytest.raises(ModelCheckError, match=r"not a readable|damaged|empty"):
            extract_archive(io.BytesIO(payload), name, target, max_bytes=2**30)
        assert not target.exists(), name


def test_unreadable_directory_is_refused(
    model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A directory the server may not list (permissions) is a refusal with a reason."""
    directory = copy_of(model_dir, tmp_path / "locked")

    def denied(self: Path):
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "iterdir", denied)
    with pytest.raises(ModelCheckError, match=r"cannot be read on this server: Permission denied"):
        inspect_directory(directory, refuse_pickle=False)
