"""The PostgreSQL row triggers that refuse UPDATE and DELETE of rows written once
(docs/adr/0006-write-once-rows.md), as the migrations that install them write their SQL.

A migration that has run must keep its SQL: each function here returns, to the byte, the text the
first migrations were written with (tests/core/test_dbtriggers.py pins it). Row triggers, not
statement triggers, so TRUNCATE (how Django's test teardown flushes tables) still works. Other
databases get nothing: there the application alone keeps these rows as written (the reviews
records refuse it on the model too), and `verify_chain` finds an event edited behind its back.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence


def refusing_function(name: str, rows: str) -> str:
    """CREATE OR REPLACE FUNCTION `name`(), a trigger function that raises restrict_violation,
    "UPDATE of <table> is refused: <rows>" (or DELETE)."""
    return f"""
    CREATE OR REPLACE FUNCTION {name}() RETURNS trigger AS $$
    BEGIN
        RAISE EXCEPTION '% of % is refused: {rows}',
            TG_OP, TG_TABLE_NAME
            USING ERRCODE = 'restrict_violation';
    END;
    $$ LANGUAGE plpgsql;
    """


def refusing_triggers(tables: Iterable[str], *, suffix: str, function: str) -> list[str]:
    """A trigger `<table>_<suffix>` on each table, calling `function` before every UPDATE or
    DELETE of a row."""
    return [
        f"""
        CREATE TRIGGER {table}_{suffix}
        BEFORE UPDATE OR DELETE ON {table}
        FOR EACH ROW EXECUTE FUNCTION {function}();
        """
        for table in tables
    ]


def dropping_triggers(tables: Iterable[str], *, suffix: str) -> list[str]:
    """The reverse of `refusing_triggers`."""
    return [f"DROP TRIGGER IF EXISTS {table}_{suffix} ON {table};" for table in tables]


def write_once_guard(
    function: str, rows: str, tables: Sequence[str], *, suffix: str
) -> tuple[list[str], list[str]]:
    """The statements that install the refusing `function` and its trigger on each table, and
    those that remove them again."""
    forward = [
        refusing_function(function, rows),
        *refusing_triggers(tables, suffix=suffix, function=function),
    ]
    backward = [*dropping_triggers(tables, suffix=suffix), f"DROP FUNCTION IF EXISTS {function}();"]
    return forward, backward


def on_postgresql(statements: Sequence[str]) -> Callable:
    """A RunPython function that executes `statements` in order on PostgreSQL, and nothing on other
    databases."""

    def run(apps, schema_editor) -> None:
        if schema_editor.connection.vendor != "postgresql":
            return
        for sql in statements:
            schema_editor.execute(sql, params=None)

    return run
