"""One-row INSERT and conditional UPDATE as plain SQL built from the model: the issuance hot path's writes.

Why: issuance writes three rows per certificate (the record, its store, the pre-signed OCSP response),
and for such a write the ORM's query building costs as much as the statement (on SQLite: `create()`
~0.31 ms, this ~0.22 ms, the bare statement ~0.10 ms; an UPDATE ~0.35 against ~0.12 ms). On PostgreSQL
each round trip also costs the server and the kernel, so `row_insert_unless` and `row_update_inserting`
make a check-and-insert and an update-and-insert one statement each, and prepare them: the server
parses and plans each once per connection, not once per certificate. Those two, the pipeline's, go
through libpq's asynchronous calls (`_execute_meanwhile`: the record's answer is read after the lint);
the rest, inside a transaction or alone (and all of them while an `execute_wrapper` hook is installed),
through one kept cursor (`_cursor`). Names come from the
model and values go through the model fields' own preparation (`pre_save`, `get_db_prep_save`), as
the ORM's insert and update compilers do; each statement is built once per (database vendor, model,
field names). Not a general ORM: no expressions, no signals, only what the pipeline needs."""

from __future__ import annotations

import functools
import logging
import select
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from django.db import models, transaction
from django.utils import timezone

T = TypeVar("T")

# Where Django's cursors log each statement (DEBUG), and so the statements sent ahead too.
backends_logger = logging.getLogger("django.db.backends")

# Built once per (database vendor, model[, field names]): the SQL and the fields whose values it binds, in order.
_INSERTS: dict[tuple[str, type[models.Model]], tuple[str, str, tuple[models.Field, ...]]] = {}
_UPDATES: dict[tuple[str, type[models.Model], tuple[str, ...]], tuple[str, tuple[models.Field, ...]]] = {}


def _concrete(model: type[models.Model], names: tuple[str, ...]) -> tuple[models.Field, ...]:
    fields = tuple(model._meta.get_field(name) for name in names)
    if not all(isinstance(field, models.Field) and field.concrete for field in fields):
        raise TypeError(f"not concrete fields of {model.__name__}: {sorted(names)}")
    return fields  # type: ignore[return-value]


def _insert_statement(connection: Any, model: type[models.Model]) -> tuple[str, str, tuple[models.Field, ...]]:
    """(INSERT head, VALUES placeholders, fields bound): the head and placeholders apart, so the
    PostgreSQL store can insert from a SELECT of the same placeholders."""
    key = (connection.vendor, model)
    statement = _INSERTS.get(key)
    if statement is None:
        meta = model._meta
        # The primary key is left to the database when it generates it (an auto field).
        fields = tuple(f for f in meta.concrete_fields if f is not meta.pk or not getattr(f, "db_returning", False))
        quote = connection.ops.quote_name
        head = f"INSERT INTO {quote(meta.db_table)} ({', '.join(quote(f.column) for f in fields)})"
        statement = _INSERTS[key] = (head, ", ".join(["%s"] * len(fields)), fields)
    return statement


def _insert_params(connection: Any, instance: models.Model, fields: tuple[models.Field, ...]) -> list[Any]:
    return [field.get_db_prep_save(field.pre_save(instance, True), connection) for field in fields]


def _one_statement(connection: Any) -> bool:
    """Whether a combined write can be one statement sent ahead (`_execute_meanwhile`): PostgreSQL in
    autocommit, with no `execute_wrapper` hook installed. In a transaction two statements cost no BEGIN
    and COMMIT round trips of their own, and libpq's calls would bypass the BEGIN psycopg sends before a
    transaction's first statement. A hook (instrumentation, a fault test) wraps a cursor's execute,
    which a statement sent ahead never calls: with one installed the kept cursor runs the statements."""
    return (
        connection.vendor == "postgresql"
        and not connection.in_atomic_block
        and connection.get_autocommit()
        and not connection.execute_wrappers
    )


def _cursor(connection: Any) -> Any:
    """A cursor for the statements not sent ahead (`_execute_meanwhile` sends the pipeline's two, in
    autocommit). On PostgreSQL it binds the values server-side and prepares each
    statement on first use: the same few statements run for every certificate, and parsing and
    planning them was about half the server's CPU for an issuance's two writes (1.3 → 0.7 ms). Django's
    own cursors bind client-side and never prepare; they serve everything else, and SQLite. psycopg
    prepares nothing on a connection whose `prepare_threshold` is None (DATABASE_PREPARED_STATEMENTS=false,
    for a pooler that cannot keep prepared statements).

    One such cursor is kept per database connection and used again: a new psycopg cursor for each
    statement looked up every parameter's adapter afresh (0.15-0.3 ms a certificate, measured in the
    issuance pipeline). Django's connections are per thread, and so is the kept cursor."""
    if connection.vendor != "postgresql":
        return connection.cursor()
    connection.close_if_health_check_failed()
    connection.ensure_connection()
    raw = connection.connection
    kept = getattr(connection, "_certdesk_rows_cursor", None)
    if kept is None or kept.connection is not raw:
        kept = connection._certdesk_rows_cursor = _prepared_cursor_class()(raw)
    with connection.wrap_database_errors:
        return connection._prepare_cursor(kept)


