"""A check's result as people read it (text) and as CI systems do (JUnit XML)."""

from __future__ import annotations

import shlex
import xml.etree.ElementTree as ET

from ..walk import printable
from . import CheckResult, Outcome

MARK = {"pass": "PASS", "fail": "FAIL", "off": "off "}


def summary(o: Outcome) -> str:
    """One line: what was found against the limit."""
    known = f" (+{o.known} known from the baseline)" if o.known else ""
    if o.limit.off:
        return f"{len(o.findings)} finding(s){known}; not checked (limit off)"
    limit = f"at most {o.limit.text}" if o.limit.count is not None else f"at most {o.limit.text} ({o.share_text})"
    return f"{len(o.findings)} finding(s){known}, {limit}: {o.rule.title}"


def see_all(o: Outcome, index: str) -> str:
    return o.rule.see_all.replace("IDX", shlex.quote(index))


def text(result: CheckResult, examples: int) -> list[str]:
    """The rule of the verdict, a line per rule (failures first, with their worst examples and the
    command that lists them all), then the total."""
    lines = [f"Duplicate rule: {result.verdict_rule}."]
    ordered = sorted(result.outcomes, key=lambda o: {"fail": 0, "pass": 1, "off": 2}[o.status])
    for o in (o for o in ordered if o.status != "off"):
        lines.append(f"{MARK[o.status]} {o.rule.name}: {summary(o)}")
        if o.status == "fail":
            lines += [f"    {printable(f.text)}" for f in o.findings[:examples]]
            more = len(o.findings) - examples
            lines.append(
                f"    {'and ' + str(more) + ' more; ' if more > 0 else ''}all of them: {see_all(o, result.index)}"
            )
    off = [f"{o.rule.name} ({len(o.findings)})" for o in ordered if o.status == "off"]
    if off:
        lines.append(f"Not checked (limit off; findings in brackets): {', '.join(off)}.")
    failed = result.failed()
    checked = sum(o.status != "off" for o in result.outcomes)
    lines.append(
        f"{len(failed)} of {checked} rules failed: {', '.join(o.rule.name for o in failed)}."
        if failed
        else f"All {checked} rules hold."
    )
    return lines


def junit(result: CheckResult) -> str:
    """One testsuite, a testcase per rule: failed, passed or skipped (limit off)."""
    suite = ET.Element(
        "testsuite",
        name="imgindex check",
        tests=str(len(result.outcomes)),
        failures=str(len(result.failed())),
        skipped=str(sum(o.status == "off" for o in result.outcomes)),
        errors="0",
    )
    ET.SubElement(ET.SubElement(suite, "properties"), "property", name="duplicate_rule", value=result.verdict_rule)
    for o in result.outcomes:
        case = ET.SubElement(suite, "testcase", classname="imgindex.check", name=o.rule.name)
        if o.status == "fail":
            failure = ET.SubElement(case, "failure", message=summary(o), type="RuleFailed")
            failure.text = "\n".join([*(f.text for f in o.findings), f"all of them: {see_all(o, result.index)}"])
        elif o.status == "off":
            ET.SubElement(case, "skipped", message="limit off")
        else:
            ET.SubElement(case, "system-out").text = summary(o)
    ET.indent(suite)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(suite, encoding="unicode") + "\n"
