"""Plain SQL for the reporter's write batches: multi-row inserts into the hot tables (RunEvent, LogEntry,
FoldMetric) and one statement that claims a batch's seqs and writes the run's fields.

`bulk_create` compiles SQL for every field of every row (get_db_prep_save, placeholders, the debug log): a
profile of a run logging as fast as it can spent three quarters of the writer thread there. These rows are
plain (no signals, no defaults to compute, no primary key wanted back), so the reporter adapts each value
once, by column kind, and hands the driver the whole batch at once: one prepared statement run for every row
on SQLite (executemany loops in C); on PostgreSQL one multi-row INSERT for a small batch (one round trip) and
COPY for a big one (psycopg's executemany is still one statement per row).

On PostgreSQL the reporter goes further: `claim_and_insert` claims a batch's seqs, writes the run's fields and
inserts every row in one statement, so a write batch is one round trip with its commit. On a run of short fits
or a quiet one the writer is idle between events, so nearly every event is a write of its own: five round trips
each (BEGIN, the claim, two INSERTs, COMMIT), the first after an idle gap. One statement took the writer's CPU
per write from 1.06 to 0.76 ms (short fits) and a watcher's wait from the reporter call by 0.3 to 0.6 ms.
"""

import functools

from django.conf import settings
from django.db import connection
from . import library_internals
from .events import to_json

# Rows up to which PostgreSQL gets one INSERT ... VALUES (...), (...); COPY costs two round trips.
INSERT_ROWS_MAX = 200


def adapt_json(value):
    """A JSONField value (one without an encoder of its own) as its JSON text, which both drivers take as it
    is: SQLite stores it, and PostgreSQL parses it as the jsonb column's input, in COPY and in a literal alike.

    Django would hand the driver a Jsonb adapter (PostgreSQL), whose dumper ran json.dumps inside psycopg's
    row formatting: a third of the writer thread in a profile (runs.events.to_json is about four times as
    fast, and parses back to the same values)."""
    return to_json(value)


def adapt_datetime(value):
    return connection.ops.adapt_datetimefield_value(value)


