"""Where the signal sweep aims: the middle of the start-up, of every logged step and of the
ending, each counted from the step before it, so that an aim follows the command's progress."""

from segcore.tools.faults.sweep import Aim, Timed, aims

# A command's stderr: steps a (1-3 s), b (3-7 s) and c (8-9 s), ending at 10 s.
REFERENCE = Timed(
    0,
    [
        (0.5, "INFO segcore: spark application local-1 on local[*]\n"),
        (3.0, "INFO segcore: train: a done in 2.0 s\n"),
        (7.0, "INFO segcore: train: b done in 4.0 s, rows=10\n"),
        (9.0, "INFO segcore: train: c done in 1.0 s\n"),
        (10.0, "segments as of 2026-06-30\n"),
    ],
)


def test_every_span_is_aimed_at_its_middle_from_the_step_before():
    assert REFERENCE.steps() == [("train: a", 1.0, 3.0), ("train: b", 3.0, 7.0), ("train: c", 8.0, 9.0)]
    assert aims(REFERENCE, extra=0, seed=1) == [
        Aim(0, 0.5),  # start-up: 0-1 s
        Aim(0, 2.0),  # a: 1-3 s
        Aim(1, 2.0),  # b: 3-7 s, 2 s after a ended
        Aim(2, 1.5),  # c: 8-9 s, 1.5 s after b ended
        Aim(3, 0.5),  # the ending: 9-10 s, 0.5 s after c ended
    ]


def test_random_aims_are_seeded_and_a_limit_chooses_among_all():
    extra = aims(REFERENCE, extra=3, seed=5)[5:]
    assert extra == aims(REFERENCE, extra=3, seed=5)[5:] and len(extra) == 3
    assert all(aim.steps_done == 0 and 0.1 <= aim.delay <= 10.0 for aim in extra)
    assert len(aims(REFERENCE, extra=3, seed=5, limit=4)) == 4


def test_where_a_signal_landed():
    def at(seconds: float) -> str:
        return Timed(143, REFERENCE.lines, seconds).landed()

    assert [at(0.5), at(2.0), at(7.5), at(9.5)] == [
        "before the first step",
        "before the first step",
        "after train: b",
        "after train: c",
    ]
    assert REFERENCE.landed() == "after the command ended"
