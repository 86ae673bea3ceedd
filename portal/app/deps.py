"""Typed dependencies for routes: the app's context, the signed-in principal, an admin."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from portal.app.auth.guard import AdminUser, CurrentUser
from portal.app.context import PortalContext, context_dependency

Context = Annotated[PortalContext, Depends(context_dependency)]

__all__ = ["AdminUser", "Context", "CurrentUser"]
