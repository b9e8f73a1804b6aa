"""A hand-written SELECT that DRF's CursorPagination pages as it pages a queryset.

On the hot lists, building and compiling the ORM's query cost more CPU than PostgreSQL
takes to answer it (about 0.8 ms of the owner's agents list's 2.1: `make bench --profile`).
`SqlRows` holds the list's SQL, written once, and gives the paginator the three things it
uses of a queryset: `order_by()` with the pagination's ordering, `filter()` with the
cursor's position (`<column>__lt` / `__gt`), and a slice, which runs the one statement and
returns one dict per row. The cursor, its links and the page are DRF's own, so the
response is the one the queryset gave (tests/test_list_bodies.py holds it to that).

`filter()` also takes equality (`status`, `status__exact`) and `__isnull` on the declared
columns, which is what the lists' FilterSets ask; `core.filters.RowsFilterSet` lets
django-filter apply them. Any other lookup or column is a TypeError: a new filter must be
declared here, not silently ignored.
"""

import datetime as dt
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from django.db import connection, models
from rest_framework.exceptions import NotFound

# Operators `filter()` accepts after `__`, and the SQL each writes.
COMPARISONS = {"exact": "=", "lt": "<", "gt": ">", "lte": "<=", "gte": ">="}


def _datetime(value: Any) -> dt.datetime:
    """A cursor's position of a time column, as DRF wrote it (`str(datetime)`)."""
    if isinstance(value, dt.datetime):
        return value
    try:
        return dt.datetime.fromisoformat(str(value))
    except ValueError:
        raise NotFound("Invalid cursor") from None


@dataclass(frozen=True)
class Column:
    """A column of the rows: the SQL that names it (for ordering and filters), the SQL the
    SELECT reads (`select`, by default the same), how the value read is decoded, and how a
    filter's value (a cursor's position arrives as text) becomes the parameter."""

    sql: str
    select: str = ""
    decode: Callable[[Any], Any] | None = None
    parse: Callable[[Any], Any] | None = None


EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def _from_microseconds(value: int) -> dt.datetime:
    return EPOCH + dt.timedelta(microseconds=value)


def _json(value: str) -> Any:
    # `{}` is most JSON columns' default (a message's metadata): a new dict, without the
    # parser's 0.7 µs.
    return {} if value == "{}" else json.loads(value)


def model_column(model: type[models.Model], name: str, sql: str) -> Column:
    """The column of the model's field `name`, named `sql`, read as cheaply as PostgreSQL
    and psycopg allow and decoded to what the ORM gives, or to its JSON form:

    - a time is read as microseconds since the epoch (a bigint, loaded in C) and made the
      aware UTC datetime the ORM gives: Django's time loader is Python, about 3 µs a value;
    - a UUID is read as its text, the form the response writes (the mapping functions'
      `str()` leaves it as it is); psycopg's UUID and its `str()` cost about 2 µs;
    - JSON is decoded with json.loads, the ORM's decoding without its wrapper; any other
      field with a from_db_value (the encrypted ones) through it.
    """
    model_field = model._meta.get_field(name)
    target = getattr(model_field, "target_field", model_field)  # a foreign key's column
    if isinstance(model_field, models.DateTimeField):
        select = f"(extract(epoch FROM {sql}) * 1000000)::bigint"
        return Column(sql, select=select, decode=_from_microseconds, parse=_datetime)
    if isinstance(target, models.UUIDField):
        return Column(sql, select=f"{sql}::text")
    if isinstance(model_field, models.JSONField) and model_field.decoder is None:
        return Column(sql, decode=_json)
    if hasattr(model_field, "from_db_value"):
        from_db = model_field.from_db_value
        return Column(sql, decode=lambda value: from_db(value, None, connection))
    return Column(sql)


def model_columns(model: type[models.Model], alias: str, *names: str) -> dict[str, Column]:
    """model_column for each name, read from the table aliased `alias`; a name
    `relation__field` reads that field of the related model aliased `relation`."""
    columns = {}
    for name in names:
        relation, _, field_name = name.rpartition("__")
        if relation:
            related = model._meta.get_field(relation).related_model
            column = related._meta.get_field(field_name).column  # type: ignore[union-attr]
            columns[name] = model_column(related, field_name, f"{relation}.{column}")  # type: ignore[arg-type]
        else:
            column = model._meta.get_field(name).column  # type: ignore[union-attr]
            columns[name] = model_column(model, name, f"{alias}.{column}")
    return columns


@dataclass(frozen=True)
class SqlRows:
    """`SELECT <columns> FROM <source> WHERE <where>`, ordered and sliced by the paginator.

    `source` is everything after FROM up to the conditions (joins included); `where` the
    list's own condition, with `parameters` named `%(name)s`. `model` is what django-filter
    checks a FilterSet against."""

    columns: Mapping[str, Column]
    source: str
    where: str = "TRUE"
    parameters: Mapping[str, Any] = field(default_factory=dict)
    model: Any = None
    conditions: tuple[str, ...] = ()
    ordering: tuple[str, ...] = ()

    def all(self) -> "SqlRows":
        return self

    def order_by(self, *names: str) -> "SqlRows":
        for name in names:
            self._column(name.removeprefix("-"))
        return replace(self, ordering=names)

    def filter(self, **lookups: Any) -> "SqlRows":
        conditions, parameters = list(self.conditions), dict(self.parameters)
        for lookup, value in lookups.items():
            name, _, operator = lookup.partition("__")
            column = self._column(name)
            if operator == "isnull" or (operator in ("", "exact") and value is None):
                is_null = value if operator == "isnull" else True
                conditions.append(f"{column.sql} IS {'' if is_null else 'NOT '}NULL")
                continue
            if operator and operator not in COMPARISONS:
                raise TypeError(f"SqlRows.filter: unsupported lookup {lookup!r}")
            key = f"_f{len(parameters)}"
            parameters[key] = column.parse(value) if column.parse else value
            conditions.append(f"{column.sql} {COMPARISONS.get(operator, '=')} %({key})s")
        return replace(self, conditions=tuple(conditions), parameters=parameters)

    def __getitem__(self, window: slice) -> list[dict[str, Any]]:
        if not isinstance(window, slice) or window.step is not None or window.stop is None:
            raise TypeError("SqlRows: only [offset:stop] slices")
        offset = window.start or 0
        cursor_sql = self.sql() + f" LIMIT {int(window.stop - offset)} OFFSET {int(offset)}"
        with connection.cursor() as cursor:
            cursor.execute(cursor_sql, self.parameters)
            rows = cursor.fetchall()
        names = list(self.columns)
        decoders = [(name, c.decode) for name, c in self.columns.items() if c.decode is not None]
        result = []
        for row in rows:
            item = dict(zip(names, row, strict=True))
            for name, decode in decoders:
                value = item[name]
                if value is not None:
                    item[name] = decode(value)
            result.append(item)
        return result

    def sql(self) -> str:
        """The statement without its LIMIT (what a slice runs)."""
        select = ", ".join(column.select or column.sql for column in self.columns.values())
        where = " AND ".join((f"({self.where})", *self.conditions))
        order = ", ".join(
            f"{self._column(name.removeprefix('-')).sql}{' DESC' if name.startswith('-') else ''}"
            for name in self.ordering
        )
        # Columns, source and conditions are the code's constants; values are parameters.
        statement = f"SELECT {select} FROM {self.source} WHERE {where}"  # noqa: S608
        return statement + (f" ORDER BY {order}" if order else "")

    def _column(self, name: str) -> Column:
        try:
            return self.columns[name]
        except KeyError:
            raise TypeError(f"SqlRows: no column {name!r}") from None
