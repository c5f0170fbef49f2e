"""The ``yunting`` command: serve, worker, migrate, demo, create-user, ledger."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import logging
import os
import signal
import socket
import sys
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from pydantic import ValidationError

from yunting.hearing.model import StaffRole
from yunting.hearing.service import HearingService
from yunting.infra.clock import Clock, SystemClock
from yunting.infra.db import Database
from yunting.infra.errors import InvalidInputError
from yunting.infra.ledger import ensure_signing_key
from yunting.infra.ledger.cli import add_ledger_commands
from yunting.infra.ledger.evidence import LedgerEvidence
from yunting.infra.logging import configure_logging
from yunting.infra.migrate import upgrade
from yunting.infra.runtime import tune_gc
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
            judgment = await _seed_demo_judgment(settings, db, hearings, staff)
        finally:
            await db.stop()
        print("demo data ready" + (" (created)" if result.created else " (already there)"))
        if judgment:
            print("  the demo case's judgment is ready to serve (案件 → 电子送达)")
        print(f"  clerk sign-in: {DEMO_CLERK} / {password}")
        print(f"  judge sign-in: {DEMO_JUDGE} / {password}")
        return 0

    return asyncio.run(run())


async def _seed_demo_judgment(
    settings: Settings, db: Database, hearings: HearingService, staff: StaffService
) -> bool:
    """The demo judgment, drawn with the certificate's CJK font; skipped (with a note) when the
    font is missing, since the rest of the demo does not need it."""
    from yunting.infra.demo import seed_demo_judgment
    from yunting.infra.storage import LocalBlobStore
    from yunting.service_delivery.build import build_delivery
    from yunting.service_delivery.certificate import CjkFontNotFoundError, find_cjk_font

    try:
        font = (
            Path(settings.certificate_font_path)
            if settings.certificate_font_path
            else find_cjk_font()
        )
    except CjkFontNotFoundError as e:
        print(f"  no demo judgment: {e}", file=sys.stderr)
        return False
    delivery = build_delivery(
        settings,
        db=db,
        clock=SystemClock(),
        store=LocalBlobStore(settings.data_dir / "blobs"),
        redis=None,
        with_worker=False,
    )
    return await seed_demo_judgment(
        delivery=delivery.service,
        hearings=hearings,
        staff=staff,
        court_name=settings.demo_court_name,
        font_path=font,
        spool_dir=settings.data_dir / "tmp",
    )


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
    app = create_app(settings)
    tune_gc()
    uvicorn.run(
        app,
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


NO_REDIS_FOR_WORKER = (
    "yunting worker needs YUNTING_REDIS_URL: worker processes share the delivery queue through a "
    "Redis stream. Without Redis the queue lives inside one process, so attempts queued by "
    "`yunting serve` would reach a separate worker only when its sweeper finds them "
    "(after YUNTING_DELIVERY_REQUEUE_S). Without Redis, run the worker inside `yunting serve` "
    "(YUNTING_DELIVERY_WORKER=true, the default)."
)


def cmd_worker(settings: Settings, args: argparse.Namespace) -> int:
    """A delivery worker on its own, for scaled-out deployments: K ``yunting worker`` processes
    (and ``yunting serve`` with YUNTING_DELIVERY_WORKER=false) share one Redis stream.

    Refused without Redis. An in-process queue in a separate process never sees what the web
    process queues: nothing would be lost (the sweeper re-queues from the database), but every
    service would wait out the re-queue delay, and the web process's own queue would fill up
    with ids nobody takes. The embedded worker in ``yunting serve`` is the single-process setup.
    """
    if not settings.redis_url:
        print(f"error: {NO_REDIS_FOR_WORKER}", file=sys.stderr)
        return 2
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    tune_gc()
    return asyncio.run(_run_worker(settings))


async def _run_worker(settings: Settings) -> int:
    from redis.asyncio import Redis
    from redis.exceptions import RedisError
    from sqlalchemy.exc import SQLAlchemyError

    from yunting.infra.storage import LocalBlobStore
    from yunting.service_delivery.build import build_delivery
    from yunting.service_delivery.ports import ProviderError
    from yunting.service_delivery.queue import RedisStreamQueue

    clock: Clock = SystemClock()
    db = Database(settings.effective_database_url)
    await db.start()
    redis = Redis.from_url(settings.redis_url, decode_responses=False)
    try:
        # Fail at once, and say which, rather than log the same error every sweep.
        try:
            await db.ping()
        except (OSError, SQLAlchemyError) as e:
            print(f"error: cannot reach the database: {e}", file=sys.stderr)
            return 1
        try:
            await redis.ping()
        except (OSError, RedisError) as e:
            print(f"error: cannot reach Redis: {e}", file=sys.stderr)
            return 1
        try:
            delivery = build_delivery(
                settings,
                db=db,
                clock=clock,
                store=LocalBlobStore(settings.data_dir / "blobs"),
                redis=redis,
                with_worker=True,
            )
        except ValueError as e:  # SMTP/SMPP settings the providers refuse
            print(f"configuration error: {e}", file=sys.stderr)
            return 2
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        try:
            await delivery.start()
        except ProviderError as e:  # the SMSC refused our credentials (SmppBindError)
            print(f"error: {e}", file=sys.stderr)
            return 1
        queue = delivery.queue
        logger.info(
            "delivery worker %s running: %s; queue %s; %d consumers, sweep every %gs",
            settings.node_id or f"{socket.gethostname()}-{os.getpid()}",
            ", ".join(
                f"{channel.value} via {_describe_provider(settings, provider)}"
                for channel, provider in sorted(
                    delivery.providers.items(), key=lambda item: item[0].value
                )
            ),
            f"Redis stream {queue.stream}" if isinstance(queue, RedisStreamQueue) else "in-process",
            settings.delivery_concurrency,
            settings.delivery_sweep_interval_s,
        )
        try:
            await stop.wait()
        finally:
            # A second signal while draining ends the process the usual way.
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(sig)
            logger.info("delivery worker: stop requested")
            await delivery.stop()
    finally:
        await redis.aclose()
        await db.stop()
    return 0


def _describe_provider(settings: Settings, provider: object) -> str:
    """Where a channel's messages go, for the start-up line (hosts, never credentials)."""
    from yunting.service_delivery.providers.smpp import SmppProvider
    from yunting.service_delivery.providers.smtp import SmtpProvider

    if isinstance(provider, SmtpProvider):
        hop = ", final hop" if settings.smtp_final_hop else ""
        return f"SMTP {settings.smtp_host}:{settings.smtp_port} (tls={settings.smtp_tls}{hop})"
    if isinstance(provider, SmppProvider):
        return (
            f"SMPP {settings.smpp_host}:{settings.smpp_port} "
            f"({settings.smpp_bind_mode}, system_id={settings.smpp_system_id!r})"
        )
    return f"the local outbox ({type(provider).__name__})"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="yunting", description="Yunting 云庭 online court")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="serve the web app, API and signaling")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.set_defaults(func=cmd_serve)

    worker = sub.add_parser(
        "worker",
        help="run a delivery worker on its own (scaled out: needs YUNTING_REDIS_URL)",
    )
    worker.set_defaults(func=cmd_worker)

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
