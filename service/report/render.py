"""A report as readable terminal tables (for `hedui verify`)."""

from typing import Any

from rich.console import Console
from rich.table import Table

SEVERITY_STYLE = {"disqualifying": "bold red", "warning": "yellow", "info": "green"}


def render_report(console: Console, report: dict[str, Any]) -> None:
    policy, household = report["policy"], report["household"]
    summary = Table(title=f"Verification {report['verification_id']}", show_header=False)
    summary.add_row("recommendation", f"[bold]{report['recommendation']}[/bold]")
    summary.add_row("score", str(report["score"]))
    summary.add_row("complete", "yes" if report["complete"] else "[red]no[/red]")
    summary.add_row(
        "policy",
        f"{policy['version']} — standard {policy['monthly_standard']} / person / month",
    )
    summary.add_row("members", str(household["members"]))
    summary.add_row("household monthly income", household["monthly_income"])
    summary.add_row("per-capita monthly income", household["per_capita_monthly_income"])
    summary.add_row("financial assets", household["financial_assets"])
    summary.add_row("vehicles / properties", f"{household['vehicles']} / {household['properties']}")
    if report.get("benefit"):
        summary.add_row("monthly benefit", report["benefit"]["monthly_amount"])
    console.print(summary)

    sources = Table(title="Sources")
    for column in ("source", "status", "detail"):
        sources.add_column(column, overflow="fold")
    for source in report["sources"]:
        style = "green" if source["status"] in ("ok", "no_record") else "red"
        sources.add_row(
            source["source"], f"[{style}]{source['status']}[/{style}]", source.get("detail") or ""
        )
    console.print(sources)

    findings = Table(title="Findings")
    for column in ("severity", "code", "message", "evidence"):
        findings.add_column(column, overflow="fold")
    for finding in report["findings"]:
        style = SEVERITY_STYLE.get(finding["severity"], "")
        evidence = "\n".join(
            f"{item['source']}: {item.get('member') or ''} {item['fact']}".strip()
            for item in finding.get("evidence", [])
        )
        findings.add_row(
            f"[{style}]{finding['severity']}[/{style}]",
            finding["code"],
            finding["message"],
            evidence,
        )
    console.print(findings)
