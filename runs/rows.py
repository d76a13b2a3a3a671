"""Plain SQL for the reporter's write batches: multi-row inserts into the hot tables (RunEvent, LogEntry,
FoldMetric) and one statement that claims a batch's seqs and writes the run's fields.

`bulk_create` compiles SQL for every field of every row (get_db_prep_save, placeholders, the debug log): a
profile of a run logging as fast as it can spent three quarters of the writer thread there. These rows are
plain (no signals, no defaults to compute, no primary key wanted back), so the reporter adapts each value
once, by column kind, and hands the driver the whole batch at once: one prepared statement run for every row
on SQLite (executemany loops in C); on PostgreSQL one multi-row INSERT for a small batch (one round trip) and
COPY for a big one (psycopg's executemany is still one statement per row).
"""

from django.db import connection

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
            with cursor.cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)


def claim(run_model, run_id, count, fields, closed_statuses):
    """In one statement: reserve `count` seqs of the run, write `fields` to it, unless its status is one of
    `closed_statuses`. Returns (first seq, status), or None for a closed (or missing) run.

    The UPDATE takes the row lock (as select_for_update does in runs.models.allocate_seqs) and checks the
    status under it, so numbers stay strictly increasing with no gaps and a write cannot race the transition
    that ends the run; RETURNING (PostgreSQL, SQLite 3.35+) saves the SELECT before it."""
    meta, quote = run_model._meta, connection.ops.quote_name
    sets, params = [f"{quote('last_seq')} = {quote('last_seq')} + %s"], [count]
    for name, value in fields.items():
        field = meta.get_field(name)
        sets.append(f"{quote(field.column)} = %s")
        params.append(field.get_db_prep_save(value, connection))
    closed = list(closed_statuses)
    sql = (f"UPDATE {quote(meta.db_table)} SET {', '.join(sets)} WHERE {quote(meta.pk.column)} = %s "
           f"AND {quote('status')} NOT IN ({', '.join(['%s'] * len(closed))}) "
           f"RETURNING {quote('last_seq')}, {quote('status')}")
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, run_id, *closed])
        row = cursor.fetchone()
    return None if row is None else (row[0] - count + 1, row[1])
