"""Stored content (evidence, evaluation logs, traces): content-addressed files under MEDIA_ROOT,
hashed while streaming. In core because several apps keep files here (incidents and pacts).

A file lives at MEDIA_ROOT/evidence/<sha256[:2]>/<sha256> and is never rewritten: the same bytes
always land on the same path, so a second upload of them is a no-op on disk. Nothing here is
served directly; the download view streams it as an attachment (see `open_blob`).
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings

from trustdesk.core.errors import Refused

EVIDENCE_DIR = "evidence"
CHUNK = 64 * 1024


@dataclass(frozen=True)
class Blob:
    sha256: str
    size: int
    storage_path: str = ""  # relative to MEDIA_ROOT; empty for text and URL evidence
    created: bool = False  # whether this call put the file on disk


class BlobError(Refused):
    """Content that cannot be stored (empty, too large, not a valid URL); nothing was kept."""


def _error(message: str) -> BlobError:
    return BlobError(message)


def max_bytes() -> int:
    return int(settings.EVIDENCE_MAX_BYTES)


def human_size(n: int) -> str:
    for unit in ("bytes", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def root() -> Path:
    media = Path(settings.MEDIA_ROOT).resolve()
    static_root = getattr(settings, "STATIC_ROOT", None)
    if static_root and media.is_relative_to(Path(static_root).resolve()):
        raise RuntimeError("MEDIA_ROOT must not be inside STATIC_ROOT: evidence is never static.")
    return media


def relative_path(sha256: str) -> str:
    if not re.fullmatch(r"[0-9a-f]{64}", sha256):
        raise ValueError("not a SHA-256 hex digest")
    return f"{EVIDENCE_DIR}/{sha256[:2]}/{sha256}"


def absolute_path(storage_path: str) -> Path:
    path = (root() / storage_path).resolve()
    if not path.is_relative_to(root() / EVIDENCE_DIR):
        raise ValueError("evidence path outside the evidence folder")
    return path


def store_upload(upload) -> Blob:
    """Stream a Django UploadedFile into content-addressed storage, hashing and counting as it
    goes. Refuses an empty file and one above settings.EVIDENCE_MAX_BYTES (checked while
    streaming, so a client that lies about the size is caught too)."""
    limit = max_bytes()
    declared = getattr(upload, "size", None)
    name = getattr(upload, "name", "") or "the file"
    if declared is not None and declared > limit:
        raise _error(
            f"{name} is {human_size(declared)}; evidence files may be at most {human_size(limit)}."
        )
    folder = root() / EVIDENCE_DIR / "incoming"
    folder.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    size = 0
    fd, tmp_name = tempfile.mkstemp(dir=folder, prefix="upload-")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            if hasattr(upload, "seek"):
                upload.seek(0)
            for chunk in (
                upload.chunks(CHUNK)
                if hasattr(upload, "chunks")
                else iter(lambda: upload.read(CHUNK), b"")
            ):
                size += len(chunk)
                if size > limit:
                    raise _error(
                        f"{name} is larger than {human_size(limit)}, the limit for evidence files."
                    )
                digest.update(chunk)
                out.write(chunk)
        if size == 0:
            raise _error(f"{name} is empty; evidence needs content.")
        sha = digest.hexdigest()
        rel = relative_path(sha)
        final = root() / rel
        final.parent.mkdir(parents=True, exist_ok=True)
        created = not final.exists()
        if created:
            os.chmod(tmp, 0o440)
            os.replace(tmp, final)
        return Blob(sha256=sha, size=size, storage_path=rel, created=created)
    finally:
        tmp.unlink(missing_ok=True)


def digest_text(text: str) -> Blob:
    data = text.encode("utf-8")
    if not text.strip():
        raise _error("The evidence text is empty.")
    if len(data) > max_bytes():
        raise _error(f"The evidence text is larger than {human_size(max_bytes())}.")
    return Blob(sha256=hashlib.sha256(data).hexdigest(), size=len(data))


def digest_url(url: str) -> Blob:
    from django.core.exceptions import ValidationError
    from django.core.validators import URLValidator

    if not url.strip():
        raise _error("The evidence URL is empty.")
    try:
        URLValidator(schemes=["http", "https"])(url)
    except ValidationError:
        raise _error(f"'{url[:200]}' is not a valid http(s) URL.") from None
    if len(url) > 2000:
        raise _error("The evidence URL is longer than 2000 characters.")
    data = url.encode("utf-8")
    return Blob(sha256=hashlib.sha256(data).hexdigest(), size=len(data))


def discard(blob: Blob) -> None:
    """Remove a file this request stored for a step that was then refused."""
    if blob.storage_path and blob.created:
        absolute_path(blob.storage_path).unlink(missing_ok=True)


def safe_name(name: str) -> str:
    """A download name without folders or control characters (shown, never used as a path)."""
    name = os.path.basename(name.replace("\\", "/"))
    name = re.sub(r"[\x00-\x1f\x7f\"]", "", name).strip() or "evidence"
    return name[:255]


def open_blob(evidence):
    """Open a file evidence item's content for reading (binary). Caller closes it."""
    return absolute_path(evidence.storage_path).open("rb")


def content_bytes(evidence) -> bytes:
    """The exact bytes whose SHA-256 is recorded: the file, the UTF-8 text, or the UTF-8 URL."""
    if evidence.storage_path:
        with open_blob(evidence) as fh:
            return fh.read()
    if evidence.content_type == "text":
        return evidence.text.encode("utf-8")
    return evidence.url.encode("utf-8")
