"""Sealed ORM attributes: a plaintext attribute over a column that stores ciphertext.

A model declares, beside its mapped ciphertext column, a `Sealed` attribute:

    name_sealed: Mapped[str] = mapped_column(SealedText)
    name = Sealed[str]("name_sealed")

Setting `member.name` keeps the plaintext in memory and marks the column for sealing; the
flush seals it with the session's keyring (`session.info`), bound to the table, the column
and the row (`SEALED_ROW`, the columns that name the row, all known before the insert).
Reading `member.name` of a loaded row opens the stored value on first access. Core
statements (the hot path) seal their values with `sealed_values`. The `SealedText` column
type refuses anything that is not a sealed value, so plaintext never reaches the column
by mistake.
"""

from collections.abc import Callable, Mapping
from decimal import Decimal
from functools import cache
from typing import Any, ClassVar, Generic, Literal, Self, TypeVar, overload

from sqlalchemy import Text, TypeDecorator, event
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Mapper, QueryContext, Session, object_session

from schemas.money import format_money
from service.crypto.keyring import FORMAT, Keyring, KeyringError

T = TypeVar("T")
SESSION_KEYRING = "hedui.keyring"
_KEYRING = "_hedui_keyring"
_PLAIN = "_hedui_plain"


class Pending:
    """A plaintext assigned to a sealed attribute, not sealed yet (sealed at flush)."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def __repr__(self) -> str:
        return "Pending(<hidden>)"


class SealedText(TypeDecorator[str]):
    """Text holding sealed values only: anything else is refused before it is sent."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        if value is None:
            return None
        if not isinstance(value, str) or not value.startswith(FORMAT + ":"):
            raise KeyringError("refusing to store an unsealed value in a sealed column")
        return value


def keyring_of(session: Session | Any) -> Keyring:
    """The keyring a session was made with (`create_session_factory(engine, keyring)`)."""
    keyring = session.info.get(SESSION_KEYRING)
    if keyring is None:
        raise KeyringError("this session has no keyring: create_session_factory(engine, keyring)")
    return keyring


class Sealed(Generic[T]):
    """A plaintext attribute over the ciphertext column `column` (see module docstring).

    `codec` "text" stores a str, "json" any JSON value, "money" a `Decimal` kept to two
    places (as the `Numeric(16, 2)` column it replaces did); `blind` names a column that
    keeps the blind index of the (ID-number) value, for equality lookups; `default` makes
    the value of a row inserted without one (as a column default would).
    """

    def __init__(
        self,
        column: str,
        codec: Literal["text", "json", "money"] = "text",
        *,
        blind: str | None = None,
        default: Callable[[], T] | None = None,
    ) -> None:
        self.column = column
        self.codec = codec
        self.blind = blind
        self.default = default
        self.name = column

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    @overload
    def __get__(self, obj: None, owner: type) -> Self: ...
    @overload
    def __get__(self, obj: object, owner: type) -> T: ...
    def __get__(self, obj: object | None, owner: type) -> "Self | T":
        if obj is None:
            return self
        plain: dict[str, Any] = obj.__dict__.setdefault(_PLAIN, {})
        if self.name in plain:
            return plain[self.name]
        token = getattr(obj, self.column)
        if token is None:
            return None  # type: ignore[return-value]
        if isinstance(token, Pending):
            return token.value
        keyring: Keyring | None = obj.__dict__.get(_KEYRING)
        if keyring is None:
            raise KeyringError(f"{type(obj).__name__}.{self.name}: loaded without a keyring")
        value = self.open(keyring, token, row_key(obj))
        plain[self.name] = value
        return value

    def __set__(self, obj: object, value: T) -> None:
        obj.__dict__.setdefault(_PLAIN, {})[self.name] = value
        setattr(obj, self.column, None if value is None else Pending(value))

    def table(self, obj_or_cls: object) -> str:
        cls = obj_or_cls if isinstance(obj_or_cls, type) else type(obj_or_cls)
        return str(cls.__tablename__)  # type: ignore[attr-defined]

    def seal(self, keyring: Keyring, table: str, row: str, value: Any) -> str:
        if self.codec == "json":
            return keyring.seal_json(value, table=table, column=self.name, row=row)
        if self.codec == "money":
            return keyring.seal_text(format_money(value), table=table, column=self.name, row=row)
        return keyring.seal_text(value, table=table, column=self.name, row=row)

    def open(self, keyring: Keyring, token: str, row: str, *, table: str | None = None) -> Any:
        where = table or self._owner_table
        if self.codec == "json":
            return keyring.open_json(token, table=where, column=self.name, row=row)
        text = keyring.open_text(token, table=where, column=self.name, row=row)
        return Decimal(text) if self.codec == "money" else text

    _owner_table: str = ""


