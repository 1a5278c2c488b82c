"""Getting data files onto disk: the user cache, opt-in downloads, safe extraction.

Nothing here reaches the network unless downloading is allowed, either by the
``allow_download`` argument or by ``NORD_ALLOW_DOWNLOAD`` set to ``1``, ``true`` or
``yes`` in the environment. Without that, a missing file is a
:class:`~nord.errors.DataNotFoundError` that names the file, where it was looked
for, its official URL, and how to allow downloading or place the file by hand.

Example::

    from nord.data_curators.download import cache_dir, fetch
    path = fetch("https://example.org/data.zip", cache_dir() / "data.zip",
                 sha256="...", allow_download=True)
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request
import zipfile
from pathlib import Path, PurePosixPath
from typing import Callable, Iterable, Optional

from nord.errors import DataNotFoundError

__all__ = ["ALLOW_DOWNLOAD_ENV", "CACHE_ENV", "cache_dir", "downloads_allowed",
           "sha256_of", "fetch", "check_member_name", "safe_extract_tar",
           "safe_extract_zip"]

logger = logging.getLogger(__name__)

ALLOW_DOWNLOAD_ENV = "NORD_ALLOW_DOWNLOAD"
CACHE_ENV = "NORD_CACHE"
_TRUE_WORDS = {"1", "true", "yes"}
_CHUNK = 1 << 20
_TIMEOUT_S = 60


def cache_dir() -> Path:
    """NORD's user cache: ``$NORD_CACHE``, else ``$XDG_CACHE_HOME/nord``, else ``~/.cache/nord``.

    The first of these that is set wins (empty values count as unset).
    """
    configured = os.environ.get(CACHE_ENV)
    if configured:
        return Path(configured).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    if xdg:
        return Path(xdg).expanduser() / "nord"
    return Path.home() / ".cache" / "nord"


def downloads_allowed(allow_download: Optional[bool] = None) -> bool:
    """The explicit ``allow_download`` if given, else ``$NORD_ALLOW_DOWNLOAD``."""
    if allow_download is not None:
        return bool(allow_download)
    return os.environ.get(ALLOW_DOWNLOAD_ENV, "").strip().lower() in _TRUE_WORDS


def sha256_of(path: os.PathLike) -> str:
    """Hex SHA-256 digest of a file's contents."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _how_to_get(url: str, destination: Path) -> str:
    return (f"To download it, set {ALLOW_DOWNLOAD_ENV}=1 in the environment or pass "
            f"allow_download=True (official URL: {url}); or download it by hand and "
            f"place it at {destination}")


def fetch(url: str, destination: os.PathLike, *, sha256: Optional[str] = None,
          allow_download: Optional[bool] = None,
          looked_in: Iterable[os.PathLike] = ()) -> Path:
    """The path of ``destination``, downloading it from ``url`` first if needed.

    An existing file is returned as is (after checking ``sha256`` when given).
    Otherwise the file is downloaded, only when allowed (see module docs), to a
    temporary file next to ``destination`` that is checked against ``sha256`` and
    then renamed into place, so a failed or interrupted download leaves nothing
    behind. ``looked_in`` lists other places the caller already searched; they
    are named in the error message.
    """
    destination = Path(destination)
    looked = [str(p) for p in looked_in] + [str(destination)]
    if destination.is_file():
        if sha256 is None or sha256_of(destination) == sha256.lower():
            return destination
        if not downloads_allowed(allow_download):
            raise DataNotFoundError(
                f"{destination} is damaged: its SHA-256 is not the expected {sha256}. "
                f"Delete it and get it again. " + _how_to_get(url, destination))
        logger.warning("%s does not match its SHA-256; downloading it again", destination)
    elif not downloads_allowed(allow_download):
        raise DataNotFoundError(
            f"{destination.name} is needed but was not found (looked in: "
            f"{', '.join(looked)}). Downloading is not allowed. "
            + _how_to_get(url, destination))
    _download(url, destination, sha256, looked)
    return destination


