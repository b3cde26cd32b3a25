"""A report as readable terminal text (for `hedui verify`), in Chinese or English.

Lines are wrapped here, at the console's width, and only where a reader expects a break:
at a space, or between two Chinese characters. A finding code, an amount, an ID mask or a
`name=value` fact is never split; one longer than the whole line stands on its own line.
"""

import re
from typing import Any

from rich.cells import cell_len
from rich.console import Console
from rich.text import Text

SEVERITY_STYLE = {"disqualifying": "bold red", "warning": "yellow", "info": "green"}
RECOMMENDATION_STYLE = {"eligible": "bold green", "ineligible": "bold red", "review": "bold yellow"}
RECOMMENDATION_WORDS = {
    "zh": {"eligible": "符合条件", "ineligible": "不符合条件", "review": "需人工复核"}
}
"""The recommendation in words, before its code (which scripts and the API use)."""

LABELS: dict[str, dict[str, str]] = {
    "en": {
        "verification": "Verification",
        "recommendation": "recommendation",
        "score": "score",
        "complete": "complete",
        "yes": "yes",
        "no": "no",
        "policy": "policy",
        "standard": "{version}: standard {standard} per person per month",
        "members": "members",
        "monthly_income": "household monthly income",
        "per_capita": "per-capita monthly income",
        "assets": "financial assets",
        "holdings": "vehicles / properties",
        "monthly_benefit": "monthly benefit",
        "one_off": "one-off payment",
        "care_subsidy": "care subsidy (monthly)",
        "basis": "basis",
        "sources": "Sources",
        "findings": "Findings",
        "none": "none",
    },
    "zh": {
        "verification": "核对",
        "recommendation": "建议",
        "score": "评分",
        "complete": "数据完整",
        "yes": "是",
        "no": "否",
        "policy": "政策",
        "standard": "{version}：标准 {standard} 元/人/月",
        "members": "家庭人数",
        "monthly_income": "家庭月收入",
        "per_capita": "人均月收入",
        "assets": "金融资产",
        "holdings": "车辆 / 房产",
        "monthly_benefit": "每月救助金",
        "one_off": "一次性救助金",
        "care_subsidy": "护理补贴（每月）",
        "basis": "计算依据",
        "sources": "数据来源",
        "findings": "核对发现",
        "none": "无",
    },
}

# Chinese (and full-width) characters: a line may break between two of them. Closing
# punctuation stays with the character before it.
_CJK = "\u2e80-\u9fff\uf900-\ufaff\ufe30-\ufe4f\uff00-\uffef\u3000-\u303f"
_CLOSING = "，。、；：！？）》」』】”’"
_TOKEN = re.compile(rf"\s+|[{_CJK}][{_CLOSING}]*|[^\s{_CJK}]+[{_CLOSING}]*")


def wrap(text: str, width: int) -> list[str]:
    """Lines of at most `width` cells, broken only at spaces or between Chinese characters."""
    lines: list[str] = []
    for paragraph in text.splitlines() or [""]:
        line, spaced = "", False
        for token in _TOKEN.findall(paragraph):
            if token.isspace():
                spaced = bool(line)
                continue
            joined = f"{line} {token}" if spaced else line + token
            if not line or cell_len(joined) <= width:
                line = joined
            else:
                lines.append(line)
                line = token
            spaced = False
        lines.append(line)
    return lines


class _Writer:
    """Label/value lines with hanging indents, wrapped by `wrap`."""

    def __init__(self, console: Console, labels: dict[str, str], label_width: int) -> None:
        self.console = console
        self.labels = labels
        self.width = max(console.width, 40)
        self.label_width = label_width

    def title(self, text: str) -> None:
        self.console.print(Text(text, style="bold"), soft_wrap=True)

    def line(self, text: str | Text) -> None:
        self.console.print(text, soft_wrap=True, highlight=False)

    def field(self, key: str, value: str, style: str = "") -> None:
        self.pair(self.labels[key], value, style)

    def pair(self, label: str, value: str, style: str = "", indent: int = 2) -> None:
        room = self.width - indent - self.label_width - 2
        if room < 20:  # a narrow terminal: the value goes under its label
            self.line(Text(" " * indent + label))
            self.block(value, indent + 4, style)
            return
        lines = wrap(value, room)
        head = " " * indent + label + " " * (self.label_width - cell_len(label) + 2)
        self.line(Text(head) + Text(lines[0], style=style))
        for rest in lines[1:]:
            self.line(Text(" " * cell_len(head)) + Text(rest, style=style))

    def block(self, value: str, indent: int, style: str = "") -> None:
        for line in wrap(value, self.width - indent):
            self.line(Text(" " * indent) + Text(line, style=style))


def render_report(console: Console, report: dict[str, Any], language: str = "zh") -> None:
    labels = LABELS.get(language, LABELS["zh"])
    policy, household = report["policy"], report["household"]
    benefit = report.get("benefit") or {}
    summary_keys = [key for key in LABELS["en"] if key not in ("yes", "no", "standard")]
    out = _Writer(console, labels, max(cell_len(labels[key]) for key in summary_keys))

    out.title(f"{labels['verification']} {report['verification_id']}")
    recommendation = report["recommendation"]
    words = RECOMMENDATION_WORDS.get(language, {}).get(recommendation)
    shown = f"{words} ({recommendation})" if words else recommendation
    out.field("recommendation", shown, RECOMMENDATION_STYLE.get(recommendation, ""))
    out.field("score", str(report["score"]))
    out.field("complete", labels["yes"] if report["complete"] else labels["no"])
    out.field(
        "policy",
        labels["standard"].format(version=policy["version"], standard=policy["monthly_standard"]),
    )
    out.field("members", str(household["members"]))
    out.field("monthly_income", household["monthly_income"])
    out.field("per_capita", household["per_capita_monthly_income"])
    out.field("assets", household["financial_assets"])
    out.field("holdings", f"{household['vehicles']} / {household['properties']}")
    if benefit:
        # A one-off payment (linshi) is the benefit; its monthly amount is 0 by definition.
        if benefit.get("one_off_amount") is not None:
            out.field("one_off", benefit["one_off_amount"], "bold")
        else:
            out.field("monthly_benefit", benefit["monthly_amount"], "bold")
        if benefit.get("care_subsidy") is not None:
            out.field("care_subsidy", benefit["care_subsidy"])
        if benefit.get("basis"):
            out.field("basis", benefit["basis"])

    out.line("")
    out.title(labels["sources"])
    name_width = max((cell_len(source["source"]) for source in report["sources"]), default=0)
    sources = _Writer(console, labels, name_width)
    for source in report["sources"]:
        style = "green" if source["status"] in ("ok", "no_record") else "red"
        detail = source.get("detail")
        status = f"{source['status']}: {detail}" if detail else source["status"]
        sources.pair(source["source"], status, style)

    out.line("")
    out.title(labels["findings"])
    if not report["findings"]:
        out.block(labels["none"], 2)
    for finding in report["findings"]:
        style = SEVERITY_STYLE.get(finding["severity"], "")
        out.line(Text("  ") + Text(finding["severity"], style=style) + Text(f"  {finding['code']}"))
        out.block(finding["message"], 4)
        for item in finding.get("evidence", []):
            fact = f"{item['source']}: {item.get('member') or ''} {item['fact']}"
            out.block(" ".join(fact.split()), 6, "dim")
