"""fetch, cache_dir and safe archive extraction, offline (file:// URLs)."""

import hashlib
import io
import tarfile
import zipfile
from pathlib import Path

import pytest

from nord.data_curators.download import (
    cache_dir,
    downloads_allowed,
    fetch,
    safe_extract_tar,
    safe_extract_zip,
)
from nord.errors import DataNotFoundError


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch):
    for name in ("NORD_ALLOW_DOWNLOAD", "NORD_CACHE", "NORD_DATA", "XDG_CACHE_HOME"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def source(tmp_path):
    """A file to 'download' and its SHA-256."""
    path = tmp_path / "server" / "payload.bin"
    path.parent.mkdir()
    content = bytes(range(256)) * 1000
    path.write_bytes(content)
    return path, hashlib.sha256(content).hexdigest()


def _entries(folder: Path):
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_cache_dir_uses_nord_cache_then_home(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_dir() == tmp_path / "home" / ".cache" / "nord"
    monkeypatch.setenv("NORD_CACHE", str(tmp_path / "elsewhere"))
    assert cache_dir() == tmp_path / "elsewhere"


def test_cache_dir_uses_xdg_cache_home_between_nord_cache_and_home(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "xdg" / "nord"
    monkeypatch.setenv("NORD_CACHE", str(tmp_path / "elsewhere"))
    assert cache_dir() == tmp_path / "elsewhere"
    monkeypatch.delenv("NORD_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", "")
    assert cache_dir() == tmp_path / "home" / ".cache" / "nord"


@pytest.mark.parametrize("value,allowed", [("1", True), ("true", True), ("YES", True),
                                           ("0", False), ("", False), ("no", False)])
def test_downloads_allowed_reads_the_environment(monkeypatch, value, allowed):
    monkeypatch.setenv("NORD_ALLOW_DOWNLOAD", value)
    assert downloads_allowed() is allowed
    assert downloads_allowed(True) is True
    assert downloads_allowed(False) is False


def test_downloads_are_not_allowed_by_default():
    assert downloads_allowed() is False


def test_fetch_downloads_a_file_url_and_verifies_it(source, tmp_path):
    path, digest = source
    destination = tmp_path / "cache" / "sub" / "payload.bin"
    result = fetch(path.as_uri(), destination, sha256=digest, allow_download=True)
    assert result == destination
    assert destination.read_bytes() == path.read_bytes()
    assert _entries(destination.parent) == ["payload.bin"]  # no temporary file left


def test_fetch_downloads_when_the_environment_allows(source, tmp_path, monkeypatch):
    path, digest = source
    monkeypatch.setenv("NORD_ALLOW_DOWNLOAD", "yes")
    destination = tmp_path / "payload.bin"
    fetch(path.as_uri(), destination, sha256=digest)
    assert destination.read_bytes() == path.read_bytes()


def test_fetch_returns_an_existing_file_without_downloading(tmp_path):
    destination = tmp_path / "here.bin"
    destination.write_bytes(b"abc")
    digest = hashlib.sha256(b"abc").hexdigest()
    unreachable = "file:///nonexistent/here.bin"
    assert fetch(unreachable, destination) == destination
    assert fetch(unreachable, destination, sha256=digest.upper()) == destination


def test_fetch_rejects_a_download_with_the_wrong_checksum(source, tmp_path):
    path, _ = source
    destination = tmp_path / "cache" / "payload.bin"
    with pytest.raises(DataNotFoundError, match=r"SHA-256 .* expected 0{64}.*discarded"):
        fetch(path.as_uri(), destination, sha256="0" * 64, allow_download=True)
    assert not destination.exists()
    assert _entries(destination.parent) == []


def test_fetch_reports_a_damaged_existing_file_when_downloads_are_off(tmp_path):
    destination = tmp_path / "payload.bin"
    destination.write_bytes(b"damaged")
    with pytest.raises(DataNotFoundError, match="is damaged"):
        fetch("https://example.org/payload.bin", destination, sha256="0" * 64)
    assert destination.read_bytes() == b"damaged"


def test_fetch_replaces_a_damaged_file_when_downloads_are_allowed(source, tmp_path):
    path, digest = source
    destination = tmp_path / "payload.bin"
    destination.write_bytes(b"damaged")
    fetch(path.as_uri(), destination, sha256=digest, allow_download=True)
    assert destination.read_bytes() == path.read_bytes()


def test_fetch_without_permission_says_what_where_and_how(source, tmp_path):
    path, _ = source
    destination = tmp_path / "cache" / "payload.bin"
    url = "https://example.org/data/payload.bin"
    with pytest.raises(DataNotFoundError) as caught:
        fetch(url, destination, looked_in=[tmp_path / "data"])
    message = str(caught.value)
    for needed in ("payload.bin", str(destination), str(tmp_path / "data"), url,
                   "NORD_ALLOW_DOWNLOAD=1", "allow_download=True", "by hand"):
        assert needed in message
    assert not destination.parent.exists()


def test_fetch_of_an_unreachable_url_is_a_clear_error(tmp_path):
    destination = tmp_path / "cache" / "payload.bin"
    with pytest.raises(DataNotFoundError,
                       match=r"could not be downloaded from file:///nonexistent/payload.bin"):
        fetch("file:///nonexistent/payload.bin", destination, allow_download=True)
    assert _entries(destination.parent) == []


def _tar(path: Path, members):
    """Write a tar.gz holding ``{name: bytes}`` (``None`` = directory)."""
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            if data is None:
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            else:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return path


def test_safe_extract_tar_extracts_selected_members(tmp_path):
    archive = _tar(tmp_path / "a.tar.gz", {"keep/": None, "keep/x.txt": b"x",
                                           "skip/y.txt": b"y"})
    out = safe_extract_tar(archive, tmp_path / "out",
                           select=lambda name: name.startswith("keep"))
    assert (out / "keep" / "x.txt").read_bytes() == b"x"
    assert _entries(out) == ["keep"]


@pytest.mark.parametrize("bad_name", ["../escaped.txt", "/tmp/absolute.txt",
                                      "ok/../../escaped.txt"])
def test_safe_extract_tar_rejects_unsafe_members(tmp_path, bad_name):
    archive = _tar(tmp_path / "evil.tar.gz", {"fine.txt": b"fine", bad_name: b"evil"})
    out = tmp_path / "deep" / "out"
    with pytest.raises(DataNotFoundError, match="unsafe member"):
        safe_extract_tar(archive, out)
    assert _entries(out) == []  # the safe member before it was not left behind either
    assert not (tmp_path / "deep" / "escaped.txt").exists()
    assert not (tmp_path / "escaped.txt").exists()


def test_safe_extract_tar_rejects_links_out_of_the_folder(tmp_path):
    archive = tmp_path / "link.tar"
    with tarfile.open(archive, "w") as tar:
        info = tarfile.TarInfo("link")
        info.type = tarfile.SYMTYPE
        info.linkname = "/etc/passwd"
        tar.addfile(info)
    with pytest.raises(DataNotFoundError, match="could not be extracted"):
        safe_extract_tar(archive, tmp_path / "out")
    assert _entries(tmp_path / "out") == []


def test_safe_extract_tar_reports_a_damaged_archive(tmp_path):
    archive = tmp_path / "broken.tar.gz"
    archive.write_bytes(b"this is not a tar file at all" * 10)
    with pytest.raises(DataNotFoundError, match="broken.tar.gz could not be extracted"):
        safe_extract_tar(archive, tmp_path / "out")


def test_safe_extract_zip_extracts_and_rejects_unsafe_names(tmp_path):
    good = tmp_path / "good.zip"
    with zipfile.ZipFile(good, "w") as bundle:
        bundle.writestr("folder/a.csv", "1,2\n")
    assert (safe_extract_zip(good, tmp_path / "out") / "folder" / "a.csv").read_text() == "1,2\n"
    evil = tmp_path / "evil.zip"
    with zipfile.ZipFile(evil, "w") as bundle:
        bundle.writestr("../escaped.csv", "x")
    with pytest.raises(DataNotFoundError, match="unsafe member '../escaped.csv'"):
        safe_extract_zip(evil, tmp_path / "out2")
    assert not (tmp_path / "escaped.csv").exists()
    assert _entries(tmp_path / "out2") == []
