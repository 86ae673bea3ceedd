"""Typed dependencies for routes: the app's context, the signed-in principal, an admin."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from portal.app.auth.guard import AdminUser, CurrentUser
from portal.app.context import PortalContext, get_context

Context = Annotated[PortalContext, Depends(get_context)]

__all__ = ["AdminUser", "Context", "CurrentUser"]
