"""Every case of the campaign, in the order it runs: each module contributes its ``CASES``."""

from segcore.tools.faults import concurrency, outputs, tracking
from segcore.tools.faults.campaign import Case

CASE_MODULES = (outputs, tracking, concurrency)


def all_cases() -> list[Case]:
    return [case for module in CASE_MODULES for case in module.CASES]
