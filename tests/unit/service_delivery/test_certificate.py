"""The proof-of-service certificate, proven by reading back what was rendered: the PDF opened
with PDFium, its text extracted, its pages rasterised, the CJK glyphs compared with the font's
own rendering and the QR code decoded with zxing-cpp."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt
import pypdfium2 as pdfium  # type: ignore[import-untyped]
import pytest
import zxingcpp
from fontTools import subset  # type: ignore[import-untyped]
from PIL import Image, ImageDraw, ImageFont

from yunting.service_delivery.certificate import (
    CHANNEL_LABELS,
    CONSENT_TIER_TEXT,
    EVENT_LABELS,
    CertificateData,
    CertificateError,
    CertificateEvent,
    CjkFontNotFoundError,
    Deadline,
    MissingGlyphError,
    ServiceAddress,
    certificate_filename,
    find_cjk_font,
    font_face_index,
    render_certificate,
)
from yunting.service_delivery.model import ConsentTier, EvidenceKind
from yunting.service_delivery.ports import Channel

REPO = Path(__file__).resolve().parents[3]
SCALE = 2  # 144 dpi
START = datetime(2024, 5, 6, 6, 3, 22, tzinfo=UTC)  # 14:03:22 in Beijing
SERVED_AT = START + timedelta(minutes=28)  # 06:31:22 UTC, 14:31:22 in Beijing

Pixels = npt.NDArray[np.uint8]


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def sample_data(recipient_name: str = "李四", events: int = 60) -> CertificateData:
    kinds = list(EvidenceKind)
    channels = [Channel.SMS, Channel.EMAIL, None]
    return CertificateData(
        certificate_no="SD-2024-000123",
        court_name="北京市海淀区人民法院",
        case_number="(2024)京0108民初12345号",
        case_title="张三诉北京某某科技有限公司买卖合同纠纷",
        document_title="民事判决书",
        document_sha256=_sha("document"),
        document_pages=12,
        document_size=245_760,
        recipient_name=recipient_name,
        recipient_role="被告 Defendant",
        addresses=(
            ServiceAddress(Channel.SMS, "138****8000"),
            ServiceAddress(Channel.EMAIL, "l***@example.cn"),
        ),
        consent_tier=ConsentTier.TIER1,
        legal_basis="《中华人民共和国民事诉讼法》第九十条；《人民法院在线诉讼规则》第二十九条至第三十二条",
        served=True,
        served_at=SERVED_AT,
        rule_id="cn.deemed-served.tier1",
        rule_version="2024.1",
        rule_text=(
            "《人民法院在线诉讼规则》第三十一条第一款：人民法院向受送达人主动提供或者确认的电子"
            "地址进行送达的，送达信息到达受送达人特定系统时，即为送达。"
        ),
        events=tuple(
            CertificateEvent(
                at=START + timedelta(minutes=7 * i),
                kind=kinds[i % len(kinds)],
                channel=channels[i % 3],
                summary=f"回执 DLR id:{1000 + i} stat:DELIVRD err:000 done:2405061403",
                sha256=_sha(f"event {i}"),
                ledger_index=4000 + i if i % 5 else None,
                basis=i == 4,
            )
            for i in range(events)
        ),
        tree_size=123_456,
        root_hash=_sha("root"),
        tree_signed_at=START + timedelta(hours=1),
        verify_url="https://yunting.example.cn/verify/SD-2024-000123?d=" + _sha("document")[:16],
        generated_at=START + timedelta(hours=2),
        timezone=ZoneInfo("Asia/Shanghai"),
        deadline=Deadline("上诉期限 Appeal period", date(2024, 5, 21)),
    )


@pytest.fixture(scope="module")
def font() -> Path:
    return find_cjk_font()


@pytest.fixture(scope="module")
def pdf(font: Path) -> bytes:
    return render_certificate(sample_data(), font_path=font)


def _texts(pdf: bytes) -> list[str]:
    doc = pdfium.PdfDocument(pdf)
    return [str(doc[i].get_textpage().get_text_range()) for i in range(len(doc))]


def _render_page1(pdf: bytes) -> Pixels:
    page = pdfium.PdfDocument(pdf)[0]
    image = page.render(scale=SCALE).to_pil().convert("L")
    return np.asarray(image, dtype=np.uint8)


def _text_region(pdf: bytes, text: str) -> Pixels:
    """The pixels of page 1 where PDFium says ``text`` is drawn."""
    page = pdfium.PdfDocument(pdf)[0]
    textpage = page.get_textpage()
    match = textpage.search(text, match_case=True).get_next()
    assert match is not None, f"{text!r} not on page 1"
    first, count = match
    # Loose boxes span the font's ascent and descent, so the same place gives the same region
    # whatever the glyphs' own extents.
    boxes = [textpage.get_charbox(i, loose=True) for i in range(first, first + count)]
    _, height = page.get_size()
    left, right = min(b[0] for b in boxes), max(b[2] for b in boxes)
    bottom, top = min(b[1] for b in boxes), max(b[3] for b in boxes)
    pixels = _render_page1(pdf)
    return pixels[
        int((height - top) * SCALE) - 2 : int((height - bottom) * SCALE) + 3,
        int(left * SCALE) - 2 : int(right * SCALE) + 3,
    ]


def _reference(font: Path, text: str, px: int) -> Pixels:
    """``text`` drawn by FreeType straight from the font file, without any PDF in between."""
    face = ImageFont.truetype(str(font), px, index=font_face_index(font))
    image = Image.new("L", (px * (len(text) + 2), px * 2), 255)
    ImageDraw.Draw(image).text((px, px // 2), text, font=face, fill=0)
    return np.asarray(image, dtype=np.uint8)


def _shape(pixels: Pixels) -> npt.NDArray[np.float64]:
    # Crop to the ink and scale to a fixed size, so two renderings of the same text line up.
    ys, xs = np.nonzero(pixels < 128)
    assert ys.size, "no ink where the text should be"
    ink = pixels[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
    return np.asarray(Image.fromarray(ink).resize((120, 40), Image.Resampling.BILINEAR), float)


def _correlation(a: Pixels, b: Pixels) -> float:
    x, y = _shape(a), _shape(b)
    x, y = x - x.mean(), y - y.mean()
    return float((x * y).sum() / np.sqrt((x * x).sum() * (y * y).sum()))


def test_long_timeline_flows_across_pages_with_repeated_headings(pdf: bytes) -> None:
    texts = _texts(pdf)
    assert len(texts) > 1
    for number, text in enumerate(texts, start=1):
        assert f"第 {number} 页 / 共 {len(texts)} 页" in text
    # Every page after the first continues the table under its own heading row.
    for text in texts[1:]:
        assert "摘要 Summary" in text
        assert "SD-2024-000123" in text  # the running head names the certificate
    everything = "".join(texts).replace("\r\n", "")
    for event in sample_data().events:
        assert event.sha256[:12] in everything
    assert "#4059" in everything  # the last event's ledger index
    assert "以下无正文" in texts[-1]


def test_page_one_text_is_extractable_chinese(pdf: bytes) -> None:
    text = _texts(pdf)[0]
    for expected in (
        "电子送达凭证",
        "Certificate of electronic service",
        "北京市海淀区人民法院",
        "(2024)京0108民初12345号",
        "李四",
        "民事判决书",
        _sha("document"),
        "cn.deemed-served.tier1",
        "138****8000",
    ):
        assert expected in text


def test_times_are_shown_in_the_court_time_zone_and_named(pdf: bytes) -> None:
    texts = _texts(pdf)
    assert "已送达 Served — 2024-05-06 14:31:22（Asia/Shanghai，UTC+08:00）" in texts[0]
    assert "06:31:22" not in "".join(texts)
    # The first event of the timeline (06:03:22 UTC), in its table row.
    assert "2024-05-06\r\n14:03:22" in "".join(texts)
    assert "上诉期限 Appeal period：届满日 last day 2024-05-21（Asia/Shanghai）" in texts[0]


def test_chinese_renders_as_the_fonts_glyphs_not_boxes(
    pdf: bytes, font: Path, tmp_path: Path
) -> None:
    png = tmp_path / "certificate-page1.png"
    pdfium.PdfDocument(pdf)[0].render(scale=SCALE).to_pil().save(png)  # in colour, to look at
    print(f"page 1 rendered to {png}")

    # The title and the court name, as PDFium drew them, match FreeType's drawing of the same
    # characters from the font file, and not of other characters: boxes or blanks would match
    # neither.
    for text, other, px in (
        ("电子送达凭证", "人民法院核验", 22 * SCALE),
        ("北京市海淀区人民法院", "上海市浦东新区法院书", 13 * SCALE),
    ):
        drawn = _text_region(pdf, text)
        same = _correlation(drawn, _reference(font, text, px))
        different = _correlation(drawn, _reference(font, other, px))
        assert same > 0.75, (text, same)
        assert same - different > 0.3, (text, same, different)


def test_different_names_draw_different_ink(pdf: bytes, font: Path) -> None:
    other = render_certificate(sample_data(recipient_name="王五"), font_path=font)
    mine, theirs = _text_region(pdf, "李四"), _text_region(other, "王五")
    assert mine.shape == theirs.shape  # same place, same layout
    for region in (mine, theirs):
        assert (region < 128).mean() > 0.05  # there is ink
    assert np.abs(mine.astype(int) - theirs.astype(int)).mean() > 20


def test_qr_code_decodes_to_the_verify_url(pdf: bytes) -> None:
    barcodes = zxingcpp.read_barcodes(_render_page1(pdf))
    assert [(b.format, b.text) for b in barcodes] == [
        (zxingcpp.BarcodeFormat.QRCode, sample_data().verify_url)
    ]
    assert sample_data().verify_url in _texts(pdf)[0]  # and the URL in text, for typing in


def test_metadata_and_identical_bytes_for_the_same_input(pdf: bytes, font: Path) -> None:
    assert render_certificate(sample_data(), font_path=font) == pdf
    meta = pdfium.PdfDocument(pdf).get_metadata_dict()
    assert meta["Title"] == "电子送达凭证 SD-2024-000123"
    assert meta["Author"] == "北京市海淀区人民法院"
    assert meta["CreationDate"].startswith("D:20240506080322")  # generated_at, 08:03:22 UTC


def test_identical_bytes_from_another_process(pdf: bytes, font: Path) -> None:
    # A certificate re-rendered later (another worker, another hash seed) must still match.
    script = (
        "import sys; from pathlib import Path;"
        "from yunting.service_delivery.certificate import render_certificate;"
        "from tests.unit.service_delivery.test_certificate import sample_data;"
        f"sys.stdout.buffer.write(render_certificate(sample_data(), font_path=Path({str(font)!r})))"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, check=True, env=env, cwd=REPO
    )
    assert result.stdout == pdf


def test_not_served_says_so(font: Path) -> None:
    data = dataclasses.replace(
        sample_data(events=0), served=False, served_at=None, deadline=None, addresses=()
    )
    text = _texts(render_certificate(data, font_path=font))[0]
    assert "未送达 Not served" in text
    assert "已送达" not in text
    assert "期限 Deadline" not in text
    assert "No events recorded" in text


def test_a_missing_font_names_the_package_to_install(tmp_path: Path) -> None:
    missing = tmp_path / "NotoSansCJK-Regular.ttc"
    with pytest.raises(CjkFontNotFoundError, match="fonts-noto-cjk"):
        render_certificate(sample_data(events=1), font_path=missing)
    with pytest.raises(CjkFontNotFoundError, match="apt-get install fonts-noto-cjk"):
        find_cjk_font(candidates=[(missing, "fonts-noto-cjk")])
    with pytest.raises(CjkFontNotFoundError, match=str(missing)):
        find_cjk_font(missing)


def test_an_explicit_font_wins_over_the_search(font: Path, tmp_path: Path) -> None:
    assert find_cjk_font(font, candidates=[]) == font
    assert find_cjk_font(candidates=[(tmp_path / "absent.ttc", "x"), (font, "y")]) == font


def test_a_font_without_chinese_is_refused_rather_than_printing_boxes(
    font: Path, tmp_path: Path
) -> None:
    latin = tmp_path / "latin-only.otf"
    options = subset.Options(font_number=font_face_index(font))
    source = subset.load_font(str(font), options)
    try:
        subsetter = subset.Subsetter(options)
        subsetter.populate(unicodes=range(0x20, 0x7F))  # printable ASCII, no Chinese
        subsetter.subset(source)
        subset.save_font(source, str(latin), options)
    finally:
        source.close()
    with pytest.raises(MissingGlyphError, match=r"'电' U\+7535"):  # the title's first character
        render_certificate(sample_data(events=1), font_path=latin)


def test_naive_or_inconsistent_times_are_refused() -> None:
    with pytest.raises(CertificateError, match="timezone-aware"):
        dataclasses.replace(sample_data(events=1), generated_at=datetime(2024, 5, 6, 8, 0))  # noqa: DTZ001
    with pytest.raises(CertificateError, match="served_at"):
        dataclasses.replace(sample_data(events=1), served_at=None)
    with pytest.raises(CertificateError, match="64 lowercase hex"):
        dataclasses.replace(sample_data(events=1), document_sha256="ABC")


def test_every_event_kind_channel_and_tier_has_a_label() -> None:
    assert set(EVENT_LABELS) == set(EvidenceKind)
    assert set(CHANNEL_LABELS) == set(Channel)
    assert set(CONSENT_TIER_TEXT) == set(ConsentTier)


def test_file_name_is_stable_and_has_an_ascii_fallback() -> None:
    data = sample_data(events=1)
    name = certificate_filename(data)
    assert name.name == "电子送达凭证-(2024)京0108民初12345号-李四-SD-2024-000123.pdf"
    assert name.ascii_name == "certificate-of-service-SD-2024-000123.pdf"
    assert name.content_disposition() == (
        'attachment; filename="certificate-of-service-SD-2024-000123.pdf"; '
        "filename*=UTF-8''%E7%94%B5%E5%AD%90%E9%80%81%E8%BE%BE%E5%87%AD%E8%AF%81-%282024%29"
        "%E4%BA%AC0108%E6%B0%91%E5%88%9D12345%E5%8F%B7-%E6%9D%8E%E5%9B%9B-SD-2024-000123.pdf"
    )
    odd = dataclasses.replace(data, case_number="(2024)京01/08 民初:1号", certificate_no="a/b c")
    assert certificate_filename(odd).name == "电子送达凭证-(2024)京01_08_民初_1号-李四-a_b_c.pdf"
    assert certificate_filename(odd).ascii_name == "certificate-of-service-a_b_c.pdf"
