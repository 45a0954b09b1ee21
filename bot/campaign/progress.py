"""What ``bot worker`` says while it works: a status line, the connect-rate alarm, and
why ``--until-idle`` stopped.

Pure: no database, no console, no real clock. The worker feeds call outcomes in with a
time from its own monotonic clock and hands over what the queue looks like
(:class:`bot.campaign.due.QueueView`); this module turns that into counts, rates and
one-line texts. An operator reads these lines in a terminal or in a log file, so they
are plain text (the CLI adds colour only on a terminal).

The point is honesty: a worker that places no calls says why (nothing due until when),
and one whose calls all go unanswered says so loudly, instead of looking busy.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter, deque
from dataclasses import dataclass, field

from bot.core.vocab import NOT_CONNECTED, Outcome

#: Calls/min counts the calls that finished within this many seconds.
RATE_WINDOW_S = 60.0

#: This many unanswered calls in a row raise the connect-rate warning.
CONNECT_WARN_AFTER = 10

#: The order outcomes are listed in (the vocabulary's); unknown ones follow, sorted.
_ORDER = [o.value for o in Outcome]


def connected(outcome: str) -> bool:
    """An attempt that reached the line (someone, or voicemail, answered)."""
    return outcome not in NOT_CONNECTED


@dataclass
class ConnectWatch:
    """Raises the alarm once when ``after`` calls in a row did not connect, and re-arms
    only when a call connects again: a gateway that is down gives one warning, not one
    per call; one that comes back and fails again gives a second."""

    after: int = CONNECT_WARN_AFTER
    streak: Counter[str] = field(default_factory=Counter)
    warned: bool = False

    def observe(self, outcome: str) -> str | None:
        """Feed one finished call; returns ``"warn"`` when the alarm goes off,
        ``"recovered"`` when a call connects after it went off, else None."""
        if connected(outcome):
            was_warned = self.warned
            self.streak.clear()
            self.warned = False
            return "recovered" if was_warned else None
        self.streak[outcome] += 1
        if not self.warned and self.after > 0 and self.streak.total() >= self.after:
            self.warned = True
            return "warn"
        return None


@dataclass
class Progress:
    """Calls this worker finished: outcome counts, connect rate, and the finish times
    of the last minute (for calls/min). Times are seconds on any monotonic clock."""

    window_s: float = RATE_WINDOW_S
    outcomes: Counter[str] = field(default_factory=Counter)
    _finished: deque[float] = field(default_factory=deque)

    def record(self, outcome: str, at: float) -> None:
        self.outcomes[str(outcome)] += 1
        self._finished.append(at)
        self._trim(at)

    def _trim(self, now: float) -> None:
        while self._finished and self._finished[0] <= now - self.window_s:
            self._finished.popleft()

    def calls_per_min(self, now: float) -> float:
        """Calls finished in the last ``window_s`` seconds, per minute."""
        self._trim(now)
        return len(self._finished) * 60.0 / self.window_s

    @property
    def attempts(self) -> int:
        return self.outcomes.total()

    @property
    def answered(self) -> int:
        return sum(n for o, n in self.outcomes.items() if connected(o))

    def connect_rate(self) -> float | None:
        """Answered / attempts; None before the first call."""
        return self.answered / self.attempts if self.attempts else None


def local_time(when: dt.datetime, now: dt.datetime, tz: dt.tzinfo | None = None) -> str:
    """``HH:MM`` in ``tz`` (None: this machine's local time), with the date in front
    when it is not ``now``'s day there."""
    w = when.astimezone(tz) if tz is not None else when.astimezone()
    n = now.astimezone(tz) if tz is not None else now.astimezone()
    return w.strftime("%H:%M") if w.date() == n.date() else w.strftime("%Y-%m-%d %H:%M")


def _outcome_list(outcomes: Counter[str]) -> str:
    order = {o: i for i, o in enumerate(_ORDER)}
    names = sorted(outcomes, key=lambda o: (order.get(o, len(order)), o))
    return ", ".join(f"{o} {outcomes[o]}" for o in names if outcomes[o])


@dataclass(frozen=True)
class StatusInput:
    """Everything one status line shows (see :func:`status_line`)."""

    now: dt.datetime
    calls_per_min: float
    outcomes: Counter[str]
    live: int
    concurrency: int
    #: Items queued in running campaigns; those of them due now (claimable now).
    queued: int
    due_now: int
    #: When the first queued item becomes due (None: nothing queued).
    next_due: dt.datetime | None
    #: Items other workers (or this one) hold in progress.
    in_progress: int = 0
    #: Why the worker takes no new calls now (back-pressure), if it does not.
    held: str | None = None


def status_line(s: StatusInput, tz: dt.tzinfo | None = None) -> str:
    """One line, e.g. ``calls/min 12 | 30 calls: completed 18, no_answer 9, busy 3 |
    connected 60% (18/30) | live 3/4 | queue 120, 85 due now``; with nothing due now,
    the queue part reads ``queue 7, nothing due until 14:30``."""
    attempts = s.outcomes.total()
    answered = sum(n for o, n in s.outcomes.items() if connected(o))
    parts = [f"calls/min {s.calls_per_min:.0f}"]
    if attempts:
        parts.append(f"{attempts} calls: {_outcome_list(s.outcomes)}")
        parts.append(f"connected {answered * 100 // attempts}% ({answered}/{attempts})")
    else:
        parts.append("no calls yet")
    parts.append(f"live {s.live}/{s.concurrency}")
    if s.held:
        parts.append(f"new calls held: {s.held}")
    parts.append(queue_text(s, tz))
    return " | ".join(parts)


def queue_text(s: StatusInput, tz: dt.tzinfo | None = None) -> str:
    if not s.queued:
        return "queue empty" + (f" ({s.in_progress} in progress)" if s.in_progress else "")
    if s.due_now:
        return f"queue {s.queued}, {s.due_now} due now"
    if s.next_due is None:  # queued but never due (a window that never opens)
        return f"queue {s.queued}, nothing due"
    return f"queue {s.queued}, nothing due until {local_time(s.next_due, s.now, tz)}"


def idle_exit_line(
    horizon_s: float, next_due: dt.datetime | None, now: dt.datetime, tz: dt.tzinfo | None = None
) -> str:
    """Why ``--until-idle`` stops now."""
    if next_due is None:
        return "nothing queued in running campaigns; exiting"
    return f"nothing due within {horizon_s:g} s (next at {local_time(next_due, now, tz)}); exiting"


def idle_bound_line(horizon_s: float, outbox_wait_s: float | None) -> str:
    """What ``--until-idle`` waits for, said once at start."""
    outbox = (
        f", and no disposition is due for delivery within {outbox_wait_s:g} s"
        if outbox_wait_s is not None
        else ""
    )
    return (
        f"until idle: exits once no call is live, nothing is due within {horizon_s:g} s"
        f"{outbox} (--idle-horizon)"
    )


def connect_warning(streak: Counter[str], gateway: str) -> str:
    n = streak.total()
    return (
        f"0 of {n} calls connected: check the gateway ({gateway}: {_outcome_list(streak)}; "
        "numbers, caller id, credentials, network)"
    )


#: Said once when a call connects after :func:`connect_warning`.
CONNECT_RECOVERED = "calls connect again"