@functools.cache
def _prepared_cursor_class() -> type:
    """Django's server-binding cursor for psycopg 3, preparing every statement (imported when first
    needed: only PostgreSQL deployments load the driver)."""
    from django.db.backends.postgresql.base import ServerBindingCursor  # type: ignore[attr-defined]

    class PreparedCursor(ServerBindingCursor):
        def execute(self, query: Any, params: Any = None, **kwargs: Any) -> Any:
            return super().execute(query, params, prepare=True, **kwargs)

        def _convert_query(self, query: Any, params: Any = None) -> Any:
            # psycopg leaves `_query` unset when it runs a prepared statement, and Django's query log
            # (DEBUG, CaptureQueriesContext) reads the SQL from there: keep it, with its $n placeholders.
            converted = super()._convert_query(query, params)
            self._query = converted
            return converted

        def close(self) -> None:
            # Kept for the connection's next statement (`_cursor`): `with` blocks close their cursor
            # when they end. A psycopg cursor holds nothing on the server; the connection's close ends it.
            pass

    return PreparedCursor


def _execute_meanwhile(connection: Any, sql: str, params: list[Any], meanwhile: Callable[[], T]) -> tuple[Any, T]:
    """Send one statement (PostgreSQL), run `meanwhile()`, then read the statement's first row (None: no row).

    Why: the process that waits for the database's answer blocks, and on a VM whose idle vCPU halts
    at once the work that follows a block runs slower (docs/pki.md). Work that does not need the
    answer, done while the statement travels and commits, hides the round trip: when `meanwhile`
    returns, the answer has usually arrived and is read without blocking.

    libpq's asynchronous calls (psycopg's documented `pq` layer), with what `_ahead` keeps per
    connection; only in autocommit and without hooks (`_one_statement`). The answer is always read
    before returning, also when `meanwhile` raises, so the connection is free again. Logged as a
    cursor's statement is when queries are logged (DEBUG, CaptureQueriesContext): in the query log and
    to the `django.db.backends` debug logger, with the time of sending and reading, not `meanwhile`'s."""
    from psycopg import errors, pq
    from psycopg.adapt import PyFormat

    connection.close_if_health_check_failed()
    connection.ensure_connection()
    connection.validate_thread_sharing()
    ahead = _ahead(connection)
    pgconn = ahead.raw.pgconn
    numbered = _numbered(sql)
    started = time.perf_counter()
    with connection.wrap_database_errors:
        values = ahead.adapter.dump_sequence(params, [PyFormat.AUTO] * len(params))
        types, formats = ahead.adapter.types, ahead.adapter.formats
        name = ahead.prepared_name(numbered, types)
        if name is None:
            pgconn.send_query_params(numbered.encode(), values, types, formats)
        else:
            pgconn.send_query_prepared(name, values, formats)
        while pgconn.flush():  # 1: more to send than the socket took
            _wait(pgconn.socket, select.POLLIN | select.POLLOUT)
            pgconn.consume_input()
        elapsed = time.perf_counter() - started
        try:
            done = meanwhile()
        finally:
            started = time.perf_counter()
            results = _results(pgconn)
            elapsed += time.perf_counter() - started
            if connection.queries_logged:
                _logged(connection, numbered, params, elapsed)
        (result,) = results
        if result.status != pq.ExecStatus.TUPLES_OK:
            raise errors.error_from_result(result, encoding=ahead.raw.info.encoding)
        if not result.ntuples:
            return None, done
        ahead.adapter.set_pgresult(result)
        return ahead.adapter.load_row(0, tuple), done


def _logged(connection: Any, sql: str, params: list[Any], duration: float) -> None:
    """What Django's debug cursor records of a statement (`CursorDebugWrapper.debug_sql`)."""
    connection.queries_log.append({"sql": sql, "time": f"{duration:.3f}"})
    backends_logger.debug(
        "(%.3f) %s; args=%s; alias=%s",
        duration,
        sql,
        params,
        connection.alias,
        extra={"duration": duration, "sql": sql, "params": params, "alias": connection.alias},
    )


def _nothing() -> None:
    return None


