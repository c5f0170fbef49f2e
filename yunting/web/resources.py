"""Everything the web app needs, built once in the lifespan and closed at shutdown."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

from fastapi.templating import Jinja2Templates
from redis.asyncio import Redis

from yunting.hearing.service import HearingService
from yunting.identity.service import IdentityService
from yunting.infra.clock import Clock
from yunting.infra.db import Database
from yunting.infra.ledger.evidence import LedgerEvidence
from yunting.infra.settings import Settings
from yunting.infra.storage import BlobStore, LocalBlobStore
from yunting.media.node import MediaNode
from yunting.recording.renders import CompositeRenderer
from yunting.recording.service import RecordingService
from yunting.service_delivery.build import Delivery, build_delivery
from yunting.service_delivery.outbox import OutboxSender
from yunting.service_delivery.ports import MessageSender
from yunting.signaling.bus import Bus, InProcessBus, RedisBus
from yunting.signaling.host import RoomHost, default_node_id, room_config
from yunting.signaling.leases import LocalLeases, RedisLeases, RoomLeases
from yunting.signaling.ports import MediaPort, NoMediaNode
from yunting.staff.passwords import make_hasher
from yunting.staff.service import StaffService
from yunting.staff.throttle import MemoryLoginThrottle, RedisLoginThrottle
from yunting.web.i18n import Translator

logger = logging.getLogger(__name__)


@dataclass
class AppResources:
    settings: Settings
    clock: Clock
    db: Database
    hearings: HearingService
    identity: IdentityService
    staff: StaffService
    outbox: OutboxSender
    sender: MessageSender
    translator: Translator
    templates: Jinja2Templates
    bus: Bus
    rooms: RoomHost
    media: MediaPort
    store: BlobStore
    recording: RecordingService | None = None
    renderer: CompositeRenderer | None = None
    delivery: Delivery | None = None
    redis: Redis | None = None
    extras: dict[str, Any] = field(default_factory=dict)

    @classmethod
    async def build(
        cls, settings: Settings, *, clock: Clock, templates: Jinja2Templates
    ) -> AppResources:
        db = Database(settings.effective_database_url)
        await db.start()
        redis: Redis | None = None
        if settings.redis_url:
            redis = Redis.from_url(settings.redis_url, decode_responses=False)
        outbox = OutboxSender(db=db, clock=clock)
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
            throttle=(
                RedisLoginThrottle(redis=redis, prefix=settings.redis_prefix)
                if redis is not None
                else MemoryLoginThrottle(clock=clock)
            ),
            hasher=make_hasher(
                time_cost=settings.argon2_time_cost, memory_kib=settings.argon2_memory_kib
            ),
        )
        node_id = settings.node_id or default_node_id()
        bus: Bus
        leases: RoomLeases
        if redis is not None:
            bus = RedisBus(url=settings.redis_url, prefix=settings.redis_prefix)
            leases = RedisLeases(
                redis=redis,
                prefix=settings.redis_prefix,
                node_id=node_id,
                ttl_s=settings.signaling_owner_lease_s,
            )
        else:
            bus = InProcessBus()
            leases = LocalLeases(node_id)
        store = LocalBlobStore(settings.data_dir / "blobs")
        media: MediaPort
        node: MediaNode | None = None
        if settings.media_enabled:
            media = node = MediaNode(
                ice_servers=settings.ice_servers, host_addresses=settings.media_host_addresses
            )
        else:
            media = NoMediaNode()
        spool = settings.data_dir / "spool"
        renderer = CompositeRenderer(
            db=db,
            clock=clock,
            store=store,
            spool=spool,
            width=settings.recording_composite_width,
            height=settings.recording_composite_height,
            fps=settings.recording_composite_fps,
        )
        recording: RecordingService | None = None
        if node is not None:
            recording = RecordingService(
                db=db,
                clock=clock,
                store=store,
                spool=spool,
                media=node,
                hearings=hearings,
                segment_s=settings.recording_segment_s,
                stall_s=settings.recording_stall_s,
                on_sealed=renderer.enqueue,
            )
        rooms = RoomHost(
            node_id=node_id,
            hearings=hearings,
            clock=clock,
            config=room_config(settings),
            bus=bus,
            leases=leases,
            media=media,
            lease_ttl_s=settings.signaling_owner_lease_s,
            recording=recording,
        )
        if node is not None:
            node.bind(rooms)
        if recording is not None:
            recording.bind(rooms)
            await recording.start()
        await renderer.start()
        delivery = build_delivery(
            settings,
            db=db,
            clock=clock,
            store=store,
            redis=redis,
            with_worker=settings.delivery_worker,
        )
        await delivery.start()
        await bus.start()
        await rooms.start()
        return cls(
            settings=settings,
            clock=clock,
            db=db,
            hearings=hearings,
            identity=IdentityService(
                db=db, clock=clock, secret_key=settings.secret_key.get_secret_value()
            ),
            staff=staff,
            outbox=outbox,
            sender=outbox,
            translator=Translator.load(default=settings.default_locale),
            templates=templates,
            bus=bus,
            rooms=rooms,
            media=media,
            store=store,
            recording=recording,
            renderer=renderer,
            delivery=delivery,
            redis=redis,
        )

    async def close(self) -> None:
        await self.rooms.stop()  # stops every recording with its room
        if self.recording is not None:
            await self.recording.stop()
        if self.renderer is not None:
            await self.renderer.stop()
        if self.delivery is not None:
            await self.delivery.stop()
        if isinstance(self.media, MediaNode):
            await self.media.stop()
        await self.bus.stop()
        if self.redis is not None:
            await self.redis.aclose()
        await self.db.stop()
