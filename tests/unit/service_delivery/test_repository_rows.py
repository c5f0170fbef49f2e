"""The row dataclasses map a table's rows by position (``repository._row``): each lists its
table's columns in order, and every datetime column reads back as aware UTC."""

from __future__ import annotations

import collections
import dataclasses

import pytest
from sqlalchemy import DateTime, Table

from yunting.infra.db import UtcDateTime
from yunting.service_delivery import repository as repo
from yunting.service_delivery.tables import (
    delivery_receipts,
    inbound_replies,
    service_attempts,
    service_documents,
    service_events,
    service_orders,
    service_recipients,
)

ROWS = [
    (repo.DocumentRow, service_documents),
    (repo.OrderRow, service_orders),
    (repo.RecipientRow, service_recipients),
    (repo.AttemptRow, service_attempts),
    (repo.EventRow, service_events),
    (repo.ReceiptRow, delivery_receipts),
    (repo.ReplyRow, inbound_replies),
]


@pytest.mark.parametrize(("cls", "table"), ROWS, ids=[c.__name__ for c, _ in ROWS])
def test_each_row_lists_its_table_s_columns_in_order(cls: type, table: Table) -> None:
    assert [f.name for f in dataclasses.fields(cls)] == [c.name for c in table.c]


@pytest.mark.parametrize(("cls", "table"), ROWS, ids=[c.__name__ for c, _ in ROWS])
def test_every_datetime_column_is_utc(cls: type, table: Table) -> None:
    # A plain DateTime reads back naive on SQLite; the row would carry it as it came.
    datetimes = {f.name for f in dataclasses.fields(cls) if "datetime" in str(f.type)}
    assert datetimes
    for column in table.c:
        assert not isinstance(column.type, DateTime), column
        assert isinstance(column.type, UtcDateTime) == (column.name in datetimes), column


def test_a_row_in_another_order_maps_by_name() -> None:
    Row = collections.namedtuple("Row", ["provider_id", "extra", "channel"])

    @dataclasses.dataclass
    class Pair:
        channel: str
        provider_id: str

    assert repo._row(Pair, Row("p-1", 0, "sms")) == Pair("sms", "p-1")
