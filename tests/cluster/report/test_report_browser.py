"""The HTML report in a real headless Chromium: every image decoded, nothing fetched but inline
images (the report of the conftest fixture lifecycle_report)."""

from browser import chromium, load


def test_the_report_renders_in_chromium_from_inline_images_only(lifecycle_report):
    assert chromium(), "chromium is not installed: run scripts/bootstrap dev (or apt-get install chromium)"
    page = load(lifecycle_report)
    assert len(page.images) == 7
    for alt, complete, width, height in page.images:
        assert complete and width > 0 and height > 0, alt
    assert page.requests[0] == lifecycle_report.resolve().as_uri()
    assert all(url.startswith("data:image/png;base64,") for url in page.requests[1:])
    assert page.blocked == []
