"""The demo case's judgment (民事判决书): a short PDF the clerk can serve in the embedded demo.

Drawn with fpdf2 and the CJK font the certificate uses, with a fixed creation date, so the same
demo data gives the same file (and the same SHA-256) on every machine with that font.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from fpdf import FPDF
from fpdf.enums import Align, XPos, YPos

from yunting.service_delivery.certificate import font_face_index

DEMO_JUDGMENT_TITLE = "民事判决书"
_CREATED = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)

_BODY = (
    "原告：张伟，男，住浙江省杭州市西湖区。",
    "委托诉讼代理人：陈律师，浙江某律师事务所律师。",
    "被告：杭州某网络科技有限公司，住所地浙江省杭州市余杭区。",
    "原告张伟与被告杭州某网络科技有限公司网络购物合同纠纷一案，本院立案后，依法适用简易程序，"
    "在线公开开庭进行了审理。原告张伟及其委托诉讼代理人、被告的委托诉讼代理人到庭参加诉讼。"
    "本案现已审理终结。",
    "本院认为，原告通过被告经营的网店购买商品，双方之间的网络购物合同关系合法有效。"
    "被告交付的商品与约定不符，应当承担相应的违约责任。",
    "依照《中华人民共和国民法典》第五百七十七条、第五百八十二条之规定，判决如下：",
    "一、被告杭州某网络科技有限公司于本判决生效之日起十日内退还原告张伟货款人民币三千二百元；",
    "二、驳回原告张伟的其他诉讼请求。",
    "案件受理费人民币五十元，减半收取计二十五元，由被告负担。",
    "如不服本判决，可以在判决书送达之日起十五日内，向本院递交上诉状，并按对方当事人的人数"
    "提出副本，上诉于浙江省杭州市中级人民法院。",
)


def demo_judgment_pdf(*, court_name: str, case_number: str, font_path: Path) -> bytes:
    pdf = FPDF(format="A4")
    pdf.set_creation_date(_CREATED)
    pdf.set_title(f"{case_number} {DEMO_JUDGMENT_TITLE}")
    pdf.set_margins(25, 25, 25)
    pdf.add_font("cjk", fname=str(font_path), collection_font_number=font_face_index(font_path))
    pdf.add_page()
    pdf.set_font("cjk", size=18)
    pdf.cell(0, 12, court_name, align=Align.C, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.cell(0, 12, DEMO_JUDGMENT_TITLE, align=Align.C, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_font("cjk", size=11)
    pdf.cell(0, 9, case_number, align=Align.R, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.ln(4)
    for paragraph in _BODY:
        pdf.multi_cell(0, 7, "　　" + paragraph, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        pdf.ln(1)
    pdf.ln(8)
    for line in ("审判员　王芳", "二〇二六年十一月二十日", "书记员　李静"):
        pdf.cell(0, 8, line, align=Align.R, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    return bytes(pdf.output())
