"""The ``yunting`` command: serve, migrate, demo, create-user, ledger."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import logging
import os
import sys
from collections.abc import Sequence
from datetime import timedelta
from zoneinfo import ZoneInfo

from pydantic import ValidationError

from yunting.hearing.model import StaffRole
from yunting.hearing.service import HearingService
from yunting.infra.clock import SystemClock
from yunting.infra.db import Database
from yunting.infra.errors import InvalidInputError
from yunting.infra.ledger import ensure_signing_key
from yunting.infra.ledger.cli import add_ledger_commands
from yunting.infra.ledger.evidence import LedgerEvidence
from yunting.infra.logging import configure_logging
from yunting.infra.migrate import upgrade
from yunting.infra.settings import Settings, load_settings
from yunting.staff.errors import UsernameTakenError
from yunting.staff.passwords import make_hasher
from yunting.staff.service import StaffService

logger = logging.getLogger(__name__)

DEMO_PASSWORD = "yunting-demo"  # noqa: S105 - development-only demo accounts, printed to the user


def _services(settings: Settings, db: Database) -> tuple[HearingService, StaffService]:
    clock = SystemClock()
    hearings = HearingService(
        db=db,
        clock=clock,
        secret_key=settings.secret_key.get_secret_value(),
        public_base_url=settings.public_base_url,
        join_token_ttl=timedelta(seconds=settings.join_token_ttl_s),
        court_timezone=ZoneInfo(settings.court_timezone),
        evidence=LedgerEvidence(),
    )
    staff = StaffService(
        db=db,
        clock=clock,
        session_ttl=timedelta(seconds=settings.session_ttl_s),
        hasher=make_hasher(
            time_cost=settings.argon2_time_cost, memory_kib=settings.argon2_memory_kib
        ),
    )
    return hearings, staff


def cmd_migrate(settings: Settings, args: argparse.Namespace) -> int:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    upgrade(settings.effective_database_url)
    print("database is up to date")
    print(f"ledger signing key id: {ensure_signing_key(settings).hex()}")
    return 0


def cmd_demo(settings: Settings, args: argparse.Namespace) -> int:
    from yunting.infra.demo import DEMO_CLERK, DEMO_JUDGE, seed_demo

    password = args.password or os.environ.get("YUNTING_DEMO_PASSWORD", "")
    if not password:
        if not settings.is_development:
            print("outside development mode give --password for the demo accounts", file=sys.stderr)
            return 2
        password = DEMO_PASSWORD

    async def run() -> int:
        db = Database(settings.effective_database_url)
        await db.start()
        try:
            hearings, staff = _services(settings, db)
            result = await seed_demo(
                hearings=hearings,
                staff=staff,
                clock=SystemClock(),
                court_name=settings.demo_court_name,
                password=password,
                tz=ZoneInfo(settings.court_timezone),
            )
        finally:
            await db.stop()
        print("demo data ready" + (" (created)" if result.created else " (already there)"))
        print(f"  clerk sign-in: {DEMO_CLERK} / {password}")
        print(f"  judge sign-in: {DEMO_JUDGE} / {password}")
        return 0

    return asyncio.run(run())


def cmd_create_user(settings: Settings, args: argparse.Namespace) -> int:
    password = os.environ.get("YUNTING_NEW_USER_PASSWORD") or ""
    if not password:
        if not sys.stdin.isatty():
            print("set YUNTING_NEW_USER_PASSWORD or run in a terminal", file=sys.stderr)
            return 2
        password = getpass.getpass("password: ")

    async def run() -> int:
        db = Database(settings.effective_database_url)
        await db.start()
        try:
            hearings, staff = _services(settings, db)
            court = await hearings.ensure_court(name=args.court_name or args.court, code=args.court)
            user = await staff.create_user(
                court_id=court.id,
                username=args.username,
                display_name=args.name or args.username,
                role=StaffRole(args.role),
                password=password,
            )
        except (UsernameTakenError, InvalidInputError) as e:
            print(f"error: {e}", file=sys.stderr)
            return 1
        finally:
            await db.stop()
        print(f"created {user.role} {user.username} ({user.id}) in court {court.code}")
        return 0

    return asyncio.run(run())


def cmd_serve(settings: Settings, args: argparse.Namespace) -> int:
    import uvicorn

    from yunting.web.app import create_app

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    base = f"http://{args.host}:{args.port}"
    print(
        "\n".join(
            [
                "",
                f"  Yunting 云庭 is running at {base}/",
                f"    staff sign-in:   {base}/login",
                f"    API docs:        {base}/docs",
                f"    health:          {base}/healthz",
                f"    verify evidence: {base}/verify",
            ]
            + ([f"    outbox (SMS/email): {base}/dev/outbox"] if settings.is_development else [])
            + [""]
        ),
        flush=True,
    )
    uvicorn.run(
        create_app(settings),
        host=args.host,
        port=args.port,
        log_config=None,  # our logging configuration, not uvicorn's
        ws_max_size=settings.max_request_bytes,
        # Signaling frames are small; per-message deflate would cost ~49 KiB of zlib state per
        # idle socket (measured in bench/signaling.py) to save bandwidth nobody is short of.
        ws_per_message_deflate=False,
        # The sans-I/O websockets protocol runs no keepalive/transfer tasks per connection:
        # an idle hearing participant costs a few KiB less (bench/signaling.py idle_conn_kib).
        ws="websockets-sansio",
        proxy_headers=True,
    )
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="yunting", description="Yunting 云庭 online court")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="serve the web app, API and signaling")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.set_defaults(func=cmd_serve)

    migrate = sub.add_parser("migrate", help="create or upgrade the database schema")
    migrate.set_defaults(func=cmd_migrate)

    demo = sub.add_parser("demo", help="seed a demo court, staff, case and hearing (idempotent)")
    demo.add_argument("--password", default="", help="password for the demo accounts")
    demo.set_defaults(func=cmd_demo)

    create_user = sub.add_parser(
        "create-user", help="create a staff account (password from YUNTING_NEW_USER_PASSWORD)"
    )
    create_user.add_argument("username")
    create_user.add_argument("--role", required=True, choices=[r.value for r in StaffRole])
    create_user.add_argument("--court", required=True, help="court code, e.g. ZJ0192")
    create_user.add_argument("--court-name", default="", help="name if the court is new")
    create_user.add_argument("--name", default="", help="display name")
    create_user.set_defaults(func=cmd_create_user)

    add_ledger_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings()
    except ValidationError as e:
        print(f"configuration error:\n{e}", file=sys.stderr)
        return 2
    configure_logging(level=settings.log_level, json_lines=settings.log_json)
    result: int = args.func(settings, args)
    return result


if __name__ == "__main__":
    sys.exit(main())
