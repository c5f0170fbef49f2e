"""The delivery worker: takes attempt ids from the queue and sends them, runs the sweeper, and
starts the providers with the service's receipt sink. Runs inside ``yunting serve`` (embedded
default) or on its own as ``yunting worker`` (scaled out: K worker processes share a Redis
Stream)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping

from yunting.service_delivery.ports import Channel, Provider
from yunting.service_delivery.queue import DeliveryQueue
from yunting.service_delivery.service import ServiceDeliveryService

logger = logging.getLogger(__name__)


class DeliveryWorker:
    def __init__(
        self,
        *,
        service: ServiceDeliveryService,
        queue: DeliveryQueue,
        providers: Mapping[Channel, Provider],
        concurrency: int = 8,
        batch: int = 64,
        sweep_interval_s: float = 2.0,
        stop_grace_s: float = 10.0,
    ) -> None:
        self._service = service
        self._queue = queue
        self._providers = providers
        self._concurrency = concurrency
        self._batch = batch
        self._sweep_interval_s = sweep_interval_s
        self._stop_grace_s = stop_grace_s
        self._tasks: list[asyncio.Task[None]] = []
        # Consumers between taking a batch and acknowledging it (a send may be running).
        self._busy: set[asyncio.Task[None]] = set()
        self._stopping = asyncio.Event()
        self.sent = 0

    async def start(self) -> None:
        started: list[Provider] = []
        try:
            for provider in dict.fromkeys(self._providers.values()):
                await provider.start(self._service.ingest_receipt, self._service.ingest_reply)
                started.append(provider)
        except BaseException:
            for provider in started:
                await provider.stop()
            raise
        self._stopping.clear()
        self._tasks = [
            asyncio.create_task(self._consume(n), name=f"delivery-worker-{n}")
            for n in range(self._concurrency)
        ]
        self._tasks.append(asyncio.create_task(self._sweep(), name="delivery-sweeper"))
        logger.info("delivery worker started (%d consumers)", self._concurrency)

    async def stop(self) -> None:
        """Stop taking work and let the sends already started finish (for up to
        ``stop_grace_s``), then stop the providers.

        A send cut off half-way would be left in ``sending`` until the sweeper's send timeout and
        then sent again, a duplicate for the recipient if the first one got through; so running
        sends are waited for. Items taken but not started stay unacknowledged: another worker
        reclaims them from the stream (or the sweeper re-queues them from the database). A send
        still running after the grace period is cancelled and left to the sweeper."""
        self._stopping.set()
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            if task not in self._busy:
                task.cancel()  # idle: waiting on the queue or between sweeps
        if self._busy:
            logger.info(
                "delivery worker stopping: waiting up to %.0fs for %d in-flight send(s)",
                self._stop_grace_s,
                len(self._busy),
            )
        if tasks:
            _, late = await asyncio.wait(tasks, timeout=self._stop_grace_s)
            for task in late:
                logger.warning(
                    "delivery worker: %s still sending at stop; cancelled", task.get_name()
                )
                task.cancel()
            for outcome in await asyncio.gather(*tasks, return_exceptions=True):
                if isinstance(outcome, Exception):
                    logger.error("delivery worker task had failed", exc_info=outcome)
        for provider in dict.fromkeys(self._providers.values()):
            await provider.stop()
        logger.info("delivery worker stopped")

    async def _consume(self, n: int) -> None:
        me = asyncio.current_task()
        assert me is not None  # always called as a task
        while not self._stopping.is_set():
            try:
                items = await self._queue.take(count=self._batch, wait_s=1.0)
            except asyncio.CancelledError:
                raise
            except Exception:
                # A queue that answers with an error must not end this consumer for good:
                # the work stays due in the database (the sweeper re-queues it).
                logger.exception("delivery worker %d: taking from the queue failed", n)
                await asyncio.sleep(1.0)
                continue
            if not items or self._stopping.is_set():
                # Taken while stopping: left unacknowledged for another worker or the sweeper.
                continue
            self._busy.add(me)
            try:
                statuses = await self._service.send_attempts([i.attempt_id for i in items])
                self.sent += len(statuses)
                # Acknowledged whether sent here or not: an attempt another worker had, or one
                # not due yet, is the database's business now (the sweeper queues it when due).
                await self._queue.ack(items)
            except asyncio.CancelledError:
                raise
            except Exception:
                # Left unacknowledged: the queue hands the batch out again, or the sweeper does;
                # the compare-and-set keeps what was sent from being sent again.
                logger.exception("sending a batch of %d attempts failed", len(items))
            finally:
                self._busy.discard(me)

    async def _sweep(self) -> None:
        while not self._stopping.is_set():
            try:
                due, counts = await self._service.sweep()
                if due:
                    await self._queue.put(due)
                if any(counts.values()):
                    logger.info("delivery sweep: %s", counts)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("delivery sweep failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), timeout=self._sweep_interval_s)
