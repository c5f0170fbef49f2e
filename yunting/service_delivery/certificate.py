"""The proof-of-service certificate (电子送达凭证): one A4 PDF per recipient of a service order.

``render_certificate`` is a pure function of ``CertificateData`` and a font file: no clock, no
database, no network. The same input renders byte-identical output, so a certificate can be
re-rendered later and compared with the copy that was handed out. The caller assembles the
data from the service order, the deemed-served result (rule id, version and the events it rests
on) and the ledger's signed tree head; times are shown in the court's time zone, named.

CJK text needs an embedded CJK font. fpdf2 (>= 2.8.6) embeds the CID-keyed CFF outlines of
Debian's Noto CJK collections (``fonts-noto-cjk``) as ``CIDFontType0C`` with a ToUnicode map:
glyphs render and text is extractable. ``find_cjk_font`` looks for it and names the package to
install when it is missing.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import NamedTuple
from urllib.parse import quote
from zoneinfo import ZoneInfo

import segno
from fontTools.ttLib import TTCollection, TTLibError  # type: ignore[import-untyped]
from fpdf import FPDF, FPDF_VERSION
from fpdf.enums import Align, PathPaintRule, TableBordersLayout, WrapMode, XPos, YPos
from fpdf.fonts import FontFace, TTFFont

from yunting.service_delivery.model import ConsentTier, EvidenceKind
from yunting.service_delivery.ports import Channel

# Debian's CJK fonts, best first: (path, package). Noto Sans CJK is what the browser tests
# already install; the others are smaller TrueType alternatives a court may have instead.
DEBIAN_CJK_FONTS: tuple[tuple[Path, str], ...] = (
    (Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc"), "fonts-noto-cjk"),
    (Path("/usr/share/fonts/opentype/noto/NotoSerifCJK-Regular.ttc"), "fonts-noto-cjk"),
    (Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"), "fonts-wqy-microhei"),
    (Path("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc"), "fonts-wqy-zenhei"),
    (Path("/usr/share/fonts/truetype/arphic/uming.ttc"), "fonts-arphic-uming"),
)
CJK_FONT_PACKAGE = "fonts-noto-cjk"

# Earlier fpdf2 releases cannot select a face of a TTC collection and embed CFF outlines as if
# they were TrueType: the PDF then shows nothing where the Chinese text should be.
_MIN_FPDF = (2, 8, 6)
_HEX64 = re.compile(r"[0-9a-f]{64}")


class CertificateError(ValueError):
    """The certificate cannot be rendered from this input."""


class CjkFontNotFoundError(CertificateError):
    """No usable CJK font file: the message names the Debian package that provides one."""


class MissingGlyphError(CertificateError):
    """The font has no glyph for some character of the certificate (it would print as a box)."""


@dataclass(frozen=True, slots=True)
class CertificateEvent:
    """One evidence event as the certificate lists it (a row of the timeline)."""

    at: datetime  # timezone-aware; shown in the court's time zone
    kind: EvidenceKind
    channel: Channel | None  # None for events of the order itself (SERVICE_ORDERED, outages)
    summary: str  # short and free of personal data: "DLR stat:DELIVRD err:000"
    sha256: str  # of the event's verbatim record, lowercase hex
    ledger_index: int | None  # its leaf in the evidence ledger, once entered
    basis: bool = False  # one of the events the served / not-served result rests on


@dataclass(frozen=True, slots=True)
class ServiceAddress:
    channel: Channel
    masked_address: str  # "138****8000", "z***@example.cn": the certificate never shows more


@dataclass(frozen=True, slots=True)
class Deadline:
    """A period that runs from service, e.g. 上诉期限 (appeal period), and its last day."""

    name: str
    last_day: date  # a calendar day in the court's time zone


@dataclass(frozen=True, slots=True)
class CertificateData:
    """Everything a certificate shows, as plain data. Datetimes must be timezone-aware."""

    certificate_no: str
    court_name: str
    case_number: str  # (2024)京0108民初12345号
    case_title: str
    document_title: str
    document_sha256: str
    document_pages: int | None
    document_size: int  # bytes
    recipient_name: str
    recipient_role: str  # 被告 Defendant
    addresses: tuple[ServiceAddress, ...]
    consent_tier: ConsentTier
    legal_basis: str  # the service order's basis: 《民事诉讼法》第九十条 ...
    served: bool
    served_at: datetime | None
    rule_id: str
    rule_version: str
    rule_text: str  # the rule's legal text or citation, as the rule set words it
    events: tuple[CertificateEvent, ...]  # in ledger order
    tree_size: int
    root_hash: str
    tree_signed_at: datetime
    verify_url: str
    generated_at: datetime  # also the PDF's creation date, so re-rendering is byte-identical
    timezone: ZoneInfo  # the court's, e.g. Asia/Shanghai
    deadline: Deadline | None = None

    def __post_init__(self) -> None:
        for name in ("document_sha256", "root_hash"):
            _check_hex64(name, getattr(self, name))
        for name in ("tree_signed_at", "generated_at"):
            _check_aware(name, getattr(self, name))
        if self.served_at is not None:
            _check_aware("served_at", self.served_at)
        if self.served and self.served_at is None:
            raise CertificateError("expected served_at for a served recipient, got None")
        if not self.served and self.served_at is not None:
            raise CertificateError(f"expected no served_at when not served, got {self.served_at}")
        for i, event in enumerate(self.events):
            _check_aware(f"events[{i}].at", event.at)
            _check_hex64(f"events[{i}].sha256", event.sha256)
        if not self.verify_url.startswith(("https://", "http://")):
            raise CertificateError(f"expected an http(s) verify_url, got {self.verify_url!r}")


def _check_hex64(name: str, value: str) -> None:
    if not _HEX64.fullmatch(value):
        raise CertificateError(f"expected {name} as 64 lowercase hex digits, got {value!r}")


def _check_aware(name: str, value: datetime) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise CertificateError(f"expected {name} to be timezone-aware, got {value.isoformat()}")


# Labels, Chinese first as the court reads them, English for the foreign party. -------------

EVENT_LABELS: dict[EvidenceKind, tuple[str, str]] = {
    EvidenceKind.SERVICE_ORDERED: ("决定送达", "Service ordered"),
    EvidenceKind.CONSENT_RECORDED: ("记录同意", "Consent recorded"),
    EvidenceKind.SUBMISSION_ACCEPTED: ("受理发送", "Submission accepted"),
    EvidenceKind.HANDED_TO_PROVIDER: ("交付通道", "Handed to provider"),
    EvidenceKind.DELIVERY_RECEIPT: ("送达回执", "Delivery receipt"),
    EvidenceKind.DELIVERY_FAILED: ("投递失败", "Delivery failed"),
    EvidenceKind.CONTENT_ACCESSED: ("查阅文书", "Content accessed"),
    EvidenceKind.ACKNOWLEDGED: ("确认收悉", "Acknowledged"),
    EvidenceKind.REPLY_RECEIVED: ("受送达人回复", "Reply received"),
    EvidenceKind.REJECTED: ("报告问题", "Problem reported"),
    EvidenceKind.FALLBACK_INITIATED: ("转用他途", "Fallback initiated"),
    EvidenceKind.PLATFORM_OUTAGE_START: ("平台故障开始", "Platform outage began"),
    EvidenceKind.PLATFORM_OUTAGE_END: ("平台故障结束", "Platform outage ended"),
    EvidenceKind.LITIGATION_ACT: ("诉讼行为", "Litigation act"),
    EvidenceKind.DEEMED_SERVED: ("视为送达", "Deemed served"),
}

CHANNEL_LABELS: dict[Channel, tuple[str, str]] = {
    Channel.SMS: ("短信", "SMS"),
    Channel.EMAIL: ("电子邮件", "Email"),
}

# The two ways an address may be used (model.ConsentTier), in the words a recipient can check.
CONSENT_TIER_TEXT: dict[ConsentTier, str] = {
    ConsentTier.TIER1: (
        "第一类：受送达人主动提供或者确认的电子地址。送达信息到达该特定系统即为送达"
        "（《人民法院在线诉讼规则》第二十九条、第三十一条第一款）。\n"
        "Tier 1: an address the recipient provided or confirmed. Service is effected when the "
        "message reaches that system."
    ),
    ConsentTier.TIER2: (
        "第二类：受送达人同意电子送达，但电子地址系法院查明。受送达人回复已收悉、确认收悉"
        "或者作出相应诉讼行为时即为送达（《人民法院在线诉讼规则》第三十一条第二款）。\n"
        "Tier 2: the recipient consented to electronic service but the court found the address. "
        "Service is effected on a reply, an acknowledgement or a litigation act showing receipt."
    ),
}


# Public helpers. ------------------------------------------------------------------------------


def find_cjk_font(
    configured: Path | None = None,
    *,
    candidates: Sequence[tuple[Path, str]] = DEBIAN_CJK_FONTS,
) -> Path:
    """The CJK font file to embed: ``configured`` if given (it must exist), else the first of
    ``candidates`` present. Raises ``CjkFontNotFoundError`` naming the package to install."""
    if configured is not None:
        if not configured.is_file():
            raise CjkFontNotFoundError(
                f"expected a CJK font file at {configured}, got nothing there; install the "
                f"Debian package {CJK_FONT_PACKAGE} or configure another CJK font"
            )
        return configured
    for path, _package in candidates:
        if path.is_file():
            return path
    searched = ", ".join(f"{path} ({package})" for path, package in candidates)
    raise CjkFontNotFoundError(
        f"no CJK font found (searched {searched}); install the Debian package "
        f"{CJK_FONT_PACKAGE} (apt-get install {CJK_FONT_PACKAGE})"
    )


def font_face_index(font_path: Path) -> int:
    """The face of a TTC/OTC collection to use: Simplified Chinese glyph forms if present."""
    if font_path.suffix.lower() not in {".ttc", ".otc"}:
        return 0
    try:
        collection = TTCollection(str(font_path), lazy=True)
    except (OSError, TTLibError) as e:
        raise CertificateError(f"expected a TTC/OTC font collection at {font_path}, got {e}") from e
    try:
        families = [str(face["name"].getDebugName(1) or "") for face in collection.fonts]
    finally:
        collection.close()
    proportional = [(i, f) for i, f in enumerate(families) if "Mono" not in f]
    for i, family in proportional:
        # Noto CJK: "Noto Sans CJK SC"; AR PL: "AR PL UMing CN". The JP face (index 0 of Noto)
        # would draw some hanzi in their Japanese forms.
        if family.endswith((" SC", " CN")):
            return i
    return proportional[0][0] if proportional else 0


class CertificateFilename(NamedTuple):
    name: str  # 电子送达凭证-(2024)京0108民初12345号-张三-SD-2024-000123.pdf
    ascii_name: str  # the fallback for clients that cannot read RFC 5987 filename*

    def content_disposition(self, *, inline: bool = False) -> str:
        """A ``Content-Disposition`` value with both names (RFC 6266 section 4.3)."""
        kind = "inline" if inline else "attachment"
        return f"{kind}; filename=\"{self.ascii_name}\"; filename*=UTF-8''{quote(self.name)}"


def certificate_filename(data: CertificateData) -> CertificateFilename:
    """A stable file name for the certificate, and an ASCII fallback."""
    parts = (
        "电子送达凭证",
        _filename_part(data.case_number),
        _filename_part(data.recipient_name),
        _filename_part(data.certificate_no),
    )
    ascii_no = re.sub(r"[^A-Za-z0-9._-]+", "_", data.certificate_no).strip("._") or "unnumbered"
    return CertificateFilename(
        name="-".join(part for part in parts if part) + ".pdf",
        ascii_name=f"certificate-of-service-{ascii_no}.pdf",
    )


def _filename_part(text: str) -> str:
    # Characters that Windows, macOS or a shell treat specially, and any whitespace or control
    # character, become "_"; a case number such as (2024)京0108民初12345号 stays readable.
    text = unicodedata.normalize("NFC", text)
    cleaned = "".join(
        "_" if ch in '\\/:*?"<>|' or ch.isspace() or unicodedata.category(ch)[0] == "C" else ch
        for ch in text
    )
    return re.sub(r"_+", "_", cleaned).strip("._")


# Rendering. -----------------------------------------------------------------------------------

_FONT = "cjk"
_INK = (20, 20, 20)
_MUTED = (95, 95, 95)
_ACCENT = (25, 55, 110)
_RULE = (170, 170, 170)
_HEAD_FILL = (228, 232, 240)
_BASIS_FILL = (255, 243, 205)
_SERVED = (20, 110, 50)
_NOT_SERVED = (160, 30, 30)
_MARGIN = 15.0
_FOOTER_HEIGHT = 20.0
_QR_SIZE = 32.0  # mm; at 96 dpi a module is still several pixels for a phone camera
_VERIFY_NOTE = (
    "核验方法：扫描二维码或访问凭证所载核验网址，将文书及各事件的 SHA-256 与已签名的存证树头"
    "核对（RFC 6962）。To verify: scan the QR code or open the verify URL and check the SHA-256 "
    "of the document and of each event against the signed tree head."
)


def render_certificate(data: CertificateData, *, font_path: Path) -> bytes:
    """Render the certificate as an A4 PDF. Pure: the same data and font give the same bytes.

    Raises ``CjkFontNotFoundError`` if ``font_path`` is missing and ``MissingGlyphError`` if the
    font cannot show some character (a certificate must not print a name as boxes).
    """
    if tuple(int(p) for p in re.findall(r"\d+", FPDF_VERSION)[:3]) < _MIN_FPDF:
        raise CertificateError(
            f"expected fpdf2 >= {'.'.join(map(str, _MIN_FPDF))} to embed CJK fonts, "
            f"got {FPDF_VERSION}"
        )
    font_path = find_cjk_font(font_path)
    pdf = _CertificatePdf(data)
    try:
        try:
            pdf.add_font(_FONT, "", font_path, collection_font_number=font_face_index(font_path))
        except TTLibError as e:
            raise CertificateError(
                f"expected a TrueType or OpenType font at {font_path}, got {e}"
            ) from e
        pdf.set_font(_FONT, size=9)
        pdf.add_page()
        _title_block(pdf, data)
        _summary(pdf, data)
        _timeline(pdf, data)
        _check_glyphs(pdf, font_path)
        return bytes(pdf.output())
    finally:
        # fpdf2 closes the font file after a successful output(), not when rendering failed.
        for font in pdf.fonts.values():
            if isinstance(font, TTFFont):
                font.close()


class _CertificatePdf(FPDF):
    def __init__(self, data: CertificateData) -> None:
        super().__init__(orientation="portrait", unit="mm", format="A4")
        self._data = data
        self.set_margins(_MARGIN, _MARGIN, _MARGIN)
        self.set_auto_page_break(auto=True, margin=_FOOTER_HEIGHT)
        self.alias_nb_pages("{nb}")
        self.set_title(f"电子送达凭证 {data.certificate_no}")
        self.set_subject(f"{data.case_number} {data.document_title} — {data.recipient_name}")
        self.set_author(data.court_name)
        self.set_creator("Yunting 云庭")
        self.set_keywords(f"电子送达凭证 certificate of electronic service {data.case_number}")
        self.set_lang("zh-CN")
        # The creation date is part of the bytes: take it from the data, never from the clock.
        self.set_creation_date(data.generated_at)

    def header(self) -> None:
        if self.page_no() == 1:
            return
        self.set_font(_FONT, size=7.5)
        self.set_text_color(*_MUTED)
        self.cell(
            0,
            4,
            f"电子送达凭证 Certificate of electronic service · {self._data.certificate_no}"
            f" · {self._data.case_number} · {self._data.recipient_name}",
            new_x=XPos.LMARGIN,
            new_y=YPos.NEXT,
        )
        self._rule(self.get_y() + 1)
        self.set_y(self.get_y() + 4)
        self.set_text_color(*_INK)

    def footer(self) -> None:
        top = self.h - _FOOTER_HEIGHT + 2
        self._rule(top)
        self.set_xy(self.l_margin, top + 1.5)
        self.set_font(_FONT, size=7)
        self.set_text_color(*_MUTED)
        width = self.epw - 32
        _multi_cell(self, width, 3.4, _VERIFY_NOTE, new_y=YPos.TOP)
        self.set_xy(self.w - self.r_margin - 30, top + 1.5)
        self.cell(30, 3.4, f"第 {self.page_no()} 页 / 共 {{nb}} 页", align=Align.R)
        self.set_xy(self.w - self.r_margin - 30, top + 4.9)
        self.cell(30, 3.4, f"Page {self.page_no()} of {{nb}}", align=Align.R)
        self.set_text_color(*_INK)

    def _rule(self, y: float) -> None:
        self.set_draw_color(*_RULE)
        self.set_line_width(0.2)
        self.line(self.l_margin, y, self.w - self.r_margin, y)


def _title_block(pdf: _CertificatePdf, data: CertificateData) -> None:
    qr_x = pdf.w - pdf.r_margin - _QR_SIZE
    _draw_qr(pdf, data.verify_url, qr_x, _MARGIN, _QR_SIZE)
    pdf.set_font(_FONT, size=7)
    pdf.set_text_color(*_MUTED)
    pdf.set_xy(qr_x - 4, _MARGIN + _QR_SIZE + 0.5)
    pdf.cell(_QR_SIZE + 8, 3.5, "扫码核验 Scan to verify", align=Align.C)

    text_width = qr_x - pdf.l_margin - 6
    pdf.set_xy(pdf.l_margin, _MARGIN + 2)
    pdf.set_text_color(*_INK)
    pdf.set_font(_FONT, size=22)
    pdf.cell(text_width, 11, "电子送达凭证", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_font(_FONT, size=11)
    pdf.set_text_color(*_MUTED)
    pdf.cell(
        text_width, 6, "Certificate of electronic service", new_x=XPos.LMARGIN, new_y=YPos.NEXT
    )
    pdf.ln(2)
    pdf.set_font(_FONT, size=13)
    pdf.set_text_color(*_ACCENT)
    _multi_cell(pdf, text_width, 6.5, data.court_name)
    pdf.set_font(_FONT, size=9)
    pdf.set_text_color(*_INK)
    pdf.cell(
        text_width,
        5,
        f"凭证编号 Certificate no.  {data.certificate_no}",
        new_x=XPos.LMARGIN,
        new_y=YPos.NEXT,
    )
    pdf.set_y(max(pdf.get_y(), _MARGIN + _QR_SIZE + 5) + 2)
    pdf.set_text_color(*_INK)


def _summary(pdf: _CertificatePdf, data: CertificateData) -> None:
    tz = data.timezone
    size = f"{data.document_size:,} 字节 bytes"
    if data.document_pages is not None:
        size = f"{data.document_pages} 页 pages · {size}"
    addresses = "\n".join(
        f"{CHANNEL_LABELS[a.channel][0]} {CHANNEL_LABELS[a.channel][1]}：{a.masked_address}"
        for a in data.addresses
    )
    _section(pdf, "案件与文书", "Case and document")
    _pairs(
        pdf,
        [
            ("案号", "Case no.", data.case_number),
            ("案件", "Case", data.case_title),
            ("送达文书", "Document", data.document_title),
            ("文书哈希", "SHA-256", data.document_sha256),
            ("文书大小", "Size", size),
        ],
    )
    _section(pdf, "受送达人", "Recipient")
    _pairs(
        pdf,
        [
            ("受送达人", "Recipient", data.recipient_name),
            ("诉讼地位", "Role", data.recipient_role),
            ("送达地址", "Addresses", addresses or "—"),
            ("地址类别", "Consent tier", CONSENT_TIER_TEXT[data.consent_tier]),
            ("送达依据", "Legal basis", data.legal_basis),
        ],
    )

    _section(pdf, "送达结果", "Result")
    if data.served_at is not None:
        status = f"已送达 Served — {_when(data.served_at, tz)}"
        colour = _SERVED
    else:
        status = "未送达 Not served"
        colour = _NOT_SERVED
    _paragraph(pdf, status, size=12, colour=colour)
    basis = "\n".join(
        f"{_time(e.at, tz)}  {EVENT_LABELS[e.kind][0]} {EVENT_LABELS[e.kind][1]}"
        f"  {_ledger(e.ledger_index)}  {e.sha256[:16]}…"
        for e in data.events
        if e.basis
    )
    rows = [
        ("适用规则", "Rule", f"{data.rule_id}  版本 version {data.rule_version}"),
        ("规则内容", "Rule text", data.rule_text),
        ("认定依据", "Rests on", basis or "—"),
    ]
    if data.deadline is not None:
        rows.append(
            (
                "期限",
                "Deadline",
                f"{data.deadline.name}：届满日 last day {data.deadline.last_day.isoformat()}"
                f"（{tz.key}）",
            )
        )
    _pairs(pdf, rows)

    _section(pdf, "存证与核验", "Evidence ledger and verification")
    _pairs(
        pdf,
        [
            ("存证树大小", "Tree size", f"{data.tree_size:,}"),
            ("树根哈希", "Root hash", data.root_hash),
            ("签名时间", "Signed at", _when(data.tree_signed_at, tz)),
            ("核验网址", "Verify at", data.verify_url),
            ("凭证生成", "Generated", _when(data.generated_at, tz)),
        ],
    )


def _timeline(pdf: _CertificatePdf, data: CertificateData) -> None:
    tz = data.timezone
    _section(pdf, "送达过程记录", "Event timeline")
    _paragraph(
        pdf,
        f"时间为 {tz.key} 时间；底色标示的为认定送达结果所依据的事件。 "
        f"Times are {tz.key}; shaded rows are the events the result rests on.",
        size=7.5,
        colour=_MUTED,
    )
    pdf.ln(1)
    if not data.events:
        _paragraph(pdf, "无事件记录。No events recorded.", size=9)
    else:
        _event_table(pdf, data)
    pdf.ln(3)
    _paragraph(pdf, "（以下无正文 End of certificate）", size=7.5, colour=_MUTED, align=Align.C)


def _event_table(pdf: _CertificatePdf, data: CertificateData) -> None:
    tz = data.timezone
    pdf.set_draw_color(*_RULE)
    pdf.set_line_width(0.15)
    table = _Table(
        pdf,
        col_widths=(7, 25, 33, 17, 50, 27, 21),
        size=7.5,
        padding=(1, 1.2),
        headings=True,
    )
    table.row(
        (
            "#",
            f"时间 Time ({tz.key})",
            "事件 Event",
            "渠道 Channel",
            "摘要 Summary",
            "SHA-256",
            "存证序号 Ledger index",
        )
    )
    for n, event in enumerate(data.events, start=1):
        local = event.at.astimezone(tz)
        zh, en = EVENT_LABELS[event.kind]
        channel = "—" if event.channel is None else "\n".join(CHANNEL_LABELS[event.channel])
        table.row(
            (
                str(n),
                f"{local:%Y-%m-%d}\n{local:%H:%M:%S}",
                f"{zh}\n{en}",
                channel,
                event.summary,
                f"{event.sha256[:12]}…",
                _ledger(event.ledger_index),
            ),
            fill=_BASIS_FILL if event.basis else None,
        )
    table.render()


def _section(pdf: _CertificatePdf, zh: str, en: str) -> None:
    # Keep a heading with at least a few lines of its content.
    if pdf.will_page_break(24):
        pdf.add_page()
    pdf.ln(2)
    pdf.set_font(_FONT, size=11)
    pdf.set_text_color(*_ACCENT)
    pdf.cell(0, 6, f"{zh}  {en}", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_draw_color(*_ACCENT)
    pdf.set_line_width(0.3)
    pdf.line(pdf.l_margin, pdf.get_y(), pdf.w - pdf.r_margin, pdf.get_y())
    pdf.ln(1)
    pdf.set_font(_FONT, size=9)
    pdf.set_text_color(*_INK)


def _paragraph(
    pdf: FPDF,
    text: str,
    *,
    size: float,
    colour: tuple[int, int, int] = _INK,
    align: Align = Align.L,
) -> None:
    pdf.set_font(_FONT, size=size)
    pdf.set_text_color(*colour)
    _multi_cell(pdf, pdf.epw, size * 0.5, text, align=align)
    pdf.set_font(_FONT, size=9)
    pdf.set_text_color(*_INK)


def _multi_cell(
    pdf: FPDF,
    width: float,
    line_height: float,
    text: str,
    *,
    align: Align = Align.L,
    new_y: YPos = YPos.NEXT,
) -> None:
    # Without padding, multi_cell keeps c_margin clear on both sides of the text.
    wrapped = _wrap(pdf, text, width - 2 * pdf.c_margin)
    pdf.multi_cell(
        width,
        line_height,
        wrapped,
        align=align,
        # Lines are already broken; CHAR only guards against a rounding difference.
        wrapmode=WrapMode.CHAR,
        new_x=XPos.LMARGIN,
        new_y=new_y,
    )


def _pairs(pdf: _CertificatePdf, rows: Sequence[tuple[str, str, str]]) -> None:
    table = _Table(pdf, col_widths=(36, 144), size=9, padding=(0.7, 1), headings=False)
    label = FontFace(color=_MUTED, size_pt=7.5)
    for zh, en, value in rows:
        table.row((f"{zh} {en}", value), styles=(label, None))
    table.render()


class _Table:
    """Rows for ``FPDF.table`` with every cell wrapped by ``_wrap`` first (fpdf2 breaks lines
    only at spaces, or anywhere, and Chinese needs neither: see ``_wrap``)."""

    def __init__(
        self,
        pdf: FPDF,
        *,
        col_widths: tuple[float, ...],
        size: float,
        padding: tuple[float, float],
        headings: bool,
    ) -> None:
        self._pdf = pdf
        self._col_widths = col_widths
        self._size = size
        self._padding = padding
        self._headings = headings
        self._rows: list[tuple[tuple[str, ...], tuple[FontFace | None, ...], FontFace | None]] = []

    def row(
        self,
        cells: tuple[str, ...],
        *,
        styles: tuple[FontFace | None, ...] | None = None,
        fill: tuple[int, int, int] | None = None,
    ) -> None:
        styles = styles or (None,) * len(cells)
        wrapped = tuple(
            _wrap(
                self._pdf,
                text,
                width - 2 * self._padding[1],
                size=(style.size_pt if style and style.size_pt else self._size),
            )
            for text, width, style in zip(cells, self._col_widths, styles, strict=True)
        )
        self._rows.append((wrapped, styles, None if fill is None else FontFace(fill_color=fill)))

    def render(self) -> None:
        self._pdf.set_font(_FONT, size=self._size)
        with self._pdf.table(
            # Fractions of the full text width (180 mm), which the columns add up to: mm.
            col_widths=self._col_widths,
            width=sum(self._col_widths),
            first_row_as_headings=self._headings,
            headings_style=FontFace(emphasis="", fill_color=_HEAD_FILL, color=_ACCENT),
            borders_layout=(
                TableBordersLayout.HORIZONTAL_LINES if self._headings else TableBordersLayout.NONE
            ),
            text_align=Align.L,
            v_align="TOP",
            line_height=self._size * 0.48,
            padding=self._padding,
            # Lines are already broken; CHAR only guards against a rounding difference.
            wrapmode=WrapMode.CHAR,
            repeat_headings=1,
        ) as table:
            for cells, styles, row_style in self._rows:
                row = table.row(style=row_style)
                for text, style in zip(cells, styles, strict=True):
                    row.cell(text, style=style)
        self._pdf.set_font(_FONT, size=9)


# Line breaking for mixed Chinese and Latin text: a break is allowed at a space and on either
# side of a wide (CJK) character, except before closing and after opening punctuation (the
# usual 禁则 rules); a Latin word (a hash, a URL) is split only if it is wider than the line.
_NO_LINE_START = frozenset("，。、；：？！）》」』】〕〉”’…,.;:!?)]}%")
_NO_LINE_END = frozenset("（《「『【〔〈“‘([{")


def _wrap(pdf: FPDF, text: str, width: float, *, size: float | None = None) -> str:
    """``text`` with line breaks inserted so that every line fits ``width`` mm."""
    if size is not None:
        pdf.set_font(_FONT, size=size)
    limit = width - 0.4  # below fpdf2's own measurement, whatever its rounding
    lines: list[str] = []
    for paragraph in text.split("\n"):
        line = ""
        for segment in _segments(paragraph):
            candidate = line + segment
            if pdf.get_string_width(candidate.rstrip()) <= limit:
                line = candidate
                continue
            if line.strip():
                lines.append(line.rstrip())
            line = segment.lstrip()
            while pdf.get_string_width(line) > limit and len(line) > 1:
                cut = _longest_fitting_prefix(pdf, line, limit)
                lines.append(line[:cut])
                line = line[cut:]
        lines.append(line.rstrip())
    return "\n".join(lines)


def _segments(paragraph: str) -> list[str]:
    segments: list[str] = []
    for ch in paragraph:
        if segments and not _break_allowed(segments[-1][-1], ch):
            segments[-1] += ch
        else:
            segments.append(ch)
    return segments


def _break_allowed(before: str, after: str) -> bool:
    if after == " ":
        return False  # a space stays with the text before it and is trimmed at a line end
    if before == " ":
        return True
    if after in _NO_LINE_START or before in _NO_LINE_END:
        return False
    return _is_wide(before) or _is_wide(after)


def _is_wide(ch: str) -> bool:
    return unicodedata.east_asian_width(ch) in ("W", "F")


def _longest_fitting_prefix(pdf: FPDF, text: str, limit: float) -> int:
    cut = 1
    while cut < len(text) and pdf.get_string_width(text[: cut + 1]) <= limit:
        cut += 1
    return cut


def _draw_qr(pdf: FPDF, url: str, x: float, y: float, size: float) -> None:
    # Drawn as vector rectangles (one per run of dark modules, all in one filled path) so the
    # code stays sharp at any zoom and printer resolution, with no seams between modules.
    qr = segno.make(url, error="m", micro=False)
    rows = [list(row) for row in qr.matrix_iter(scale=1, border=0)]
    module = size / len(rows)
    with pdf.new_path(paint_rule=PathPaintRule.FILL_NONZERO) as path:
        path.style.fill_color = "#000000"
        for r, row in enumerate(rows):
            c = 0
            while c < len(row):
                if not row[c]:
                    c += 1
                    continue
                start = c
                while c < len(row) and row[c]:
                    c += 1
                path.rectangle(x + start * module, y + r * module, (c - start) * module, module)


def _check_glyphs(pdf: FPDF, font_path: Path) -> None:
    for font in pdf.fonts.values():
        if isinstance(font, TTFFont) and font.missing_glyphs:
            chars = ", ".join(f"{chr(cp)!r} U+{cp:04X}" for cp in font.missing_glyphs[:10])
            raise MissingGlyphError(
                f"expected {font_path} to have a glyph for every character, got none for "
                f"{len(font.missing_glyphs)} of them: {chars}"
            )


def _when(at: datetime, tz: ZoneInfo) -> str:
    local = at.astimezone(tz)
    offset = local.strftime("%z")
    return f"{local:%Y-%m-%d %H:%M:%S}（{tz.key}，UTC{offset[:3]}:{offset[3:]}）"


def _time(at: datetime, tz: ZoneInfo) -> str:
    return f"{at.astimezone(tz):%Y-%m-%d %H:%M:%S}"


def _ledger(index: int | None) -> str:
    return "—" if index is None else f"#{index}"
