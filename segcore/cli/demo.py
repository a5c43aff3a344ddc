"""The demo: two months of a generated sample lake through every stage, from one command."""

from __future__ import annotations

import argparse
import datetime as dt
import os

from segcore.audiences.stage import audience_partition
from segcore.cli.commands import (
    run_audiences,
    run_drift,
    run_extend,
    run_features,
    run_generate,
    run_lift,
    run_promote,
    run_report,
    run_score,
    run_train,
)
from segcore.config import load_config
from segcore.errors import Alert

DEMO_K_RANGE = "kmeans.k={min: 3, max: 8}"
# In the demo's lake this share of the loyal customers lapse in the last month (segcore.sample.lake).
DEMO_LAPSING = 0.2
# The campaign: an audience of the customers not at low churn risk, with a fifth held back; its
# treatment group then orders 20% more often in the 30 days after the export.
DEMO_AUDIENCE = (
    "audiences.winback={where: \"churn_risk_band != 'low'\", columns: [email, name], control_share: 0.2}"
)
CAMPAIGN_DAYS, CAMPAIGN_EFFECT = 30, 0.2


def month_before(day: dt.date) -> dt.date:
    """The same day a month earlier; a month's last day gives the previous month's last day."""
    first = day.replace(day=1)
    previous_end = first - dt.timedelta(days=1)
    if (day + dt.timedelta(days=1)).day == 1:
        return previous_end
    return previous_end.replace(day=min(day.day, previous_end.day))


def _lake_given_as(lake: str, given_workdir: str, workdir: str) -> str:
    """Where the user gave the demo's lake folder: under --workdir, or the lake paths of --config."""
    if os.path.commonpath([os.path.abspath(lake), workdir]) == workdir:
        return f"--workdir {given_workdir}"
    return f"the lake folder {lake} (its tables' paths in --config)"


def run_demo(args: argparse.Namespace) -> None:
    """Two months of the sample lake (some loyal customers lapse in the second): features, train
    and score the first; features and score the second with the first's model; drift between them;
    train on the second month and try to promote that version through the gate (the champion
    scores the second month again if it passes); export an audience of that scoring, plant a
    campaign on its treatment group in the lake's next 30 days and measure its lift; then the
    champion's report."""
    workdir = os.path.abspath(args.workdir)
    # The demo chooses k from a range and defines its audience; --set ... after them wins.
    config = load_config(args.config, [f"workdir={workdir}", DEMO_K_RANGE, DEMO_AUDIENCE, *args.overrides])
    earlier = config.model_copy(update={"as_of": month_before(config.as_of)})
    lake = config.path(os.path.dirname(config.lake.orders.path or "lake/orders") or "lake")
    given_as = _lake_given_as(lake, args.workdir, workdir)
    run_generate(lake, args.customers, args.seed, config.as_of, lapsing=DEMO_LAPSING, given_as=given_as)
    run_features(earlier, args.verbose)
    first = run_train(earlier, args.verbose, force=True)
    run_score(earlier, first.model.version, args.verbose)
    print()
    run_features(config, args.verbose)
    run_score(config, first.model.version, args.verbose)
    print()
    try:
        run_drift(config, earlier.as_of, config.as_of, args.verbose)
    except Alert as alert:
        print(f"drift alert (`segcore drift` exits with code 4 here): {alert}")
    print()
    result = run_train(config, args.verbose, force=True)
    print(f"\npromotion of version {result.model.version} (`segcore promote`):")
    try:
        run_promote(config, result.model.version, force=False)
        print("\nthe new champion scores the customers again:")
        run_score(config, verbose=args.verbose)
    except Alert as refused:
        print(f"refused (`segcore promote` exits with code 4 here): {refused}")
    print()
    run_audiences(config, ["winback"], args.verbose)
    print()
    campaign = audience_partition(config, "winback")
    run_extend(lake, CAMPAIGN_DAYS, args.seed, campaign, CAMPAIGN_EFFECT, given_as=given_as)
    run_lift(config, "winback", config.as_of, CAMPAIGN_DAYS, args.verbose)
    print()
    run_report(config, None, os.path.join(workdir, "segments_report.html"), args.verbose)
