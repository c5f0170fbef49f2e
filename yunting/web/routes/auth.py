"""Staff sign-in for API clients and the browser (the page form posts to /login)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from yunting.staff.errors import SessionInvalidError
from yunting.web.cookies import clear_session_cookie, set_session_cookie
from yunting.web.deps import OptionalStaff, Resources, Staff, client_address
from yunting.web.schemas import ERRORS, MeResponse, SignInRequest, SignInResponse, StaffUserOut

router = APIRouter(prefix="/api/auth", tags=["auth"], responses=ERRORS)


@router.post(
    "/sign-in",
    summary="Sign in as court staff",
    description=(
        "Checks username and password and opens a session. Sets the `yt_session` cookie and "
        "also returns the session token for API clients. Wrong username and wrong password get "
        "the same answer. After 10 failures for a username (or 50 from one address) within "
        "15 minutes, sign-in is refused with 429 and Retry-After."
    ),
)
async def sign_in(
    body: SignInRequest, request: Request, response: Response, resources: Resources
) -> SignInResponse:
    session = await resources.staff.sign_in(
        username=body.username, password=body.password, client=client_address(request)
    )
    set_session_cookie(
        response,
        session,
        secure=resources.settings.public_base_url.startswith("https"),
        now=resources.clock.now(),
    )
    return SignInResponse(
        user=StaffUserOut.of(session.user),
        session_token=session.token,
        csrf_token=session.csrf_token,
        expires_at=session.expires_at,
    )


@router.post("/sign-out", summary="End the current session", status_code=204)
async def sign_out(staff: Staff, response: Response, resources: Resources) -> Response:
    await resources.staff.sign_out(token=staff.raw_token)
    out = Response(status_code=204)
    clear_session_cookie(out)
    return out


@router.get("/me", summary="The signed-in staff user and the CSRF token for this session")
async def me(staff: OptionalStaff) -> MeResponse:
    if staff is None:
        raise SessionInvalidError("not signed in")
    return MeResponse(
        user=StaffUserOut.of(staff.session.user),
        csrf_token=staff.session.csrf_token,
        expires_at=staff.session.expires_at,
    )
