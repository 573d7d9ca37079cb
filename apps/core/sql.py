"""Statements on the hot paths (a chat message, a socket's hello, a routing run), written once
from the models' metadata.

Django compiles a queryset's SQL anew on every evaluation. On the 2-core development machine
that costs 0.65-0.89 ms of CPU for a SELECT of one row by key that SQLite answers in 0.03 ms
(and 0.15 ms through `Manager.raw`), and a customer's message made three such reads in the
sockets' one database thread: with the two inserts, most of the 4.2 ms of CPU it cost there.
`rows_where` writes such a statement from the model's metadata once per shape (which columns,
which conditions, how many values in each IN list, the database's vendor) and runs it on a
cursor; the values go through the converters the ORM's own iterable would apply (found once per
shape, as the statement is) into `Model.from_db`, as the ORM builds instances. `Manager.raw`
did the same but looked the converters and columns up again on every run.
`rows_update` saves a few fields of many rows with one UPDATE run once per row (`executemany`:
one SQLite call, one PostgreSQL pipeline); `bulk_update`'s CASE of one WHEN per row cost 0.29 ms
of ORM work per row (58.7 ms for 200 conversations, against 1.1-1.7 ms this way, in-process).
`rows_insert` is `bulk_create` with its INSERT written once per number of rows, and `row_save`
is `save()` for one row as one UPDATE: a routing run's transaction holds SQLite's one write
lock, which every customer's message waits for; with these it compiles nothing.

Only names from the models' metadata, quoted by the database's own rules, go into a statement;
every value is a parameter, prepared by its field as the ORM prepares it. Kept for the
statements measured to matter on those paths (plain conditions, no joins, models without signal
receivers); everything else stays ORM.
"""

from collections.abc import Iterable, Mapping, Sequence
from functools import lru_cache
from typing import Any, Literal, TypeVar

from django.db import connection
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import Field, Model

M = TypeVar("M", bound=Model)

# (field name, operator, value): "in" takes a collection, the others one value.
Condition = tuple[str, Literal["in", "=", "<>", "<", "<=", ">", ">="], Any]


def rows_where(
    model: type[M],
    where: Sequence[Condition],
    *,
    columns: Sequence[str] = (),
    order_by: str | Sequence[str] = (),
    limit: int | None = None,
    lock: bool = False,
) -> list[M]:
    """The rows of `model` that meet every condition, as instances (`columns`: the fields
    to load, the primary key always among them; empty: all; the others deferred), in
    `order_by`'s order (a field name, "-name" for descending, or several), the first `limit`.

    `lock` locks them for the transaction's writer as `select_for_update(no_key=True)` does
    where the database has row locks (PostgreSQL); SQLite serialises writers by its
    IMMEDIATE transactions instead. An empty IN list matches nothing, without a query.
    """
    if any(op == "in" and not value for _name, op, value in where):
        return []
    shape = tuple((name, op, len(value) if op == "in" else 0) for name, op, value in where)
    order = (order_by,) if isinstance(order_by, str) else tuple(order_by)
    sql = _statement(
        model, tuple(columns), shape, order, limit is not None, lock, connection.vendor
    )
    params: list[Any] = []
    for name, op, value in where:
        field = _column(model, name)
        for item in value if op == "in" else (value,):
            params.append(field.get_db_prep_value(item, connection))
    if limit is not None:
        params.append(int(limit))
    attnames, selected = _loader(model, tuple(columns), connection.vendor)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    ops, instances = connection.ops, []
    for row in rows:
        values = list(row)
        for i, expression, functions in selected:
            for function, of_ops in functions:
                values[i] = (
                    function(ops, values[i], expression, connection)
                    if of_ops
                    else function(values[i], expression, connection)
                )
        instances.append(model.from_db(connection.alias, attnames, values))
    return instances