def insert_rows(model, fields, rows):
    """INSERT `rows` (tuples of already adapted values, in the order of `fields`) into `model`'s table."""
    if not rows:
        return
    meta, quote = model._meta, connection.ops.quote_name
    columns = ", ".join(quote(meta.get_field(name).column) for name in fields)
    table, values = quote(meta.db_table), f"({', '.join(['%s'] * len(fields))})"
    with connection.cursor() as cursor:
        if connection.vendor != "postgresql":
            cursor.executemany(f"INSERT INTO {table} ({columns}) VALUES {values}", rows)
        elif len(rows) <= INSERT_ROWS_MAX:
            cursor.execute(f"INSERT INTO {table} ({columns}) VALUES {', '.join([values] * len(rows))}",
                           [value for row in rows for value in row])
        else:
            with library_internals.copy(cursor, f"COPY {table} ({columns}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)


# Events up to which a write batch is one statement. A bigger batch means the writer fell behind, and then
# the rows' cost matters more than the round trips: PostgreSQL takes them apart from JSON slower than from
# COPY (bench/throughput.py: 24,500 against 35,600 log lines/s when every batch was one statement), and the
# four round trips of a transaction are worth it from about 20 events on.
ONE_STATEMENT_MAX = 16


def one_statement(count):
    """Is a write batch of `count` events one statement (claim_and_insert)? PostgreSQL's data-modifying WITH
    can be; SQLite's cannot, and its statements cost no round trip anyway."""
    return count <= ONE_STATEMENT_MAX and connection.vendor == "postgresql"


def claim(run_model, run_id, count, fields, closed_statuses):
    """In one statement: reserve `count` seqs of the run, write `fields` to it, unless its status is one of
    `closed_statuses`. Returns (first seq, status), or None for a closed (or missing) run.

    The UPDATE takes the row lock (as select_for_update does in runs.models.allocate_seqs) and checks the
    status under it, so numbers stay strictly increasing with no gaps and a write cannot race the transition
    that ends the run; RETURNING (PostgreSQL, SQLite 3.35+) saves the SELECT before it."""
    sql, params = _claim_sql(run_model, run_id, count, fields, closed_statuses)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    return None if row is None else (row[0] + 1, row[1])


def claim_and_insert(run_model, run_id, count, fields, closed_statuses, tables):
    """PostgreSQL: `claim`, and INSERT each of `tables` ([(model, field names, rows)], with each row's `seq`
    counted from 1 within the batch), in one statement. Returns what claim returns; a closed run gets nothing
    written, in any table.

    Each table's rows go as one parameter, a JSON array of rows (to_json, in C), that the statement takes
    apart with json_array_elements: a row's values must be JSON (a datetime as its ISO text, a JSONField's
    value as the object itself). Binding thousands of values one by one (psycopg formats each in Python, and
    an array's strings through a regular expression each) cost the writer more than the round trips saved."""
    filled = tuple((model, tuple(names)) for model, names, rows in tables if rows)
    sql = _statement(run_model, tuple(fields), len(closed_statuses), filled)
    params = _claim_params(run_model, run_id, count, fields, closed_statuses)
    params.extend(to_json(rows) for _, _, rows in tables if rows)
    with _prepared_cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    return None if row is None else (row[0] + 1, row[1])


def _prepared_cursor():
    """A cursor whose statements PostgreSQL parses and plans once per connection (library_internals.
    prepared_cursor), unless settings.RUNWATCH["PREPARED_WRITES"] is off: Django leaves prepared statements off
    for poolers that do not carry them (PgBouncer before 1.21 in transaction mode), and the setting is the way
    out there."""
    if not settings.RUNWATCH["PREPARED_WRITES"]:
        return connection.cursor()
    return library_internals.prepared_cursor(connection)


def _claim_sql(run_model, run_id, count, fields, closed_statuses):
    """The claim's UPDATE, RETURNING `base` (the run's last seq before the batch) and the status."""
    sql = _claim_text(run_model, tuple(fields), len(closed_statuses))
    return sql, _claim_params(run_model, run_id, count, fields, closed_statuses)


def _claim_params(run_model, run_id, count, fields, closed_statuses):
    """The claim's parameters, in the order of _claim_text's placeholders."""
    meta = run_model._meta
    prepared = [meta.get_field(name).get_db_prep_save(value, connection) for name, value in fields.items()]
    return [count, *prepared, run_id, *closed_statuses, count]


# The statements' text is built once per shape (which fields, which tables): a writer runs the same few
# shapes thousands of times.
@functools.cache
def _claim_text(run_model, field_names, closed_count):
    meta, quote = run_model._meta, connection.ops.quote_name
    sets = [f"{quote('last_seq')} = {quote('last_seq')} + %s"]
    sets += [f"{quote(meta.get_field(name).column)} = %s" for name in field_names]
    return (f"UPDATE {quote(meta.db_table)} SET {', '.join(sets)} WHERE {quote(meta.pk.column)} = %s "
            f"AND {quote('status')} NOT IN ({', '.join(['%s'] * closed_count)}) "
            f"RETURNING {quote('last_seq')} - %s AS base, {quote('status')}")


@functools.cache
def _statement(run_model, field_names, closed_count, tables):
    parts, quote = [f"claimed AS ({_claim_text(run_model, field_names, closed_count)})"], connection.ops.quote_name
    for n, (model, names) in enumerate(tables):
        meta = model._meta
        columns = [meta.get_field(name) for name in names]
        values = ", ".join(_json_value(field, i) for i, field in enumerate(columns))
        parts.append(f"t{n} AS (INSERT INTO {quote(meta.db_table)} ({', '.join(quote(f.column) for f in columns)}) "
                     f"SELECT {values} FROM claimed, json_array_elements(%s::json) AS v(e))")
    return f"WITH {', '.join(parts)} SELECT base, {quote('status')} FROM claimed"


def _json_value(field, i):
    """The SQL for column `field` from element `i` of a row `e` (a JSON array)."""
    kind = field.get_internal_type()
    if kind == "JSONField":
        return f"(v.e->{i})::jsonb"
    if kind in ("CharField", "TextField"):
        return f"v.e->>{i}"  # text; the INSERT's own cast checks a varchar's length (an explicit one would cut)
    value = f"(v.e->>{i})::{field.db_type(connection)}"
    return f"claimed.base + {value}" if field.name == "seq" else value

