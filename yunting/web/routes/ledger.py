"""The evidence ledger over HTTP: signed tree heads, proofs, lookups, the public key, /verify.

Field names follow the Certificate Transparency v1 API (RFC 6962 §4) where one exists, so CT
tooling and people who know it can read the answers. Hashes and signatures are standard base64.

Who may see what: tree heads, proofs (hashes only), the public key and lookups by content hash
are public — anyone holding a document must be able to check it without an account. Reading an
entry by its index is for signed-in staff, because indices can be enumerated and events describe
court business.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse, PlainTextResponse, Response
from pydantic import BaseModel, Field

from yunting.infra.ledger import (
    InvalidEntryError,
    Ledger,
    merkle,
)
from yunting.infra.ledger.model import (
    ConsistencyProof,
    Entry,
    InclusionProof,
    SignedTreeHead,
    format_time,
    normalize_sha256,
    parse_time,
    unb64,
)
from yunting.infra.ledger.signing import verify_tree_head
from yunting.web.deps import Staff
from yunting.web.render import locale_of, render
from yunting.web.resources import AppResources
from yunting.web.schemas import ERRORS

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/api/ledger", tags=["ledger"], responses=ERRORS)
page_router = APIRouter(tags=["pages"], include_in_schema=False)

SHA256_PATTERN = r"^[0-9a-fA-F]{64}$"


def get_ledger(request: Request) -> Ledger:
    ledger: Ledger = request.app.state.ledger
    return ledger


LedgerDep = Annotated[Ledger, Depends(get_ledger)]


# --- response shapes ---------------------------------------------------------------------------


class SignedTreeHeadOut(BaseModel):
    tree_size: int = Field(description="Number of entries the head covers")
    timestamp: int = Field(description="Milliseconds since the Unix epoch (RFC 6962 §3.5)")
    timestamp_iso: str = Field(description="The same time, ISO 8601 UTC")
    sha256_root_hash: str = Field(description="Merkle tree root (RFC 6962 §2.1), base64")
    tree_head_signature: str = Field(
        description="TLS DigitallySigned (ed25519, 0x0807) over the RFC 6962 §3.5 "
        "TreeHeadSignature, base64"
    )
    log_id: str = Field(description="SHA-256 of the signing key's SubjectPublicKeyInfo, base64")
    signature_algorithm: str = "ed25519"

    @classmethod
    def of(cls, sth: SignedTreeHead) -> SignedTreeHeadOut:
        return cls(**sth.to_json(), timestamp_iso=format_time(sth.timestamp))


class EntryOut(BaseModel):
    index: int
    kind: str
    subject_id: str
    case_id: str | None
    content_sha256: str
    at: str = Field(description="When the event happened (ISO 8601 UTC)")
    event: dict[str, Any]
    leaf_input: str = Field(description="The exact bytes hashed into the log, base64")
    leaf_hash: str = Field(description="SHA-256(0x00 || leaf_input), base64")

    @classmethod
    def of(cls, entry: Entry) -> EntryOut:
        return cls(**entry.to_json())


class InclusionProofOut(BaseModel):
    leaf_index: int
    tree_size: int
    leaf_hash: str
    audit_path: list[str] = Field(description="RFC 6962 §2.1.1 audit path, leaf side first")

    @classmethod
    def of(cls, proof: InclusionProof) -> InclusionProofOut:
        return cls(**proof.to_json())


class ConsistencyProofOut(BaseModel):
    first: int
    second: int
    consistency: list[str] = Field(description="RFC 6962 §2.1.2 consistency proof")

    @classmethod
    def of(cls, proof: ConsistencyProof) -> ConsistencyProofOut:
        return cls(**proof.to_json())


class LookupMatch(BaseModel):
    entry: EntryOut
    inclusion_proof: InclusionProofOut


class LookupOut(BaseModel):
    content_sha256: str
    found: bool
    tree_head: SignedTreeHeadOut = Field(description="The head the proofs lead to")
    matches: list[LookupMatch]


class PublicKeyOut(BaseModel):
    algorithm: str = "Ed25519"
    pem: str = Field(description="SubjectPublicKeyInfo, PEM")
    raw_base64: str = Field(description="The 32-byte RFC 8032 public key, base64")
    key_id_base64: str = Field(description="SHA-256 of the DER SubjectPublicKeyInfo (log id)")
    key_id_hex: str


# --- API -------------------------------------------------------------------------------------


@router.get(
    "/sth",
    summary="Latest signed tree head",
    description=(
        "The log's current size and Merkle root, signed with the ledger's Ed25519 key (RFC 6962 "
        "§3.5 structure). A new head is signed on demand when the log has grown since the last "
        "one; every signed head is kept, so later audits can hold the log to it."
    ),
)
async def latest_tree_head(ledger: LedgerDep) -> SignedTreeHeadOut:
    return SignedTreeHeadOut.of(await ledger.sign_tree_head())


@router.get(
    "/sth/{tree_size}",
    summary="A signed tree head of a given size",
    description="A head this log signed earlier for exactly `tree_size` entries.",
)
async def tree_head_of_size(tree_size: int, ledger: LedgerDep) -> SignedTreeHeadOut:
    return SignedTreeHeadOut.of(await ledger.tree_head(tree_size=tree_size))


@router.get(
    "/entries/{index}",
    summary="One ledger entry (staff only)",
    description=(
        "The entry at `index` with the exact leaf bytes hashed into the log (`leaf_input`). "
        "Staff only: indices can be enumerated. Holders of a document use the lookup instead."
    ),
)
async def get_entry(index: int, staff: Staff, ledger: LedgerDep) -> EntryOut:
    return EntryOut.of(await ledger.get_entry(index=index))


@router.get(
    "/entries/{index}/inclusion-proof",
    summary="Inclusion proof of an entry",
    description=(
        "RFC 6962 §2.1.1 audit path proving entry `index` is in the tree of `tree_size` entries. "
        "Without `tree_size`, the latest signed tree head's size is used. Check it with RFC 9162 "
        "§2.1.3.2 against that head's `sha256_root_hash`."
    ),
)
async def inclusion_proof(
    index: int,
    ledger: LedgerDep,
    tree_size: Annotated[
        int | None, Query(ge=1, description="Size of the tree to prove in")
    ] = None,
) -> InclusionProofOut:
    if tree_size is None:
        tree_size = (await ledger.sign_tree_head()).tree_size
    return InclusionProofOut.of(await ledger.inclusion_proof(index=index, tree_size=tree_size))


@router.get(
    "/consistency-proof",
    summary="Consistency proof between two tree heads",
    description=(
        "RFC 6962 §2.1.2 proof that the tree of `second` entries extends the tree of `first` "
        "entries (nothing was changed or removed in between). Check it with RFC 9162 §2.1.4.2 "
        "against the two signed roots."
    ),
)
async def consistency_proof(
    ledger: LedgerDep,
    first: Annotated[int, Query(ge=0, description="The older tree size")],
    second: Annotated[int, Query(ge=0, description="The newer tree size")],
) -> ConsistencyProofOut:
    return ConsistencyProofOut.of(await ledger.consistency_proof(first=first, second=second))


async def lookup(ledger: Ledger, content_sha256: str) -> LookupOut:
    wanted = normalize_sha256(content_sha256)
    sth = await ledger.sign_tree_head()
    matches = []
    for entry in await ledger.find_entries(content_sha256=wanted):
        if entry.index >= sth.tree_size:
            continue  # appended after the head was signed; the next lookup will include it
        proof = await ledger.inclusion_proof(index=entry.index, tree_size=sth.tree_size)
        matches.append(
            LookupMatch(entry=EntryOut.of(entry), inclusion_proof=InclusionProofOut.of(proof))
        )
    return LookupOut(
        content_sha256=wanted,
        found=bool(matches),
        tree_head=SignedTreeHeadOut.of(sth),
        matches=matches,
    )


@router.get(
    "/lookup/{content_sha256}",
    summary="Find entries by the SHA-256 of a document, with proofs",
    description=(
        "Entries whose `content_sha256` is the given hex SHA-256 (a document may be logged more "
        "than once), each with its inclusion proof against the returned signed tree head. "
        "Everything needed to check the answer offline is in it, plus the public key."
    ),
)
async def lookup_by_content(
    content_sha256: Annotated[
        str, PathParam(pattern=SHA256_PATTERN, description="hex SHA-256 of the document")
    ],
    ledger: LedgerDep,
) -> LookupOut:
    return await lookup(ledger, content_sha256)


@router.get(
    "/public-key",
    summary="The ledger's public key",
    description=(
        "The Ed25519 key that signs tree heads, as PEM and raw base64, with its key id (the "
        "`log_id` in every signed tree head). Stable: it changes only if the court rotates keys."
    ),
)
async def public_key(ledger: LedgerDep) -> PublicKeyOut:
    return PublicKeyOut(**ledger.signer.public_key_document())


@router.get(
    "/public-key.pem",
    summary="The ledger's public key (PEM file)",
    response_class=PlainTextResponse,
    responses={200: {"content": {"application/x-pem-file": {}}}},
)
async def public_key_pem(ledger: LedgerDep) -> Response:
    return PlainTextResponse(
        ledger.signer.public_key_document()["pem"], media_type="application/x-pem-file"
    )


# --- /verify page ----------------------------------------------------------------------------

# This page's own zh-CN/en strings; ``t`` falls back to them after the app's catalogs, so they
# can move into ``zh-CN.json``/``en.json`` without touching the template.
STRINGS_FILE = Path(__file__).parents[1] / "i18n" / "ledger.json"


@functools.cache
def _strings() -> dict[str, dict[str, str]]:
    strings: dict[str, dict[str, str]] = json.loads(STRINGS_FILE.read_text("utf-8"))
    return strings


def _translator(request: Request) -> Callable[..., str]:
    """``t`` for the page: the app's catalogs first, then this page's own strings."""
    resources: AppResources = request.app.state.resources
    locale = locale_of(request)

    def t(key: str, **params: object) -> str:
        text = resources.translator.gettext(locale, key, **params)
        if text != key:
            return text
        own = _strings().get(locale, {}).get(key) or _strings()["en"].get(key)
        if own is None:
            return key
        return own.format(**params) if params else own

    return t


def _proof_holds(match: LookupMatch, sth: SignedTreeHead) -> bool:
    """The server re-checks what it is about to show, from the leaf bytes up to the root."""
    leaf = unb64(match.entry.leaf_input)
    proof = InclusionProof(
        index=match.inclusion_proof.leaf_index,
        tree_size=match.inclusion_proof.tree_size,
        leaf_hash=merkle.leaf_hash(leaf),
        audit_path=tuple(unb64(h) for h in match.inclusion_proof.audit_path),
    )
    return proof.verify(sth.root_hash)


@page_router.get("/verify", response_class=HTMLResponse)
async def verify_page(
    request: Request,
    ledger: LedgerDep,
    sha256: Annotated[str, Query(max_length=200)] = "",
) -> HTMLResponse:
    t = _translator(request)
    context: dict[str, Any] = {
        "t": t,
        "sha256": sha256.strip(),
        "result": None,
        "public_key": ledger.signer.public_key_document(),
        "public_key_url": str(request.url_for("public_key")),
    }
    if sha256.strip():
        try:
            result = await lookup(ledger, sha256)
        except InvalidEntryError:
            context["error"] = t("ledger.verify.bad_hash")
            return render(request, "ledger/verify.html", context, status_code=422)
        sth = SignedTreeHead.from_json(result.tree_head.model_dump())
        signature_ok = verify_tree_head(sth, ledger.signer.public_key)
        context.update(
            result=result,
            signature_ok=signature_ok,
            proofs_hold=[_proof_holds(match, sth) for match in result.matches],
            signed_at=sth.timestamp,
            entry_times=[parse_time(match.entry.at) for match in result.matches],
            # For the browser's own re-check; the template emits it with |tojson (HTML-safe).
            browser_data={
                "sha256": result.content_sha256,
                "tree_head": result.tree_head.model_dump(),
                "public_key": ledger.signer.public_key_document()["raw_base64"],
                "matches": [m.model_dump() for m in result.matches],
            },
        )
    return render(request, "ledger/verify.html", context)