@functools.lru_cache(maxsize=64)
def _numbered(sql: str) -> str:
    """`%s` placeholders as libpq's `$1`, `$2`, … (the statements here have no other `%`). Remembered:
    the same few statements run for every certificate."""
    parts = sql.split("%s")
    if any("%" in part for part in parts):
        raise ValueError(f"only %s placeholders are supported: {sql}")
    return "".join(f"{part}${n}" for n, part in enumerate(parts[:-1], 1)) + parts[-1]


@dataclass
class _Ahead:
    """What `_execute_meanwhile` keeps per psycopg connection: an adapter (psycopg's Transformer, as a
    cursor has one: its dumpers are looked up once, which is why `_cursor` keeps its cursor) and the
    names of the statements prepared on the connection."""

    raw: Any
    adapter: Any
    prepared: dict[tuple[str, tuple[int, ...]], bytes]

    def prepared_name(self, sql: str, types: Any) -> bytes | None:
        """`sql`'s name, prepared for these parameter types the first time (parsed and planned once per
        connection, as `_cursor`'s statements); None when the connection prepares nothing
        (`prepare_threshold` None: DATABASE_PREPARED_STATEMENTS=false)."""
        if self.raw.prepare_threshold is None:
            return None
        key = (sql, tuple(types))
        name = self.prepared.get(key)
        if name is None:
            from psycopg import errors, pq

            name = f"certdesk_{len(self.prepared)}".encode()
            result = self.raw.pgconn.prepare(name, sql.encode(), key[1])
            if result.status != pq.ExecStatus.COMMAND_OK:
                raise errors.error_from_result(result, encoding=self.raw.info.encoding)
            self.prepared[key] = name
        return name


def _ahead(connection: Any) -> _Ahead:
    """The connection's `_Ahead`, new with each new psycopg connection (kept on Django's connection,
    as `_cursor`'s cursor is)."""
    from psycopg.adapt import Transformer

    raw = connection.connection
    kept = getattr(connection, "_certdesk_ahead", None)
    if kept is None or kept.raw is not raw:
        kept = connection._certdesk_ahead = _Ahead(raw=raw, adapter=Transformer.from_context(raw), prepared={})
    return kept


def _results(pgconn: Any) -> list[Any]:
    """Every result of the statement sent, waiting for the socket only while libpq is busy."""
    results: list[Any] = []
    while True:
        pgconn.consume_input()
        while pgconn.is_busy():
            _wait(pgconn.socket, select.POLLIN)
            pgconn.consume_input()
        result = pgconn.get_result()
        if result is None:
            return results
        results.append(result)


def _wait(fd: int, events: int) -> None:
    poller = select.poll()
    poller.register(fd, events)
    poller.poll()


def _inserted(connection: Any, instance: models.Model, pk: Any) -> None:
    instance.pk = pk
    instance._state.adding = False
    instance._state.db = connection.alias


@dataclass(frozen=True)
class Lookup:
    """A SELECT of one column, with its parameters: the condition of `row_insert_unless`."""

    sql: str
    params: tuple[Any, ...]


def row_insert(instance: models.Model) -> None:
    """INSERT an unsaved instance and set its primary key (as `save()` would, minus signals)."""
    model = type(instance)
    connection = transaction.get_connection()
    meta = model._meta
    head, placeholders, fields = _insert_statement(connection, model)
    sql = f"{head} VALUES ({placeholders})"
    returning = connection.features.can_return_columns_from_insert
    if returning:
        sql += f" RETURNING {connection.ops.quote_name(meta.pk.column)}"
    with _cursor(connection) as cursor:
        cursor.execute(sql, _insert_params(connection, instance, fields))
        pk = cursor.fetchone()[0] if returning else connection.ops.last_insert_id(cursor, meta.db_table, meta.pk.column)
    _inserted(connection, instance, pk)


def row_insert_unless(instance: models.Model, *, lookup: Lookup | None, meanwhile: Callable[[], T]) -> tuple[Any, T]:
    """INSERT `instance` unless `lookup` finds a row, and run `meanwhile()` while the statement is on
    its way. Returns (the first value the lookup found, nothing inserted; or None, inserted and primary
    key set) and what `meanwhile` returned. `meanwhile` must not use the database.

    Outside a transaction on PostgreSQL the check and the INSERT are one statement, so the check costs
    no round trip of its own, and `meanwhile` runs between sending it and reading its answer
    (`_execute_meanwhile`): the record INSERT of issuance, with the public-key check, sent before the
    lint. Elsewhere, the SELECT, the INSERT, then `meanwhile`.
    """
    connection = transaction.get_connection()
    if not _one_statement(connection):
        found = None
        if lookup is not None:
            with _cursor(connection) as cursor:
                cursor.execute(lookup.sql, lookup.params)
                found = cursor.fetchone()
        if found is None:
            row_insert(instance)
        return (found[0] if found is not None else None), meanwhile()
    head, placeholders, fields = _insert_statement(connection, type(instance))
    pk = connection.ops.quote_name(type(instance)._meta.pk.column)
    params = _insert_params(connection, instance, fields)
    if lookup is None:
        sql = f"{head} VALUES ({placeholders}) RETURNING NULL, {pk}"
    else:
        sql = (
            f"WITH found AS ({lookup.sql}), "  # noqa: S608 - names from the model, values bound
            f"inserted AS ({head} SELECT {placeholders} WHERE NOT EXISTS (SELECT 1 FROM found) RETURNING {pk}) "
            "SELECT (SELECT * FROM found LIMIT 1), (SELECT * FROM inserted)"
        )
        params = [*lookup.params, *params]
    row, done = _execute_meanwhile(connection, sql, params, meanwhile)
    found, inserted = row
    if inserted is None:
        return found, done
    _inserted(connection, instance, inserted)
    return None, done


