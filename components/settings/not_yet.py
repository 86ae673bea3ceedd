"""Sections whose feature this version does not deploy: parsed strictly, refused when turned on."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import model_validator

from .base import StrictModel


class NotYet(StrictModel):
    switch: ClassVar[str] = "enabled"
    what: ClassVar[str] = ""

    @model_validator(mode="after")
    def _refuse(self) -> Any:
        if getattr(self, self.switch):
            raise ValueError(f"{self.what} is not deployed by this version of jhub yet; leave it off")
        return self
