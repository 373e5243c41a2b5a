"""Loaded constraints: variables, assertions, selectors, and the set a bundle declares."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal as TypingLiteral

from ..models import MessageType
from ._ast import Expr, VarType, names_in
from ._binding import MISSING, FieldSource


@dataclass(frozen=True, slots=True)
class Variable:
    """A typed name bound to message fields (the first present source wins)."""

    name: str
    type: VarType
    sources: tuple[FieldSource, ...]
    default: object = MISSING  # a value of ``type``, or MISSING when the field is required

    @property
    def has_default(self) -> bool:
        return self.default is not MISSING

    @property
    def source_text(self) -> str:
        return "|".join(s.text for s in self.sources)


@dataclass(frozen=True, slots=True)
class Assertion:
    """One condition a selected message must satisfy."""

    text: str
    expr: Expr  # typed, Bool
    explain: str | None = None
    names: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Agreement:
    """A limit the constraint mirrors from the data document (checked at load by Z3).

    ``bound="upper"``: the largest value of ``var`` the constraint allows equals the
    number at ``data_path``; ``"lower"``: the smallest does.
    """

    var: str
    data_path: str
    bound: TypingLiteral["upper", "lower"] = "upper"


@dataclass(frozen=True, slots=True)
class Constraint:
    """A named invariant: which messages it selects, what it binds, what must hold."""

    id: str
    description: str
    message_types: frozenset[MessageType]
    variables: Mapping[str, Variable]
    assertions: tuple[Assertion, ...]
    when: Expr | None = None
    when_text: str | None = None
    agreements: tuple[Agreement, ...] = ()
    #: Names the selector reads: a missing one means "not selected", not "bad input".
    selector_names: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        if not isinstance(self.variables, MappingProxyType):
            object.__setattr__(self, "variables", MappingProxyType(dict(self.variables)))
        if self.when is not None and not self.selector_names:
            object.__setattr__(self, "selector_names", names_in(self.when))

    def applies_to(self, message_type: MessageType) -> bool:
        return message_type in self.message_types


class ConstraintSet:
    """The constraints of one constitution, indexed by message type.

    Example::

        constraints = load_constraints(load_bundle("policies"))
        for constraint in constraints.for_message_type(MessageType.COMMAND): ...
    """

    __slots__ = ("_by_id", "_by_type", "constraints", "source")

    def __init__(self, constraints: Sequence[Constraint], source: str = "constraints.yaml") -> None:
        self.constraints = tuple(constraints)
        self.source = source
        self._by_id = {c.id: c for c in self.constraints}
        by_type: dict[MessageType, list[Constraint]] = {}
        for constraint in self.constraints:
            for message_type in MessageType:
                if message_type in constraint.message_types:
                    by_type.setdefault(message_type, []).append(constraint)
        self._by_type = {t: tuple(cs) for t, cs in by_type.items()}

    def __len__(self) -> int:
        return len(self.constraints)

    def __iter__(self) -> Iterator[Constraint]:
        return iter(self.constraints)

    def __getitem__(self, constraint_id: str) -> Constraint:
        return self._by_id[constraint_id]

    def __repr__(self) -> str:
        return f"ConstraintSet({[c.id for c in self.constraints]!r}, source={self.source!r})"

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(c.id for c in self.constraints)

    @property
    def message_types(self) -> frozenset[MessageType]:
        """Types that at least one constraint selects."""
        return frozenset(self._by_type)

    def for_message_type(self, message_type: MessageType) -> tuple[Constraint, ...]:
        """Constraints that may select a message of this type, in declaration order."""
        return self._by_type.get(message_type, ())