def _update_statement(
    connection: Any, model: type[models.Model], *, pk: Any, values: dict[str, Any], where: dict[str, Any]
) -> tuple[str, list[Any]]:
    """The conditional UPDATE and its parameters (SET values, then the primary key, then `where`)."""
    key = (connection.vendor, model, (*values, "", *where))
    statement = _UPDATES.get(key)
    if statement is None:
        meta = model._meta
        set_fields = _concrete(model, tuple(values))
        where_fields = _concrete(model, tuple(where))
        quote = connection.ops.quote_name
        assignments = ", ".join(f"{quote(f.column)} = %s" for f in set_fields)
        conditions = " AND ".join(f"{quote(f.column)} = %s" for f in (meta.pk, *where_fields))
        sql = f"UPDATE {quote(meta.db_table)} SET {assignments} WHERE {conditions}"  # noqa: S608 - names from the model
        statement = _UPDATES[key] = (sql, (*set_fields, meta.pk, *where_fields))
    sql, fields = statement
    bound = [*values.values(), pk, *where.values()]
    return sql, [field.get_db_prep_save(value, connection) for field, value in zip(fields, bound, strict=True)]


def _stamped(model: type[models.Model], values: dict[str, Any]) -> dict[str, Any]:
    """`values` plus the model's auto_now fields (unlike `QuerySet.update`: a row should say when it last changed)."""
    stamps = {f.name: timezone.now() for f in model._meta.concrete_fields if getattr(f, "auto_now", False)}
    return {**values, **{name: now for name, now in stamps.items() if name not in values}}


def row_update(model: type[models.Model], *, pk: Any, where: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    """UPDATE one row by primary key where its `where` fields still hold the given values.

    Sets the model's auto_now fields too. Returns the values written, by field name, or {} when no row matched.
    """
    connection = transaction.get_connection()
    values = _stamped(model, values)
    sql, params = _update_statement(connection, model, pk=pk, values=values, where=where)
    with _cursor(connection) as cursor:
        cursor.execute(sql, params)
        return values if cursor.rowcount == 1 else {}


def row_update_inserting(
    model: type[models.Model], *, pk: Any, where: dict[str, Any], values: dict[str, Any], insert: models.Model
) -> dict[str, Any]:
    """`row_update`, and INSERT `insert` in the same transaction only if the update matched.

    Outside a transaction on PostgreSQL this is one statement (an UPDATE in a WITH clause feeding an
    INSERT … SELECT), so one round trip and one commit instead of BEGIN, UPDATE, INSERT, COMMIT:
    the store step of issuance, per certificate (through `_execute_meanwhile`, with nothing to do
    meanwhile: libpq's calls cost ~0.1 ms less client CPU than the kept cursor's). Elsewhere, the two statements in one transaction.
    Returns the values written, or {} (and nothing inserted) when no row matched.
    """
    connection = transaction.get_connection()
    if not _one_statement(connection):
        with transaction.atomic():
            written = row_update(model, pk=pk, where=where, values=values)
            if written:
                row_insert(insert)
            return written
    values = _stamped(model, values)
    update_sql, params = _update_statement(connection, model, pk=pk, values=values, where=where)
    head, placeholders, insert_fields = _insert_statement(connection, type(insert))
    quote = connection.ops.quote_name
    sql = (
        f"WITH updated AS ({update_sql} RETURNING 1) {head} SELECT {placeholders} FROM updated "  # noqa: S608 - names from the models
        f"RETURNING {quote(type(insert)._meta.pk.column)}"
    )
    params += _insert_params(connection, insert, insert_fields)
    row, _ = _execute_meanwhile(connection, sql, params, _nothing)
    if row is None:
        return {}
    _inserted(connection, insert, row[0])
    return values
