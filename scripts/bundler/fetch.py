"""HTTP with the standard library, and downloads that resume and are verified.

`download` writes `<target>.part` and renames it to `<target>` only once its size and digest match; an
interrupted run leaves the `.part`, and the next one asks for the rest with an HTTP `Range` request. A part
whose digest turns out wrong is removed, so a run never keeps bytes it could not verify.

Authorization headers are added as "unredirected" headers: urllib drops them when it follows a redirect,
so a token never leaves the host it was issued for (the registry client follows redirects itself).
"""

from __future__ import annotations

import hashlib
import http.client
import os
import ssl
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

from . import BundleError
from .progress import Progress

CHUNK = 1 << 20
RETRIES = 3  # attempts without progress before a download gives up
USER_AGENT = "jhub-bundle/1"


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None  # the 3xx comes back to the caller, which decides what the next host gets


_NO_REDIRECT = urllib.request.build_opener(_NoRedirect)
_OPENERS: dict[str, tuple] = {}


def _openers() -> tuple:
    """(following, not following) openers; with `JHUB_REGISTRY_CA_FILE` (the site's `registryCaFile`), HTTPS
    trusts that CA besides the system's."""
    ca_file = os.environ.get("JHUB_REGISTRY_CA_FILE", "")
    if not ca_file:
        return urllib.request.urlopen, _NO_REDIRECT.open
    if ca_file not in _OPENERS:
        try:
            context = ssl.create_default_context()
            context.load_verify_locations(cafile=ca_file)
        except (OSError, ssl.SSLError) as error:
            raise BundleError(f"JHUB_REGISTRY_CA_FILE {ca_file}: not a readable PEM CA ({error})") from None
        https = urllib.request.HTTPSHandler(context=context)
        _OPENERS[ca_file] = (urllib.request.build_opener(https).open,
                             urllib.request.build_opener(https, _NoRedirect).open)
    return _OPENERS[ca_file]


def request(url: str, *, method: str = "GET", headers: Optional[dict] = None, data: Optional[bytes] = None,
            auth: Optional[str] = None, timeout: float = 60, follow: bool = True):
    """Open `url`; an HTTP error status (and, with follow=False, a redirect) comes back as the
    `urllib.error.HTTPError` response (it has `.status`, `.headers` and `.read()`); network failures raise
    BundleError."""
    req = urllib.request.Request(url, data=data, method=method, headers={"User-Agent": USER_AGENT, **(headers or {})})
    if auth:
        req.add_unredirected_header("Authorization", auth)
    try:
        following, not_following = _openers()
        return (following if follow else not_following)(req, timeout=timeout)
    except urllib.error.HTTPError as error:
        return error
    except (urllib.error.URLError, OSError, http.client.HTTPException) as error:
        reason = getattr(error, "reason", error)
        raise BundleError(f"cannot reach {_where(url)}: {reason}") from None


def _where(url: str) -> str:
    return url.split("?", 1)[0]


def file_digest(path: Path, algorithm: str) -> str:
    digest = hashlib.new(algorithm)
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class Expected:
    """What a finished download must be: its size (None when unknown) and hex digest."""

    algorithm: str  # hashlib name: sha256, sha3_384
    hexdigest: str
    size: Optional[int]


def intact(path: Path, expected: Expected) -> bool:
    if not path.is_file() or (expected.size is not None and path.stat().st_size != expected.size):
        return False
    return file_digest(path, expected.algorithm) == expected.hexdigest


def part_path(target: Path) -> Path:
    return target.with_name(target.name + ".part")


def download(open_at: Callable[[int], object], target: Path, expected: Expected, label: str,
             progress: Callable[..., Progress] = Progress) -> bool:
    """Fetch into `target` unless it is already there and intact; True when bytes were downloaded.

    `open_at(offset)` opens the resource, asking for the bytes from `offset` on when offset > 0 (a Range
    request); it is called again, with the new offset, after a cut connection.
    """
    if intact(target, expected):
        return False
    target.parent.mkdir(parents=True, exist_ok=True)
    part = part_path(target)
    hasher = hashlib.new(expected.algorithm)
    offset = 0
    if part.is_file():
        offset = part.stat().st_size
        if expected.size is not None and offset > expected.size:
            part.unlink()
            offset = 0
        else:
            with open(part, "rb") as handle:
                for block in iter(lambda: handle.read(CHUNK), b""):
                    hasher.update(block)
    meter = progress(label, expected.size)
    meter.start(offset)
    failures, last_error = 0, ""
    while expected.size is None or offset < expected.size:
        if failures >= RETRIES:
            raise BundleError(f"{label}: {last_error}; {offset} of {expected.size} bytes are kept in {part}, "
                              "run the bundle again to resume")
        response = open_at(offset)
        status = getattr(response, "status", 200)
        if status == 416 and offset:  # the server has no bytes past what we hold: it serves a shorter file
            response.close()
            failures, last_error = RETRIES, f"the server has only {offset} bytes (truncated)"
            continue
        if status not in (200, 206):
            response.close()
            raise BundleError(f"{label}: HTTP {status} from {_where(getattr(response, 'url', '') or '')}")
        content_range = response.headers.get("Content-Range", "")
        if status == 206 and not content_range.startswith(f"bytes {offset}-"):
            response.close()  # not the bytes we asked for: start over without a Range
            part.unlink(missing_ok=True)
            hasher, offset, failures = hashlib.new(expected.algorithm), 0, failures + 1
            last_error = f"the server answered a Range request with {content_range or 'no Content-Range'}"
            continue
        if status == 200 and offset:  # the server ignored the Range header: start over
            part.unlink()
            hasher, offset = hashlib.new(expected.algorithm), 0
            meter.start(0)
        before, last_error = offset, ""
        try:
            with open(part, "ab") as out:
                for block in iter(lambda: response.read(CHUNK), b""):
                    out.write(block)
                    hasher.update(block)
                    offset += len(block)
                    meter.update(len(block))
                    if expected.size is not None and offset > expected.size:
                        break
        except (OSError, http.client.HTTPException) as error:
            last_error = f"connection lost ({error.__class__.__name__})"
        finally:
            response.close()
        if expected.size is None:
            break
        if offset > expected.size:
            part.unlink()
            raise BundleError(f"{label}: the server sent more than the {expected.size} bytes expected; "
                              "the partial file was removed")
        if offset < expected.size:
            if offset == before:
                failures += 1
            else:
                failures = 0
            last_error = last_error or f"the server sent {offset} of {expected.size} bytes (truncated)"
    meter.finish()
    actual = hasher.hexdigest()
    if actual != expected.hexdigest:
        part.unlink()
        raise BundleError(f"{label}: {expected.algorithm} of the download is {actual}, expected "
                          f"{expected.hexdigest}; the file was removed, nothing was recorded")
    os.replace(part, target)
    return True
