"""Builds electronic service from ``Settings``: providers per channel, the queue, the service and
(where this process runs one) the worker. Used by the app's resources and by ``yunting worker``."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from datetime import timedelta
from uuid import UUID
from zoneinfo import ZoneInfo

from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncConnection

from yunting.hearing import repository as hearing_repo
from yunting.hearing.model import Case, Court
from yunting.hearing.tokens import derive_key
from yunting.infra.clock import Clock
from yunting.infra.db import Database
from yunting.infra.settings import Settings
from yunting.infra.storage import BlobStore
from yunting.service_delivery.outbox import OutboxProvider
from yunting.service_delivery.ports import Channel, Provider
from yunting.service_delivery.providers.smpp import BindMode, SmppConfig, SmppProvider
from yunting.service_delivery.providers.smtp import SmtpConfig, SmtpProvider
from yunting.service_delivery.queue import DeliveryQueue, LocalQueue, RedisStreamQueue
from yunting.service_delivery.service import DeliveryPolicy, ServiceDeliveryService
from yunting.service_delivery.worker import DeliveryWorker


@dataclass
class Delivery:
    service: ServiceDeliveryService
    queue: DeliveryQueue
    providers: dict[Channel, Provider]
    worker: DeliveryWorker | None = None

    async def start(self) -> None:
        if self.worker is not None:
            await self.worker.start()

    async def stop(self) -> None:
        if self.worker is not None:
            await self.worker.stop()


async def lookup_case(conn: AsyncConnection, case_id: UUID) -> tuple[Case, Court] | None:
    case = await hearing_repo.get_case(conn, case_id)
    if case is None:
        return None
    court = await hearing_repo.get_court(conn, case.court_id)
    return (case, court) if court is not None else None


def smtp_config(settings: Settings) -> SmtpConfig:
    """The SMTP provider's configuration from ``Settings`` (raises ValueError, naming the field,
    when the combination is refused: a password without TLS, a non-ASCII sender...)."""
    return SmtpConfig(
        host=settings.smtp_host,
        port=settings.smtp_port,
        sender=settings.smtp_from,
        sender_name=settings.smtp_from_name,
        tls=settings.smtp_tls,
        validate_certs=settings.smtp_validate_certs,
        cafile=settings.smtp_cafile or None,
        username=settings.smtp_username or None,
        password=settings.smtp_password.get_secret_value() or None,
        timeout=settings.smtp_timeout_s,
        pool_size=settings.smtp_pool,
        request_dsn=settings.smtp_request_dsn,
        final_hop=settings.smtp_final_hop,
    )


def smpp_config(settings: Settings) -> SmppConfig:
    return SmppConfig(
        host=settings.smpp_host,
        port=settings.smpp_port,
        system_id=settings.smpp_system_id,
        password=settings.smpp_password.get_secret_value(),
        system_type=settings.smpp_system_type,
        bind_mode=BindMode(settings.smpp_bind_mode),
        source_addr=settings.smpp_source_addr,
        window=settings.smpp_window,
        enquire_link_interval=settings.smpp_enquire_link_s,
        # The SMSC writes its receipts' dates on the court's clock (SMPP carries no zone).
        receipt_timezone=settings.court_timezone,
    )


def build_providers(settings: Settings, *, db: Database, clock: Clock) -> dict[Channel, Provider]:
    """A real provider for each channel whose host is set, the local outbox for the others."""
    email: Provider = (
        SmtpProvider(smtp_config(settings), clock=clock)
        if settings.smtp_host
        else OutboxProvider(channel=Channel.EMAIL, db=db, clock=clock)
    )
    sms: Provider = (
        SmppProvider(smpp_config(settings), clock=clock)
        if settings.smpp_host
        else OutboxProvider(channel=Channel.SMS, db=db, clock=clock)
    )
    return {Channel.EMAIL: email, Channel.SMS: sms}


def policy_of(settings: Settings) -> DeliveryPolicy:
    return DeliveryPolicy(
        max_tries=settings.delivery_max_tries,
        backoff_first=timedelta(seconds=settings.delivery_backoff_s),
        receipt_timeout=timedelta(seconds=settings.delivery_receipt_timeout_s),
        send_timeout=timedelta(seconds=settings.delivery_send_timeout_s),
        requeue_after=timedelta(seconds=settings.delivery_requeue_s),
    )


def build_delivery(
    settings: Settings,
    *,
    db: Database,
    clock: Clock,
    store: BlobStore,
    redis: Redis | None,
    with_worker: bool,
) -> Delivery:
    providers = build_providers(settings, db=db, clock=clock)
    service = ServiceDeliveryService(
        db=db,
        clock=clock,
        store=store,
        providers=providers,
        link_key=derive_key(settings.secret_key.get_secret_value(), "service-link"),
        public_base_url=settings.public_base_url,
        court_timezone=ZoneInfo(settings.court_timezone),
        max_document_bytes=settings.max_upload_bytes,
        policy=policy_of(settings),
        lookup_case=lookup_case,
    )
    queue: DeliveryQueue
    if redis is not None:
        queue = RedisStreamQueue(
            redis=redis,
            prefix=settings.redis_prefix,
            consumer=settings.node_id or f"{socket.gethostname()}-{os.getpid()}",
            claim_idle_s=settings.delivery_send_timeout_s / 2,
        )
    else:
        queue = LocalQueue()
    worker = (
        DeliveryWorker(
            service=service,
            queue=queue,
            providers=providers,
            concurrency=settings.delivery_concurrency,
            batch=settings.delivery_batch,
            sweep_interval_s=settings.delivery_sweep_interval_s,
        )
        if with_worker
        else None
    )
    return Delivery(service=service, queue=queue, providers=providers, worker=worker)
