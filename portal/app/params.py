"""Request parameters shared by routes: one definition each, with the limits a database can store.

User names are validated as JupyterHub validates them (``Authenticator.validate_username``): not empty,
no slash, no leading or trailing space; and, as path segments, never ``.`` or ``..``, and never a control
character (PostgreSQL text cannot hold NUL). The pattern has no look-around (pydantic's regex engine
has none), so it lists the allowed shapes: one character, two, or a longer name with non-space ends.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import Path, Query

_CHAR = r"[^/\x00-\x1f\x7f]"  # any character allowed inside a name
_END = r"[^\s/\x00-\x1f\x7f]"  # ... and at either end (no space)
_END_NO_DOT = r"[^\s/.\x00-\x1f\x7f]"
_NAME = rf"{_END_NO_DOT}|{_END_NO_DOT}{_END}|\.{_END_NO_DOT}|{_END}{_CHAR}+{_END}"
USER_NAME_PATTERN = rf"^(?:{_NAME})$"

UserName = Annotated[str, Path(min_length=1, max_length=255, pattern=USER_NAME_PATTERN,
                               description="JupyterHub user name")]
UserFilter = Annotated[str | None, Query(min_length=1, max_length=255, pattern=USER_NAME_PATTERN,
                                         description="one user (admins: anyone)")]
# A page's filter form sends "" for "everyone".
UserFormFilter = Annotated[str | None, Query(max_length=255, pattern=rf"^(?:{_NAME}|)$")]
Month = Annotated[str | None, Query(max_length=7, description="YYYY-MM in the portal's time zone")]
Start = Annotated[str | None, Query(max_length=40, description="YYYY-MM-DD (local midnight) or ISO 8601 time")]
End = Annotated[str | None, Query(max_length=40, description="exclusive; same forms as start")]
Namespace = Annotated[str, Path(min_length=1, max_length=63, pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")]
PodName = Annotated[str, Path(min_length=1, max_length=253, pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")]
DirName = Annotated[str, Path(min_length=1, max_length=255, description="A directory directly under the base")]
GroupBy = Annotated[Literal["user", "gpu_model", "namespace"], Query(description="what the rows are: users, "
                                                                          "GPU models or namespaces")]