def rows_update(
    model: type[Model],
    rows: Iterable[tuple[Any, ...]],
    *,
    fields: Sequence[str],
    common: Mapping[str, Any] | None = None,
) -> None:
    """Set `fields` of each row, given as (primary key, a value for each field), and the
    `common` fields to the same values on every row (prepared once)."""
    common = dict(common or {})
    pk = model._meta.pk
    assert pk is not None
    own = [_column(model, name) for name in fields]
    shared = tuple(
        _column(model, name).get_db_prep_value(value, connection) for name, value in common.items()
    )
    quote = connection.ops.quote_name
    assignments = ", ".join(
        f"{quote(_column(model, name).column)} = %s" for name in [*fields, *common]
    )
    sql = (
        f"UPDATE {quote(model._meta.db_table)} SET {assignments} "  # noqa: S608
        f"WHERE {quote(pk.column)} = %s"
    )
    params = [
        (
            *(
                field.get_db_prep_value(value, connection)
                for field, value in zip(own, values, strict=True)
            ),
            *shared,
            pk.get_db_prep_value(key, connection),
        )
        for key, *values in rows
    ]
    if params:
        with connection.cursor() as cursor:
            cursor.executemany(sql, params)


def rows_insert(instances: Sequence[M]) -> list[M]:
    """Insert new instances of one model as `bulk_create` does (every field's `pre_save` for an
    addition: `auto_now_add` timestamps; an auto-incremented key read back into each instance)
    with a statement written once per number of rows (on PostgreSQL, several rows go as one
    array a column, bulk_create's form there). No signal is sent, as with bulk_create;
    the model has no parent model; related objects are saved (their keys are taken as set)."""
    if not instances:
        return []
    model = type(instances[0])
    assert all(type(instance) is model for instance in instances)
    assert not model._meta.parents, f"{model.__name__} has a parent model"
    fields, returned = _inserted(model)
    batch = connection.ops.bulk_batch_size(fields, instances) or len(instances)
    for start in range(0, len(instances), batch):
        chunk = instances[start : start + batch]
        for instance in chunk:  # a related object saved since it was set: its key, as bulk_create
            instance._prepare_related_fields_for_save(operation_name="rows_insert")  # type: ignore[attr-defined]
        values = [
            [field.get_db_prep_save(field.pre_save(instance, True), connection) for field in fields]
            for instance in chunk
        ]
        arrays = len(chunk) > 1 and connection.vendor == "postgresql"
        params: list[Any] = (
            [list(column) for column in zip(*values, strict=True)]
            if arrays
            else [value for row in values for value in row]
        )
        sql = _insert_statement(model, 0 if arrays else len(chunk), connection.vendor)
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            keys = cursor.fetchall() if returned is not None else []
        if returned is not None:
            for instance, (key,) in zip(chunk, keys, strict=True):
                setattr(instance, returned.attname, key)
        for instance in chunk:
            instance._state.adding, instance._state.db = False, connection.alias
    return list(instances)


def _inserted(model: type[Model]) -> "tuple[list[Field[Any, Any]], Field[Any, Any] | None]":
    """The columns an insert names, and the auto-incremented key it reads back (None when the
    key has a value of its own, a UUID say)."""
    pk = model._meta.pk
    assert pk is not None
    auto = pk if getattr(pk, "db_returning", False) else None
    return [f for f in model._meta.concrete_fields if f is not auto], auto


@lru_cache(maxsize=512)
def _insert_statement(model: type[Model], rows: int, vendor: str) -> str:
    return insert_statement(model, rows, db=connection)


def insert_statement(model: type[Model], rows: int, *, db: BaseDatabaseWrapper) -> str:
    """The INSERT `rows_insert` runs for `rows` rows on `db`'s database; 0: one array a column
    (PostgreSQL's `UNNEST`, bulk_create's form there for several rows: one statement, planned
    once, for any number of rows), its parameters the columns' values."""
    fields, returned = _inserted(model)
    quote = db.ops.quote_name
    if rows:
        source = "VALUES " + ", ".join(["(" + ", ".join(["%s"] * len(fields)) + ")"] * rows)
    else:
        # As bulk_create: the column's type without its length (varchar[], not varchar(50)[]).
        types = [str(field.db_type(db)).split("(")[0] for field in fields]
        arrays = ", ".join(f"(%s)::{kind}[]" for kind in types)
        source = f"SELECT * FROM UNNEST({arrays})"  # noqa: S608 (types from the model's fields)
    sql = (
        f"INSERT INTO {quote(model._meta.db_table)} "
        f"({', '.join(quote(field.column) for field in fields)}) {source}"
    )
    if returned is not None:
        assert db.features.can_return_rows_from_bulk_insert, db.vendor
        sql += f" RETURNING {quote(returned.column)}"
    return sql


