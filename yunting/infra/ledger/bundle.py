"""Evidence bundles: a zip anyone can check offline against a signed tree head. Pure: bytes in/out.

Layout (every JSON file is canonical JSON, RFC 8785, so no byte can change unnoticed)::

    manifest.json            format, version, case id, creation time, the list of items
    tree-head.json           the signed tree head (CT get-sth field names, see ``model``)
    public-key.pem           the log's Ed25519 public key (SubjectPublicKeyInfo PEM)
    items/<index>.json       an entry's leaf: the exact bytes hashed into the log
    proofs/<index>.json      its inclusion proof against tree-head.json (CT field names)
    README.txt               how to verify, in Chinese and English

An item is proven when SHA-256(0x00 || item bytes), walked up its audit path (RFC 9162
§2.1.3.2), gives the signed root, and the tree head's Ed25519 signature verifies with a key the
verifier trusts (compare its key id with the one the court publishes). The manifest is an index,
not evidence: removing an item from a bundle leaves the others proven.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from uuid import UUID

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from yunting.infra.ledger import merkle
from yunting.infra.ledger.canonical import CanonicalJsonError, canonical_json, parse_canonical
from yunting.infra.ledger.errors import BundleError, InvalidEntryError
from yunting.infra.ledger.model import (
    Entry,
    InclusionProof,
    SignedTreeHead,
    format_time,
    unb64,
)
from yunting.infra.ledger.signing import key_id, load_public_key, verify_tree_head

FORMAT = "yunting-evidence-bundle"
VERSION = 1
MANIFEST = "manifest.json"
TREE_HEAD = "tree-head.json"
PUBLIC_KEY = "public-key.pem"
README = "README.txt"

README_TEXT = """\
云庭电子证据包 / Yunting evidence bundle

本证据包中的每一项（items/ 目录）都是云庭证据账本中的一条记录，按 RFC 6962 (证书透明度)
方式记入默克尔树。proofs/ 目录中是每一项的包含证明，tree-head.json 是账本用 Ed25519 签名的
树头，public-key.pem 是账本公钥。

离线验证：
    python3 verify_bundle.py 本文件.zip --key-id <法院公布的公钥指纹>
只需要 Python 3 和 cryptography 库。请将公钥指纹与法院公布的指纹核对
（见 /api/ledger/public-key）。任何一项或任何证明被改动一个字节，验证都会指出是哪一项。

Each item (items/) is one entry of the Yunting evidence ledger, a Merkle tree hashed as in
RFC 6962 (Certificate Transparency). proofs/ holds each item's inclusion proof, tree-head.json
the ledger's Ed25519-signed tree head, public-key.pem the ledger's public key.

Verify offline:
    python3 verify_bundle.py this-file.zip --key-id <key id the court publishes>
Needs only Python 3 and the `cryptography` package. Compare the key id with the one the court
publishes (/api/ledger/public-key). If one byte of any item or proof is changed, the verifier
names the item.

Checks, per item:
  leaf_hash = SHA-256(0x00 || bytes of items/<index>.json)
  root      = RFC 9162 section 2.1.3.2 over proofs/<index>.json "audit_path"
  root == tree-head.json "sha256_root_hash", and the tree head's signature verifies:
  Ed25519 over RFC 6962 section 3.5 TreeHeadSignature
  (0x00, 0x01, uint64 timestamp, uint64 tree_size, 32-byte root).
