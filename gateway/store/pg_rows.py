"""Row <-> dataclass helpers of the PostgreSQL store (psycopg gives Python types back)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import astuple, fields
from typing import Any, TypeVar

import psycopg
from psycopg import sql

T = TypeVar("T")


def row_to(cls: type[T], row: Mapping[str, Any]) -> T:
    """One row as the dataclass of the same name's fields (psycopg gives Python types)."""
    return cls(**{f.name: row[f.name] for f in fields(cls)})  # type: ignore[arg-type]


def insert(conn: psycopg.Connection[Any], table: str, item: object) -> None:
    names = [f.name for f in fields(item)]  # type: ignore[arg-type]
    conn.execute(sql.SQL("INSERT INTO {} ({}) VALUES ({})").format(
        sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, names)),
        sql.SQL(", ").join(sql.Placeholder() * len(names))), astuple(item))  # type: ignore[arg-type]
