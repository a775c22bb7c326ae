"""The building blocks of the config's fields: sections, reset words, the RESET sentinel, value types.

Every field of ``TrainConfig`` is made by one section's maker (``data_field``, ``model_field``, …), so
it declares its section itself; ``--help`` groups the flags by it. An optional field also declares
its reset word (``all``, ``off``, ``native`` …): the flag's text that puts the field back to its
natural value (``None``), over whatever a preset or config file set.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import Enum
from typing import Annotated, Any, Literal, Optional

from pydantic import BeforeValidator, Field
from pydantic.fields import FieldInfo

# In the order --help shows them.
SECTIONS = ("data", "model", "optimisation", "execution")


class Reset(Enum):
    """The type of :data:`RESET`."""

    RESET = "reset"

    def __repr__(self) -> str:
        return "RESET"


# An override's value that means "back to this field's default", where ``None`` means "not given".
RESET = Reset.RESET


def section_field(section: str) -> Callable[..., Any]:
    """A ``Field`` maker whose fields declare ``section``.

    The maker takes the default, the description (which is also the flag's help), ``reset``: the
    word a flag gives to restore the default, ``flag``: a flag name other than the field's, and
    pydantic's constraints (``ge``, ``le`` …).
    """
    if section not in SECTIONS:
        raise ValueError(f"unknown config section '{section}'; sections: {', '.join(SECTIONS)}")

    def make(
        default: Any, description: str, *, reset: Optional[str] = None, flag: Optional[str] = None, **constraints: Any
    ) -> Any:
        extra = {"section": section, **({"reset": reset} if reset else {}), **({"flag": flag} if flag else {})}
        return Field(default, description=description, json_schema_extra=extra, **constraints)

    return make


data_field = section_field("data")
model_field = section_field("model")
optimisation_field = section_field("optimisation")
execution_field = section_field("execution")


def declared(field: FieldInfo, key: str) -> Optional[str]:
    """What a field declares under ``key`` (``section``, ``reset``, ``flag``), or None."""
    extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
    value = extra.get(key)
    return str(value) if value is not None else None


def _split_names(value: Any) -> Any:
    """``"tensorboard,mlflow"`` (a flag) or a YAML list, as a list without blanks or repeats."""
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, (list, tuple)):
        return value  # pydantic reports the wrong type
    return list(dict.fromkeys(str(v).strip() for v in items if str(v).strip()))


DatasetName = Literal["mnist", "fashion-mnist", "kmnist", "cifar10", "cifar100", "svhn", "folder", "csv"]
LoggerNames = Annotated[list[Literal["csv", "tensorboard", "mlflow"]], BeforeValidator(_split_names)]
