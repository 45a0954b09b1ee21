"""The default disposition table of the design brief, row by row, and overrides."""

from __future__ import annotations

import pytest

from bot.core.policy import Policy, PolicyFile, Rule
from bot.core.vocab import Disposition as D
from bot.core.vocab import Outcome as O
from bot.core.vocab import RiskBand as B


@pytest.mark.parametrize(
    "outcome, band, severe, attempts_left, disposition, review",
    [
        (O.VOICEMAIL, None, False, True, D.RETRY_CALL, False),
        (O.NO_ANSWER, None, False, True, D.RETRY_CALL, False),
        (O.BUSY, None, False, True, D.RETRY_CALL, False),
        (O.VOICEMAIL, None, False, False, D.MANUAL_INVESTIGATION, False),
        (O.BUSY, None, False, False, D.MANUAL_INVESTIGATION, False),
        (O.WRONG_PERSON, None, False, True, D.MANUAL_INVESTIGATION, True),
        (O.REFUSED, None, False, True, D.LIMIT_NON_COUNTER, True),
        (O.COMPLETED, B.MEDIUM, False, True, D.LIMIT_NON_COUNTER, True),
        (O.COMPLETED, B.HIGH, False, True, D.SUSPEND_NON_COUNTER, True),
        (O.COMPLETED, B.HIGH, True, True, D.SUSPEND_ALL, True),
        (O.HUNG_UP, B.HIGH, False, True, D.SUSPEND_NON_COUNTER, True),
        (O.HUNG_UP, None, False, True, D.RETRY_CALL, False),
    ],
)
def test_default_table(
    outcome: O, band: B | None, severe: bool, attempts_left: bool, disposition: D, review: bool
) -> None:
    d = Policy(sample_rate=0.0).decide(outcome, band, severe=severe, attempts_left=attempts_left)
    assert (d.disposition, d.needs_review) == (disposition, review)


def test_low_band_clears_and_samples_about_the_configured_share() -> None:
    policy = Policy(sample_rate=0.05, sample_seed="s")
    decisions = [policy.decide(O.COMPLETED, B.LOW, call_key=f"acct{i}") for i in range(20000)]
    assert all(d.disposition is D.CLEAR for d in decisions)
    share = sum(d.needs_review for d in decisions) / len(decisions)
    assert 0.04 < share < 0.06
    assert all(d.sampled == d.needs_review for d in decisions)


def test_sampling_is_deterministic_per_call_and_seed() -> None:
    a, b = Policy(sample_rate=0.5, sample_seed="x"), Policy(sample_rate=0.5, sample_seed="x")
    keys = [f"k{i}" for i in range(200)]
    assert [a.in_sample(k) for k in keys] == [b.in_sample(k) for k in keys]
    c = Policy(sample_rate=0.5, sample_seed="y")
    assert [a.in_sample(k) for k in keys] != [c.in_sample(k) for k in keys]


def test_sample_rate_bounds() -> None:
    assert not any(Policy(sample_rate=0.0).in_sample(f"k{i}") for i in range(500))
    assert all(Policy(sample_rate=1.0).in_sample(f"k{i}") for i in range(500))


def test_branch_override_wins_only_for_its_branch() -> None:
    table = PolicyFile(
        version=2,
        branches={"shenzhen": {"medium": Rule(disposition=D.SUSPEND_NON_COUNTER, review="always")}},
    )
    policy = Policy(table)
    assert (
        policy.decide(O.COMPLETED, B.MEDIUM, branch="shenzhen").disposition is D.SUSPEND_NON_COUNTER
    )
    assert (
        policy.decide(O.COMPLETED, B.MEDIUM, branch="guangzhou").disposition is D.LIMIT_NON_COUNTER
    )


def test_policy_file_is_validated(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from bot.core.yamlsource import SourceFileError

    f = tmp_path / "policy.yaml"
    f.write_text(
        "version: 1\ndefault:\n  low: {disposition: forgive, review: never}\n", encoding="utf-8"
    )
    with pytest.raises(SourceFileError) as exc:
        Policy.from_file(f, sample_rate=0.05, sample_seed="s")
    assert exc.value.errors[0].line == 3 and "default.low.disposition" in exc.value.errors[0].field


def test_a_request_for_a_person_is_a_person_calling_back() -> None:
    policy = Policy()
    no_band = policy.decide(O.COMPLETED, None, handoff=True)
    assert no_band.disposition is D.MANUAL_INVESTIGATION and no_band.needs_review
    unverified = policy.decide(O.BUSY, None, handoff=True)
    assert unverified.disposition is D.MANUAL_INVESTIGATION
    # With a band the band's disposition stands, and a person always looks at the call.
    low = policy.decide(O.COMPLETED, B.LOW, handoff=True, call_key="k")
    assert low.disposition is D.CLEAR and low.needs_review
    assert policy.decide(O.COMPLETED, None).disposition is D.RETRY_CALL