class SealedModel:
    """Mixin of models with sealed attributes: `SEALED_ROW` names the columns whose values
    identify a row for the associated data (known before the insert: no autoincrement)."""

    SEALED_ROW: ClassVar[tuple[str, ...]] = ("id",)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for value in vars(cls).values():
            if isinstance(value, Sealed):
                value._owner_table = cls.__dict__.get("__tablename__", "")


def sealed_fields(cls: type) -> list[Sealed[Any]]:
    return list(_sealed_fields(cls))


@cache
def _sealed_fields(cls: type) -> tuple[Sealed[Any], ...]:
    """A class's sealed attributes, looked up once (every Core statement that writes a
    sealed column asks, several times per verification)."""
    return tuple(value for value in vars(cls).values() if isinstance(value, Sealed))


@cache
def _fields_by_name(cls: type) -> dict[str, Sealed[Any]]:
    return {field.name: field for field in _sealed_fields(cls)}


def row_key(obj: object) -> str:
    return row_key_of(type(obj), {name: getattr(obj, name) for name in type(obj).SEALED_ROW})  # type: ignore[attr-defined]


def row_key_of(cls: type, values: Mapping[str, Any]) -> str:
    parts = [values[name] for name in cls.SEALED_ROW]  # type: ignore[attr-defined]
    if any(part is None for part in parts):
        raise KeyringError(f"{cls.__name__}: the row is not identified before sealing")
    return "/".join(str(part) for part in parts)


def sealed_values(
    cls: type, keyring: Keyring, row: Mapping[str, Any], **plain: Any
) -> dict[str, Any]:
    """Column values for a Core INSERT or UPDATE of `cls`: each plaintext sealed into its
    column (and its blind index), bound to the row that `row` identifies."""
    fields = _fields_by_name(cls)
    key = row_key_of(cls, row)
    table = str(cls.__tablename__)  # type: ignore[attr-defined]
    values: dict[str, Any] = {}
    for name, value in plain.items():
        field = fields[name]
        values[field.column] = None if value is None else field.seal(keyring, table, key, value)
        if field.blind is not None:
            values[field.blind] = None if value is None else keyring.blind(value)
    return values


def seal_in(
    cls: type, keyring: Keyring, row: Mapping[str, Any], values: Mapping[str, Any]
) -> dict[str, Any]:
    """`values` (column values for a Core statement on `cls`) with every sealed attribute's
    plaintext replaced by its sealed column (and blind index)."""
    names = _fields_by_name(cls)
    plain = {name: value for name, value in values.items() if name in names}
    kept = {name: value for name, value in values.items() if name not in names}
    return kept | sealed_values(cls, keyring, row, **plain) if plain else kept


def _adopt(target: object, session: Session | None) -> None:
    target.__dict__[_PLAIN] = {}
    if session is not None and SESSION_KEYRING in session.info:
        target.__dict__[_KEYRING] = session.info[SESSION_KEYRING]


def _loaded(target: object, context: QueryContext) -> None:
    _adopt(target, context.session)


def _refreshed(target: object, context: QueryContext | None, _attrs: Any) -> None:
    # An ORM UPDATE that synchronises the session refreshes without a query context.
    _adopt(target, context.session if context is not None else object_session(target))


def _seal_new(mapper: Mapper[Any], connection: Any, target: object) -> None:
    for field in sealed_fields(type(target)):
        if field.default is not None and target.__dict__.get(field.column) is None:
            field.__set__(target, field.default())
    _seal_pending(mapper, connection, target)


def _seal_pending(_mapper: Mapper[Any], _connection: Any, target: object) -> None:
    fields = sealed_fields(type(target))
    pending = [field for field in fields if isinstance(target.__dict__.get(field.column), Pending)]
    if not pending:
        return
    session = object_session(target)
    keyring = keyring_of(session) if session is not None else None
    if keyring is None:
        raise KeyringError(f"{type(target).__name__}: sealing needs a session with a keyring")
    target.__dict__[_KEYRING] = keyring
    table = str(type(target).__tablename__)  # type: ignore[attr-defined]
    _identify(_mapper, target)
    key = row_key(target)
    for field in pending:
        value = target.__dict__[field.column].value
        setattr(target, field.column, field.seal(keyring, table, key, value))
        if field.blind is not None:
            setattr(target, field.blind, keyring.blind(value))


def _identify(mapper: Mapper[Any], target: object) -> None:
    """Give the row its client-side default id now (e.g. a UUID): the associated data of
    its sealed values names it, and defaults are otherwise applied after this point."""
    for name in type(target).SEALED_ROW:  # type: ignore[attr-defined]
        if getattr(target, name) is not None:
            continue
        default = mapper.columns[name].default
        if default is not None and default.is_callable:
            setattr(target, name, default.arg(None))


def install(base: type) -> None:
    """Seal and open the sealed attributes of every model derived from `base`."""
    event.listen(base, "load", _loaded, propagate=True)
    event.listen(base, "refresh", _refreshed, propagate=True)
    event.listen(base, "before_insert", _seal_new, propagate=True)
    event.listen(base, "before_update", _seal_pending, propagate=True)
