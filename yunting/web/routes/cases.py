"""Cases and their parties."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query

from yunting.hearing.model import Actor
from yunting.hearing.service import HearingService
from yunting.web.deps import Resources, Staff
from yunting.web.schemas import (
    ERRORS,
    CaseCreate,
    CaseOut,
    HearingOut,
    PartyCreate,
    PartyOut,
    PersonCreate,
)

router = APIRouter(prefix="/api/cases", tags=["cases"], responses=ERRORS)


async def create_person(hearings: HearingService, actor: Actor, data: PersonCreate) -> UUID:
    person = await hearings.create_person(
        actor=actor,
        name=data.name,
        phone=data.phone,
        email=str(data.email) if data.email else None,
        id_number_last4=data.id_number_last4.upper() if data.id_number_last4 else None,
    )
    return person.id


@router.post(
    "",
    status_code=201,
    summary="Register a case (立案)",
    description="Clerks only. The case number is unique within the court.",
)
async def create_case(body: CaseCreate, staff: Staff, resources: Resources) -> CaseOut:
    case = await resources.hearings.create_case(
        actor=staff.actor, number=body.number, title=body.title, cause=body.cause
    )
    return CaseOut.of(case)


@router.get("", summary="Cases of your court, newest first")
async def list_cases(
    staff: Staff,
    resources: Resources,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> list[CaseOut]:
    cases = await resources.hearings.list_cases(actor=staff.actor, limit=limit, offset=offset)
    return [CaseOut.of(c) for c in cases]


@router.get("/{case_id}", summary="One case")
async def get_case(case_id: UUID, staff: Staff, resources: Resources) -> CaseOut:
    return CaseOut.of(await resources.hearings.get_case(actor=staff.actor, case_id=case_id))


@router.get("/{case_id}/hearings", summary="The hearings of a case")
async def case_hearings(case_id: UUID, staff: Staff, resources: Resources) -> list[HearingOut]:
    found = await resources.hearings.list_hearings_for_case(actor=staff.actor, case_id=case_id)
    return [HearingOut.of(h) for h in found]


@router.get("/{case_id}/parties", summary="The parties of a case")
async def list_parties(case_id: UUID, staff: Staff, resources: Resources) -> list[PartyOut]:
    parties = await resources.hearings.list_parties(actor=staff.actor, case_id=case_id)
    return [PartyOut.of(p) for p in parties]


@router.post(
    "/{case_id}/parties",
    status_code=201,
    summary="Add a party (with optional counsel)",
    description="Creates the person records with the contacts the party provided.",
)
async def add_party(
    case_id: UUID, body: PartyCreate, staff: Staff, resources: Resources
) -> PartyOut:
    # Check the case first, so a wrong id creates no orphan person records.
    await resources.hearings.get_case(actor=staff.actor, case_id=case_id)
    person_id = await create_person(resources.hearings, staff.actor, body.person)
    counsel_id = (
        await create_person(resources.hearings, staff.actor, body.counsel) if body.counsel else None
    )
    party = await resources.hearings.add_party(
        actor=staff.actor,
        case_id=case_id,
        person_id=person_id,
        side=body.side,
        counsel_person_id=counsel_id,
    )
    return PartyOut.of(party)