def row_save(instance: Model, *, fields: Sequence[str] = ()) -> None:
    """Save `instance`'s `fields` (empty: every field but the primary key) with one UPDATE, the
    values as `save(update_fields=...)` writes them (a field's `pre_save`: an `auto_now`
    timestamp takes the time now, on the instance too). For a row the caller holds (it is not
    checked to exist) of a model no `pre_save`/`post_save` receiver listens to: none is sent."""
    meta = instance._meta
    chosen = (
        [_column(type(instance), name) for name in fields]
        if fields
        else [field for field in meta.concrete_fields if not field.primary_key]
    )
    values = tuple(field.pre_save(instance, False) for field in chosen)
    rows_update(type(instance), [(instance.pk, *values)], fields=[f.name for f in chosen])


Shape = tuple[tuple[str, str, int], ...]  # (field name, operator, how many values)


@lru_cache(maxsize=512)
def _statement(
    model: type[Model],
    columns: tuple[str, ...],
    shape: Shape,
    order_by: tuple[str, ...],
    limited: bool,
    lock: bool,
    vendor: str,  # part of the key: the statement is the vendor's
) -> str:
    return statement(
        model, columns, shape, order_by=order_by, limited=limited, lock=lock, db=connection
    )


# A converter, and whether it is a method of the database's operations (called with the
# calling thread's: a cached bound method would keep the first thread's connection open).
Converter = tuple[Any, bool]


@lru_cache(maxsize=512)
def _loader(
    model: type[Model], columns: tuple[str, ...], vendor: str
) -> tuple[list[str], list[tuple[int, Any, tuple[Converter, ...]]]]:
    """How a row of that shape becomes an instance, as the ORM's iterable does it: the fields'
    attribute names, and for each column that needs them its expression and converters (the
    database's: a timestamp, a UUID on SQLite; the field's: a JSON document)."""
    fields, selected = _selected(model, columns), []
    for i, field in enumerate(fields):
        expression = field.get_col(model._meta.db_table)
        functions: list[Converter] = [
            (function.__func__, True)
            if getattr(function, "__self__", None) is connection.ops
            else (function, False)
            for function in connection.ops.get_db_converters(expression)
        ]
        # django-stubs does not declare Field.get_db_converters (Django has it since 1.8).
        functions += [(f, False) for f in field.get_db_converters(connection)]  # type: ignore[attr-defined]
        if functions:
            selected.append((i, expression, tuple(functions)))
    return [field.attname for field in fields], selected


def _selected(model: type[Model], columns: Sequence[str]) -> "list[Field[Any, Any]]":
    """The columns a statement selects, the primary key always among them, in the model's own
    order (`Model.from_db` takes a subset of its fields in that order)."""
    pk = model._meta.pk
    assert pk is not None
    wanted = {_column(model, name) for name in columns} | {pk} if columns else None
    return [f for f in model._meta.concrete_fields if wanted is None or f in wanted]


def statement(
    model: type[Model],
    columns: Sequence[str],
    shape: Shape,
    *,
    order_by: str | Sequence[str] | None = (),
    lock: bool,
    db: BaseDatabaseWrapper,
    limited: bool = False,
) -> str:
    """The SELECT `rows_where` runs for that shape on `db`'s database (`limited`: its last
    parameter is a LIMIT)."""
    meta, quote = model._meta, db.ops.quote_name
    fields = _selected(model, columns)
    conditions = []
    for name, op, count in shape:
        column = quote(_column(model, name).column)
        if op == "in":
            conditions.append(f"{column} IN ({', '.join(['%s'] * count)})")
        else:
            conditions.append(f"{column} {op} %s")
    sql = (
        f"SELECT {', '.join(quote(field.column) for field in fields)} "  # noqa: S608
        f"FROM {quote(meta.db_table)} WHERE {' AND '.join(conditions)}"
    )
    order = [order_by] if isinstance(order_by, str) else list(order_by or ())
    if order:
        terms = [
            f"{quote(_column(model, name.lstrip('-')).column)}"
            + (" DESC" if name.startswith("-") else "")
            for name in order
        ]
        sql += f" ORDER BY {', '.join(terms)}"
    if limited:
        sql += " LIMIT %s"
    if lock and db.features.has_select_for_update:
        sql += " " + db.ops.for_update_sql(no_key=db.features.has_select_for_no_key_update)
    return sql


def _column(model: type[Model], name: str) -> "Field[Any, Any]":
    field = model._meta.get_field(name)
    assert isinstance(field, Field), f"{model.__name__}.{name} is not a column"
    return field