"""


def item_path(index: int) -> str:
    return f"items/{index:012d}.json"


def proof_path(index: int) -> str:
    return f"proofs/{index:012d}.json"


@dataclass(frozen=True, slots=True)
class BundleItem:
    leaf: bytes
    proof: InclusionProof


def build_bundle(
    *,
    case_id: UUID,
    created_at: datetime,
    tree_head: SignedTreeHead,
    public_key_pem: str,
    public_key_url: str,
    items: Sequence[BundleItem],
) -> bytes:
    """The zip bytes of an evidence bundle (deterministic for the same inputs)."""
    listed = []
    files: list[tuple[str, bytes]] = []
    for item in items:
        entry = Entry.from_leaf(item.leaf)
        if entry.index != item.proof.index or item.proof.tree_size != tree_head.tree_size:
            raise ValueError(f"proof for item {entry.index} does not match the tree head")
        listed.append(
            {
                "index": entry.index,
                "item": item_path(entry.index),
                "proof": proof_path(entry.index),
                "kind": entry.kind,
                "content_sha256": entry.content_sha256,
            }
        )
        files.append((item_path(entry.index), item.leaf))
        files.append((proof_path(entry.index), canonical_json(item.proof.to_json())))
    manifest = {
        "format": FORMAT,
        "version": VERSION,
        "case_id": str(case_id),
        "created_at": format_time(created_at),
        "tree_head": TREE_HEAD,
        "public_key": PUBLIC_KEY,
        "public_key_url": public_key_url,
        "items": listed,
    }
    stamp = created_at.astimezone(UTC).timetuple()[:6]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in [
            (MANIFEST, canonical_json(manifest)),
            (README, README_TEXT.encode("utf-8")),
            (PUBLIC_KEY, public_key_pem.encode("ascii")),
            (TREE_HEAD, canonical_json(tree_head.to_json())),
            *files,
        ]:
            info = zipfile.ZipInfo(name, date_time=stamp)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, data)
    return buffer.getvalue()


@dataclass(slots=True)
class ItemResult:
    item: str
    proof: str
    index: int | None = None
    ok: bool = False
    problem: str = ""
    entry: Entry | None = None


@dataclass(slots=True)
class BundleReport:
    tree_head: SignedTreeHead | None = None
    key_id: bytes | None = None
    case_id: str | None = None
    problems: list[str] = field(default_factory=list)
    items: list[ItemResult] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems and all(item.ok for item in self.items)

    @property
    def failed_items(self) -> list[ItemResult]:
        return [item for item in self.items if not item.ok]

    def lines(self) -> list[str]:
        out = []
        if self.key_id is not None:
            out.append(f"key id: {self.key_id.hex()}")
        if self.tree_head is not None:
            out.append(
                f"tree head: {self.tree_head.tree_size} entries, root "
                f"{self.tree_head.root_hash.hex()}, signed {format_time(self.tree_head.timestamp)}"
            )
        out.extend(f"PROBLEM {problem}" for problem in self.problems)
        for item in self.items:
            if item.ok:
                out.append(f"OK   {item.item}")
            else:
                out.append(f"FAIL {item.item}: {item.problem}")
        verdict = "bundle verified" if self.ok else "bundle NOT verified"
        out.append(f"{verdict}: {sum(i.ok for i in self.items)}/{len(self.items)} items proven")
        return out


def _read(archive: zipfile.ZipFile, name: str) -> bytes:
    try:
        return archive.read(name)
    except KeyError:
        raise BundleError(f"{name}: missing from the bundle") from None
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as e:
        # zipfile checks each member's CRC-32, so a flipped byte in the archive lands here.
        raise BundleError(f"{name}: unreadable ({e})") from e


def verify_bundle(data: bytes, *, trusted_key: Ed25519PublicKey | None = None) -> BundleReport:
    """Check every item of a bundle; never raises for a damaged bundle, reports instead.

    ``trusted_key``: the court's published key; without it the bundle's own key is used and
    the caller must compare ``report.key_id`` with the published one.
    """
    report = BundleReport()
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as e:
        report.problems.append(f"not a zip archive: {e}")
        return report
    with archive:
        names = set(archive.namelist())
        listed = _read_manifest(archive, report)
        public_key = _read_public_key(archive, report, trusted_key)
        sth = _read_tree_head(archive, report, public_key)
        found = sorted(n for n in names if n.startswith("items/") and n.endswith(".json"))
        paths: dict[str, str] = {n: "proofs/" + n.removeprefix("items/") for n in found}
        manifest_index: dict[str, int] = {}
        if listed is not None:
            for index, item, proof in listed:
                paths[item] = proof
                manifest_index[item] = index
            for name in found:
                if name not in manifest_index:
                    report.problems.append(f"{name}: present but not listed in {MANIFEST}")
        for name in sorted(paths):
            result = ItemResult(item=name, proof=paths[name], index=manifest_index.get(name))
            _check_item(archive, result, sth)
            report.items.append(result)
    return report


def _read_manifest(
    archive: zipfile.ZipFile, report: BundleReport
) -> list[tuple[int, str, str]] | None:
    try:
        manifest = parse_canonical(_read(archive, MANIFEST))
        if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
            raise BundleError(f"expected format {FORMAT!r}")
        if manifest.get("version") != VERSION:
            raise BundleError(f"expected version {VERSION}, got {manifest.get('version')!r}")
        report.case_id = str(manifest.get("case_id"))
        listed = []
        for raw in manifest["items"]:
            index, item, proof = raw["index"], raw["item"], raw["proof"]
            if not isinstance(index, int) or item != item_path(index) or proof != proof_path(index):
                raise BundleError(f"malformed item listing {raw!r}")
            listed.append((index, item, proof))
        return listed
    except (BundleError, CanonicalJsonError, KeyError, TypeError) as e:
        report.problems.append(f"{MANIFEST}: {e}")
        return None


def _read_public_key(
    archive: zipfile.ZipFile, report: BundleReport, trusted: Ed25519PublicKey | None
) -> Ed25519PublicKey | None:
    try:
        bundled = load_public_key(_read(archive, PUBLIC_KEY))
    except (BundleError, ValueError) as e:
        report.problems.append(f"{PUBLIC_KEY}: {e}")
        bundled = None
    if bundled is not None:
        report.key_id = key_id(bundled)
    if trusted is None:
        return bundled
    if bundled is not None and key_id(bundled) != key_id(trusted):
        report.problems.append(
            f"{PUBLIC_KEY}: key {key_id(bundled).hex()} is not the trusted key "
            f"{key_id(trusted).hex()}"
        )
    report.key_id = key_id(trusted)
    return trusted


def _read_tree_head(
    archive: zipfile.ZipFile, report: BundleReport, public_key: Ed25519PublicKey | None
) -> SignedTreeHead | None:
    try:
        sth = SignedTreeHead.from_json(parse_canonical(_read(archive, TREE_HEAD)))
    except (BundleError, CanonicalJsonError, KeyError, TypeError, ValueError) as e:
        report.problems.append(f"{TREE_HEAD}: {e}")
        return None
    report.tree_head = sth
    if public_key is None:
        report.problems.append(f"{TREE_HEAD}: no public key to check its signature with")
    elif not verify_tree_head(sth, public_key):
        report.problems.append(f"{TREE_HEAD}: signature does not verify with the log's key")
    return sth


def _parse_proof(data: bytes) -> InclusionProof:
    raw = parse_canonical(data)
    if not isinstance(raw, dict) or set(raw) != {
        "leaf_index",
        "tree_size",
        "leaf_hash",
        "audit_path",
    }:
        raise ValueError("expected leaf_index, tree_size, leaf_hash, audit_path")
    index, size, path = raw["leaf_index"], raw["tree_size"], raw["audit_path"]
    if not isinstance(index, int) or not isinstance(size, int) or not isinstance(path, list):
        raise ValueError("leaf_index and tree_size must be integers, audit_path a list")
    return InclusionProof(
        index=index,
        tree_size=size,
        leaf_hash=unb64(raw["leaf_hash"]),
        audit_path=tuple(unb64(element) for element in path),
    )


def _check_item(archive: zipfile.ZipFile, result: ItemResult, sth: SignedTreeHead | None) -> None:
    try:
        leaf = _read(archive, result.item)
    except BundleError as e:
        result.problem = str(e)
        return
    try:
        proof = _parse_proof(_read(archive, result.proof))
    except (BundleError, CanonicalJsonError, ValueError) as e:
        result.problem = f"{result.proof}: {e}"
        return
    try:
        entry = Entry.from_leaf(leaf)
    except InvalidEntryError as e:
        result.problem = f"not a ledger entry ({e}); the item was changed"
        return
    result.entry = entry
    if result.index is None:
        result.index = entry.index
    if not entry.index == proof.index == result.index:
        result.problem = (
            f"index disagrees: item says {entry.index}, proof {proof.index}, "
            f"manifest {result.index}"
        )
        return
    if sth is None:
        result.problem = "no readable tree head to check against"
        return
    if proof.tree_size != sth.tree_size:
        result.problem = (
            f"{result.proof}: proof is for {proof.tree_size} entries, the tree head for "
            f"{sth.tree_size}"
        )
        return
    actual = merkle.leaf_hash(leaf)
    if merkle.verify_inclusion(
        index=proof.index,
        size=proof.tree_size,
        leaf=actual,
        proof=proof.audit_path,
        root=sth.root_hash,
    ):
        if actual != proof.leaf_hash:
            result.problem = f"{result.proof}: its leaf_hash field was changed"
            return
        result.ok = True
        return
    # Tell which file was changed: the proof still proves the hash it names, or it does not.
    if actual != proof.leaf_hash and proof.verify(sth.root_hash):
        result.problem = "the item's bytes were changed: its hash is no longer the logged one"
    else:
        result.problem = f"{result.proof}: the audit path does not lead to the signed root"
