"""The report's page is written in one step, also by several threads of one process at once: the
file holds one whole page, and no staged file stays behind."""

from concurrent.futures import ThreadPoolExecutor

import pytest

from segcore.report.stage import write_page

THREADS, WRITES = 4, 50


def test_threads_writing_one_page_at_once_leave_one_whole_page_and_nothing_staged(tmp_path):
    target = tmp_path / "report.html"
    pages = [f"<html>{n}{'x' * 20_000}</html>" for n in range(THREADS)]

    def write(page: str) -> None:
        for _ in range(WRITES):
            write_page(target, page)

    with ThreadPoolExecutor(THREADS) as pool:
        list(pool.map(write, pages))  # re-raises what a thread raised
    assert target.read_text() in pages
    assert [path.name for path in tmp_path.iterdir()] == ["report.html"]
    assert target.stat().st_mode & 0o777 == 0o666 & ~current_umask()


def current_umask() -> int:
    with open("/proc/self/status") as status:
        return int(next(line for line in status if line.startswith("Umask:")).split()[1], 8)


def test_a_failed_write_keeps_the_old_page_and_leaves_nothing_staged(tmp_path):
    target = tmp_path / "report.html"
    write_page(target, "<html>old</html>")
    with pytest.raises(UnicodeEncodeError):
        write_page(target, "<html>\ud800</html>")  # a lone surrogate: UTF-8 cannot hold it
    assert target.read_text() == "<html>old</html>"
    assert [path.name for path in tmp_path.iterdir()] == ["report.html"]
