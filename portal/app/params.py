"""Request parameters shared by routes: one definition each, with the limits a database can store.

User names are JupyterHub's (almost anything) but never contain control characters (PostgreSQL text
cannot hold NUL) or a slash (they are path segments).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Query

USER_NAME_PATTERN = r"^[^\x00-\x1f\x7f/]+$"

UserName = Annotated[str, Path(min_length=1, max_length=255, pattern=USER_NAME_PATTERN,
                               description="JupyterHub user name")]
UserFilter = Annotated[str | None, Query(min_length=1, max_length=255, pattern=USER_NAME_PATTERN,
                                         description="one user (admins: anyone)")]
# A page's filter form sends "" for "everyone".
UserFormFilter = Annotated[str | None, Query(max_length=255, pattern=r"^[^\x00-\x1f\x7f/]*$")]
Month = Annotated[str | None, Query(max_length=7, description="YYYY-MM in the portal's time zone")]
Start = Annotated[str | None, Query(max_length=40, description="YYYY-MM-DD (local midnight) or ISO 8601 time")]
End = Annotated[str | None, Query(max_length=40, description="exclusive; same forms as start")]