def _download(url: str, destination: Path, sha256: Optional[str], looked) -> None:
    """Download ``url`` into ``destination`` atomically, checking ``sha256``."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{destination.name}.",
                                         suffix=".part", dir=destination.parent)
    digest = hashlib.sha256()
    try:
        logger.info("downloading %s to %s", url, destination)
        with os.fdopen(handle, "wb") as out, \
                urllib.request.urlopen(url, timeout=_TIMEOUT_S) as response:
            for chunk in iter(lambda: response.read(_CHUNK), b""):
                digest.update(chunk)
                out.write(chunk)
        if sha256 is not None and digest.hexdigest() != sha256.lower():
            raise DataNotFoundError(
                f"the download of {url} has SHA-256 {digest.hexdigest()}, expected "
                f"{sha256}; it was discarded (the server or the connection gave a "
                f"wrong file). Try again, or download it by hand and place it at "
                f"{destination}")
        os.replace(temporary, destination)
    except DataNotFoundError:
        raise
    except (urllib.error.URLError, OSError, ValueError) as error:
        raise DataNotFoundError(
            f"{destination.name} is needed but was not found (looked in: "
            f"{', '.join(looked)}) and could not be downloaded from {url}: {error}. "
            f"Check the network, or download it by hand and place it at "
            f"{destination}") from error
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)
    logger.info("downloaded %s", destination)


def check_member_name(name: str, archive: os.PathLike) -> None:
    """Raise :class:`DataNotFoundError` if an archive member could escape its folder.

    Absolute paths (POSIX or Windows drive/UNC) and ``..`` components are refused.
    """
    posix = PurePosixPath(name.replace("\\", "/"))
    if (posix.is_absolute() or ".." in posix.parts
            or (len(name) > 1 and name[0].isalpha() and name[1] == ":")):
        raise DataNotFoundError(
            f"{archive} holds an unsafe member {name!r} (absolute path or '..'); "
            f"refusing to extract it. The archive is not the official one: "
            f"download it again from the official source")


def _staging_dir(destination: Path) -> Path:
    destination.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=".partial-", dir=destination))


def _move_into(staging: Path, destination: Path) -> None:
    """Move every top-level entry of ``staging`` into ``destination``, replacing."""
    for entry in sorted(staging.iterdir()):
        target = destination / entry.name
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        elif target.exists() or target.is_symlink():
            target.unlink()
        os.replace(entry, target)


def safe_extract_tar(archive: os.PathLike, destination: os.PathLike, *,
                     select: Optional[Callable[[str], bool]] = None) -> Path:
    """Extract a (compressed) tar archive into ``destination`` safely.

    Every member's name is checked (:func:`check_member_name`) and extraction
    uses tarfile's ``filter='data'`` (no links out of the folder, no devices, no
    set-uid bits). Members go to a temporary folder inside ``destination`` first,
    and only a complete extraction is moved into place, so an unsafe or damaged
    archive leaves nothing behind. ``select(name)`` picks the members to extract.
    """
    archive, destination = Path(archive), Path(destination)
    staging = _staging_dir(destination)
    try:
        with tarfile.open(archive, "r:*") as tar:
            for member in tar:
                check_member_name(member.name, archive)
                if select is None or select(member.name):
                    tar.extract(member, staging, filter="data")
        _move_into(staging, destination)
    except DataNotFoundError:
        raise
    except (tarfile.TarError, EOFError, OSError) as error:
        raise DataNotFoundError(
            f"{archive} could not be extracted ({error}); it is damaged, truncated or "
            f"unsafe: download it again from the official source") from error
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return destination


def safe_extract_zip(archive: os.PathLike, destination: os.PathLike) -> Path:
    """Extract a zip archive into ``destination`` safely (see :func:`safe_extract_tar`)."""
    archive, destination = Path(archive), Path(destination)
    staging = _staging_dir(destination)
    try:
        with zipfile.ZipFile(archive) as bundle:
            for info in bundle.infolist():
                check_member_name(info.filename, archive)
            bundle.extractall(staging)
        _move_into(staging, destination)
    except DataNotFoundError:
        raise
    except (zipfile.BadZipFile, EOFError, OSError) as error:
        raise DataNotFoundError(
            f"{archive} could not be extracted ({error}); it is damaged or truncated: "
            f"download it again from the official source") from error
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return destination
