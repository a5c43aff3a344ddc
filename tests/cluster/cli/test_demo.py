"""`segcore demo` as a new user runs it (a subprocess, a small lake): every stage, ending with an
audience export, the lift of the campaign planted on it, and the champion's report, opened in a
real headless Chromium."""

import re

import pytest
from browser import chromium, load
from commands import BIN, run


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> tuple[str, object]:
    workdir = tmp_path_factory.mktemp("demo")
    result = run(BIN / "segcore", "demo", "--workdir", workdir, "--customers", "3000", timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout, workdir


def test_the_demo_ends_with_an_audience_a_lift_table_and_kpis(demo):
    out, workdir = demo
    assert re.search(r"audiences as of 2026-06-30 .*\n.*\n\s*winback\s+\d+", out)
    assert (
        "CRM file" in out and (workdir / "audiences" / "as_of=2026-06-30" / "winback" / "_CURRENT").exists()
    )
    assert "treated customers order at 1.2x" in out
    lift = out.split("lift of audience 'winback' over 30 days from 2026-06-30")[1]
    assert re.search(r"^ *all customers\s+orders\s+\d+\s+\d+", lift, re.MULTILINE)
    assert "KPIs per segment over the 30 days before 2026-06-30" in out


def test_the_demo_report_shows_the_champion_its_kpis_and_the_lift_in_chromium(demo):
    assert chromium(), "chromium is not installed: run scripts/bootstrap dev (or apt-get install chromium)"
    _, workdir = demo
    report = workdir / "segments_report.html"
    page_text = report.read_text()
    assert "(the champion)</title>" in page_text
    sections = re.findall(r"<h2[^>]*>([^<]*)</h2>", page_text)
    assert sections[0] == "Segments at a glance (scoring of 2026-06-30)"
    assert "KPIs per segment over time" in sections and "Campaign lift" in sections
    assert sections.index("Campaign lift") < sections.index("How the segments were found")
    assert "winback: from 2026-06-30 until 2026-07-30" in page_text
    page = load(report)
    assert len(page.images) >= 8
    for alt, complete, width, height in page.images:
        assert complete and width > 0 and height > 0, alt
    assert all(url.startswith("data:image/png;base64,") for url in page.requests[1:])
    assert page.blocked == []
