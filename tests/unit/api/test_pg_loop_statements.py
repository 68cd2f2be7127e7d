"""The labeling loop's statements as sent: named placeholders turned into `$n` once, arrays as one literal."""

from __future__ import annotations

import re

from api_server.workflow import pg_loop


def test_named_placeholders_become_numbered_once_each_in_order_of_first_use() -> None:
    statement = pg_loop.Positional.of("SELECT %(b)s, %(a)s::text[], %(b)s, 'x%%y' LIKE '%%'")
    assert statement.sql == "SELECT $1, $2::text[], $1, 'x%y' LIKE '%'"
    assert statement.names == ("b", "a")
    assert statement.values({"a": 1, "b": 2, "unused": 3}) == (2, 1)


def test_the_submission_statement_keeps_every_parameter() -> None:
    named = pg_loop._submit_checked.__wrapped__()  # not cached: apps built later build it from their subscribers
    statement = pg_loop.Positional.of(named)
    assert set(statement.names) == set(re.findall(r"%\((\w+)\)s", named))
    assert "%(" not in statement.sql and "%%" not in statement.sql
    # More than psycopg caches the conversion of (4 KiB): why it is converted here.
    assert len(named) > 4096
    assert pg_loop._positional(named) is pg_loop._positional(named)


def test_text_arrays_quote_each_element() -> None:
    assert pg_loop.text_array([]) == "{}"
    assert pg_loop.text_array(["new>in_progress", 'a "b"', "c\\d", "e,f"]) == (
        '{"new>in_progress","a \\"b\\"","c\\\\d","e,f"}'
    )
    assert pg_loop.MOVES_ARRAY.count(",") == len(pg_loop.MOVES) - 1
