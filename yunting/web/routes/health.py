"""Liveness and readiness."""

from __future__ import annotations

import logging

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from yunting import __version__
from yunting.web.deps import Resources

logger = logging.getLogger(__name__)
router = APIRouter(tags=["health"])


@router.get(
    "/healthz",
    summary="Health of this node and its dependencies",
    description=(
        "200 with `status: ok` when the database (and Redis, when configured) answer; 503 with "
        "`status: degraded` and the failing component otherwise. Safe for load balancers."
    ),
)
async def healthz(resources: Resources) -> JSONResponse:
    checks: dict[str, str] = {}
    try:
        await resources.db.ping()
        checks["database"] = "ok"
    except Exception as e:  # a health check reports failures, it does not raise them
        logger.warning("health: database check failed: %s", type(e).__name__)
        checks["database"] = "error"
    if resources.redis is not None:
        try:
            await resources.redis.ping()
            checks["redis"] = "ok"
        except Exception as e:
            logger.warning("health: redis check failed: %s", type(e).__name__)
            checks["redis"] = "error"
    else:
        checks["redis"] = "not_configured"
    ok = all(v in ("ok", "not_configured") for v in checks.values())
    body = {
        "status": "ok" if ok else "degraded",
        "version": __version__,
        "database": checks["database"],
        "database_backend": "sqlite" if resources.db.is_sqlite else "postgresql",
        "redis": checks["redis"],
    }
    return JSONResponse(body, status_code=200 if ok else 503)
