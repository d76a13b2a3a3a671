"""Plain multi-row inserts for the reporter's hot tables (RunEvent, LogEntry, FoldMetric).

`bulk_create` compiles SQL for every field of every row (get_db_prep_save, placeholders, the debug log): a
profile of a run logging as fast as it can spent three quarters of the writer thread there. These rows are
plain (no signals, no defaults to compute, no primary key wanted back), so the reporter adapts each value
once, by column kind, and hands the driver the whole batch at once: one prepared statement run for every row
on SQLite (executemany loops in C), COPY on PostgreSQL (psycopg's executemany is still one statement per row).
"""

from django.db import connection


def adapt_json(value):
    """A JSONField value as the driver takes it (Jsonb on PostgreSQL, text on SQLite)."""
    return connection.ops.adapt_json_value(value, None)


def adapt_datetime(value):
    return connection.ops.adapt_datetimefield_value(value)


def insert_rows(model, fields, rows):
    """INSERT `rows` (tuples of already adapted values, in the order of `fields`) into `model`'s table."""
    if not rows:
        return
    meta, quote = model._meta, connection.ops.quote_name
    columns = ", ".join(quote(meta.get_field(name).column) for name in fields)
    table = quote(meta.db_table)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            with cursor.cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        else:
            cursor.executemany(f"INSERT INTO {table} ({columns}) VALUES ({', '.join(['%s'] * len(fields))})", rows)
