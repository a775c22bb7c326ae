"""``--freeze``: which part of the backbone is trained, parsed once into a ``FreezeSpec``."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Optional

from pydantic import BeforeValidator, PlainSerializer

_FREEZE_PATTERN = re.compile(r"^(backbone|none|until:[A-Za-z0-9_.]+)$")


@dataclass(frozen=True)
class FreezeSpec:
    """``--freeze`` parsed once: train everything, freeze the whole backbone, or freeze the stem up to a stage."""

    kind: Literal["none", "backbone", "until"]
    stage: Optional[str] = None

    @classmethod
    def parse(cls, text: Any) -> FreezeSpec:
        """A spec from its text (``backbone``, ``none``, ``until:<stage>``); a spec is returned as it is."""
        if isinstance(text, FreezeSpec):
            return text
        if not isinstance(text, str) or not _FREEZE_PATTERN.match(text):
            raise ValueError("must be 'backbone', 'none' or 'until:<stage>'")
        kind, _, stage = text.partition(":")
        return cls(kind, stage or None)  # type: ignore[arg-type]

    def __str__(self) -> str:
        return f"until:{self.stage}" if self.kind == "until" else self.kind

    @property
    def any(self) -> bool:
        """True when some part of the backbone is frozen."""
        return self.kind != "none"


# The config field's type: text in (flags, YAML), a FreezeSpec inside, text out again.
Freeze = Annotated[FreezeSpec, BeforeValidator(FreezeSpec.parse), PlainSerializer(str, return_type=str)]
