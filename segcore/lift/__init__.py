"""Campaign lift: what an audience's treatment group did after a campaign started, against its
control group, per segment, with confidence intervals."""
