"""Untrusted upload bytes: what a file really is, and zip archives opened safely.

The format a user names (or the file's suffix) is checked against the content's signature, so
a spreadsheet renamed ``.gpkg`` gets a clear message rather than a GDAL error. Zip archives
(KMZ, zipped shapefiles) are read member by member into a private folder under limits that a
zip bomb cannot pass (total size, ratio, member count, all counted while inflating, not taken
from the headers) and with names reduced to their last part, so no member can land outside it.
"""

from __future__ import annotations

import io
import stat
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from registry.errors import ValidationError

#: Content signatures of binary formats.
SQLITE_MAGIC = b"SQLite format 3\x00"
ZIP_MAGIC = b"PK\x03\x04"
EMPTY_ZIP_MAGIC = b"PK\x05\x06"


@dataclass(frozen=True)
class ZipLimits:
    """What an uploaded archive may hold once inflated."""

    max_members: int = 200
    max_total_bytes: int = 512 * 1024 * 1024
    #: Inflated / compressed size of any member; text compresses ~10:1, bombs ~1000:1.
    max_ratio: float = 200.0


def sniff(data: bytes) -> str:
    """What the bytes look like: ``gpkg``, ``zip``, ``json``, ``text`` or ``binary``."""
    if data.startswith(SQLITE_MAGIC):
        return "gpkg"
    if data.startswith((ZIP_MAGIC, EMPTY_ZIP_MAGIC)):
        return "zip"
    head = data[:4096]
    try:
        text = head.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 4:  # not just a character cut at the 4 KiB boundary
            return "binary"
        text = head[: exc.start].decode("utf-8-sig")
    if "\x00" in text:
        return "binary"
    return "json" if text.lstrip()[:1] in ("{", "[") else "text"


#: What each import format's content must look like.
EXPECTED_CONTENT = {
    "geojson": "json",
    "csv": "text",
    "opencellid": "text",
    "speedtest": "text",
    "gnettrack": "text",
    "netcellinfo": "text",
    "measurements": "text",
    "gpkg": "gpkg",
    "kmz": "zip",
    "shapefile": "zip",
}


def check_content(data: bytes, fmt: str) -> None:
    """Refuse bytes that are not what ``fmt`` says, naming what they look like instead."""
    found, wanted = sniff(data), EXPECTED_CONTENT[fmt]
    if found != wanted:
        raise ValidationError(
            f"the file is not {fmt}",
            details=[
                {
                    "field": "file",
                    "reason": (f"its content looks like {found}, not {wanted} (format {fmt})"),
                }
            ],
        )


def _refuse(reason: str) -> ValidationError:
    return ValidationError(
        "unsafe or unreadable zip archive", details=[{"field": "file", "reason": reason}]
    )


def extract_zip(
    data: bytes, folder: Path, suffixes: tuple[str, ...], limits: ZipLimits | None = None
) -> list[Path]:
    """Write the members whose names end in ``suffixes`` into ``folder`` (flat, by last name
    part) and return their paths; refuse links, duplicates, traversal and bombs."""
    limits = limits or ZipLimits()
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        members = archive.infolist()
    except (zipfile.BadZipFile, ValueError, OSError) as exc:
        raise _refuse(f"not a readable zip: {exc}") from None
    if len(members) > limits.max_members:
        raise _refuse(f"{len(members)} members (at most {limits.max_members})")
    written: list[Path] = []
    total = 0
    with archive:
        for info in members:
            name = info.filename.replace("\\", "/")
            parts = PurePosixPath(name).parts
            if name.startswith("/") or ".." in parts or (parts and ":" in parts[0]):
                raise _refuse(f"member {info.filename!r} points outside the archive")
            if stat.S_ISLNK(info.external_attr >> 16):
                raise _refuse(f"member {info.filename!r} is a symbolic link")
            if info.is_dir() or not name.lower().endswith(suffixes):
                continue
            target = folder / PurePosixPath(name).name
            if target.exists():
                raise _refuse(f"two members named {target.name!r}")
            budget = min(
                limits.max_total_bytes - total, int(max(info.compress_size, 1) * limits.max_ratio)
            )
            try:
                with archive.open(info) as src, target.open("wb") as dst:
                    while chunk := src.read(1 << 16):
                        total += len(chunk)
                        budget -= len(chunk)
                        if budget < 0:
                            raise _refuse(
                                f"member {info.filename!r} inflates beyond the limits "
                                f"({limits.max_total_bytes} bytes in all, ratio "
                                f"{limits.max_ratio:g}): a zip bomb?"
                            )
                        dst.write(chunk)
            except (zipfile.BadZipFile, RuntimeError, OSError, EOFError, zlib.error) as exc:
                raise _refuse(f"member {info.filename!r}: {exc}") from None
            written.append(target)
    return written
