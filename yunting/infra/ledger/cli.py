"""``yunting ledger export | verify | verify-bundle``. Registered by ``add_ledger_commands``."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from uuid import UUID

from yunting.infra.clock import SystemClock
from yunting.infra.db import Database
from yunting.infra.ledger.bundle import verify_bundle
from yunting.infra.ledger.errors import SigningKeyError
from yunting.infra.ledger.keys import load_signing_key
from yunting.infra.ledger.service import Ledger, build_ledger
from yunting.infra.ledger.signing import TreeHeadSigner, load_public_key
from yunting.infra.settings import Settings


def add_ledger_commands(subparsers: Any) -> None:
    """Add ``ledger`` and its subcommands to the ``yunting`` parser's subparsers."""
    ledger = subparsers.add_parser("ledger", help="the evidence ledger: export, verify")
    sub = ledger.add_subparsers(dest="ledger_command", required=True)

    export = sub.add_parser(
        "export", help="write an evidence bundle (zip) of a case's ledger entries"
    )
    export.add_argument("--case", required=True, type=UUID, help="case id (UUID)")
    export.add_argument("--output", "-o", type=Path, help="zip file to write")
    export.set_defaults(func=cmd_export)

    verify = sub.add_parser(
        "verify",
        help="recompute the whole log from the database and check it against every signed head",
    )
    verify.set_defaults(func=cmd_verify)

    bundle = sub.add_parser("verify-bundle", help="check an evidence bundle offline")
    bundle.add_argument("file", type=Path)
    trust = bundle.add_mutually_exclusive_group()
    trust.add_argument("--key-id", help="hex key id the court publishes")
    trust.add_argument("--public-key", type=Path, help="the court's public key (PEM or raw)")
    bundle.set_defaults(func=cmd_verify_bundle)


async def _with_ledger(
    settings: Settings,
    make: Callable[[Database], Ledger],
    work: Callable[[Ledger], Awaitable[int]],
) -> int:
    db = Database(settings.effective_database_url)
    await db.start()
    try:
        return await work(make(db))
    finally:
        await db.stop()


def cmd_export(settings: Settings, args: argparse.Namespace) -> int:
    async def work(ledger: Ledger) -> int:
        url = settings.public_base_url.rstrip("/") + "/api/ledger/public-key"
        data = await ledger.export_case(case_id=args.case, public_key_url=url)
        # Check what we are about to hand over, with the same code the recipient can run.
        report = verify_bundle(data, trusted_key=ledger.signer.public_key)
        size = report.tree_head.tree_size if report.tree_head is not None else 0
        output: Path = args.output or Path(f"evidence-{args.case}-{size}.zip")
        await asyncio.to_thread(output.write_bytes, data)
        print(f"wrote {output}: {len(report.items)} item(s), tree size {size}")
        print(f"key id: {ledger.signer.key_id.hex()}")
        return 0 if report.ok else 1

    return asyncio.run(
        _with_ledger(settings, lambda db: build_ledger(settings, db, SystemClock()), work)
    )


def cmd_verify(settings: Settings, args: argparse.Namespace) -> int:
    try:
        # Never create a key here: a fresh key would vouch for whatever the database now says.
        signer = TreeHeadSigner(load_signing_key(settings, create=False))
    except SigningKeyError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2

    async def work(ledger: Ledger) -> int:
        report = await ledger.verify_log()
        print(
            f"{report.size} entries, root {report.root_hash.hex()}, "
            f"{report.tree_heads_checked} signed tree head(s) checked"
        )
        for issue in report.issues:
            print(f"PROBLEM {issue}")
        print("ledger verified" if report.ok else f"ledger NOT verified: {len(report.issues)}")
        return 0 if report.ok else 1

    return asyncio.run(
        _with_ledger(settings, lambda db: Ledger(db=db, signer=signer, clock=SystemClock()), work)
    )


def cmd_verify_bundle(settings: Settings, args: argparse.Namespace) -> int:
    trusted = None
    if args.public_key is not None:
        try:
            trusted = load_public_key(args.public_key.read_bytes())
        except (OSError, ValueError) as e:
            print(f"error: cannot read the public key: {e}", file=sys.stderr)
            return 2
    try:
        data = args.file.read_bytes()
    except OSError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    report = verify_bundle(data, trusted_key=trusted)
    if args.key_id and (report.key_id is None or report.key_id.hex() != args.key_id.lower()):
        report.problems.append(f"the bundle's key is not the key {args.key_id} you trust")
    for line in report.lines():
        print(line)
    if trusted is None and not args.key_id:
        print("note: compare the key id with the one the court publishes (/api/ledger/public-key)")
    return 0 if report.ok else 1
