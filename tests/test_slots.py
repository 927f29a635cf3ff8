"""HostSlots: the three caps, round robin and pacing, driven by a fake clock (no I/O)."""

from __future__ import annotations

from typing import TypeVar

import pytest

from runner.slots import HostSlots

T = TypeVar("T")


class FakeClock:
    """A settable clock; ``HostSlots`` only ever reads it."""

    def __init__(self, now: float = 0.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def drain(slots: HostSlots[T]) -> list[tuple[str, T]]:
    """Everything ``pop_ready`` hands out right now, without releasing anything."""
    started: list[tuple[str, T]] = []
    while (ready := slots.pop_ready()) is not None:
        started.append(ready)
    return started


def test_concurrency_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="concurrency"):
        HostSlots[str](0)


def test_global_cap_holds_across_hosts_and_a_release_frees_one_start() -> None:
    slots = HostSlots[str](3, per_host=None)
    for i in range(10):
        slots.push(f"h{i % 5}", f"item{i}")
    assert len(drain(slots)) == 3
    assert slots.in_flight == 3
    assert slots.queued == 7
    slots.release("h0")
    assert len(drain(slots)) == 1
    assert slots.in_flight == 3


def test_per_host_cap_blocks_one_host_but_not_the_others() -> None:
    slots = HostSlots[str](100, per_host=2)
    for i in range(5):
        slots.push("a", f"a{i}")
    slots.push("b", "b0")
    started = drain(slots)
    assert sorted(host for host, _ in started) == ["a", "a", "b"]
    assert slots.host_in_flight("a") == 2
    assert slots.host_in_flight("b") == 1
    assert slots.host_in_flight("never-seen") == 0
    slots.release("a")
    assert drain(slots) == [("a", "a2")]
    assert slots.host_in_flight("a") == 2


def test_blocked_host_wakes_on_release_even_when_the_global_cap_was_full() -> None:
    slots = HostSlots[str](2, per_host=1)
    slots.push("a", "a0")
    slots.push("a", "a1")
    slots.push("b", "b0")
    slots.push("b", "b1")
    assert drain(slots) == [("a", "a0"), ("b", "b0")]
    slots.release("b")
    assert drain(slots) == [("b", "b1")]
    slots.release("a")
    assert drain(slots) == [("a", "a1")]


def test_hosts_take_turns_and_each_host_is_fifo() -> None:
    slots = HostSlots[str](100, per_host=None)
    for host in "abc":
        for i in range(3):
            slots.push(host, f"{host}{i}")
    assert [item for _, item in drain(slots)] == [
        "a0", "b0", "c0", "a1", "b1", "c1", "a2", "b2", "c2",
    ]  # fmt: skip


def test_a_big_host_cannot_starve_a_late_small_one() -> None:
    slots = HostSlots[str](1, per_host=None)
    for i in range(1000):
        slots.push("big", f"big{i}")
    order = []
    for step in range(6):
        if step == 2:
            slots.push("small", "small0")
        host, item = slots.pop_ready() or ("", "")
        order.append(item)
        slots.release(host)
    assert order[3] == "small0"  # right after the big host's current turn


def test_pacing_is_exactly_one_over_rate() -> None:
    clock = FakeClock(100.0)
    slots = HostSlots[str](10, per_host=None, rate_per_host=4.0, clock=clock)  # 0.25 s apart
    for i in range(5):
        slots.push("a", f"a{i}")
    starts: list[float] = []
    while slots.queued:
        ready = slots.pop_ready()
        if ready is None:
            wake = slots.next_wakeup()
            assert wake is not None
            assert wake > clock.now
            clock.now = wake - 1e-9
            assert slots.pop_ready() is None  # not a moment early
            clock.now = wake
            continue
        starts.append(clock.now)
        slots.release(ready[0])
    assert starts == [100.0, 100.25, 100.5, 100.75, 101.0]


def test_pacing_restarts_from_now_after_an_idle_gap() -> None:
    clock = FakeClock()
    slots = HostSlots[str](10, rate_per_host=2.0, clock=clock)
    slots.push("a", "a0")
    assert slots.pop_ready() == ("a", "a0")
    clock.now = 60.0  # long past the 0.5 s interval: no debt, no burst credit
    slots.push("a", "a1")
    slots.push("a", "a2")
    assert slots.pop_ready() == ("a", "a1")
    assert slots.pop_ready() is None
    assert slots.next_wakeup() == 60.5


def test_a_paced_host_does_not_hold_up_other_hosts() -> None:
    clock = FakeClock()
    slots = HostSlots[str](10, rate_per_host=1.0, clock=clock)
    slots.push("a", "a0")
    slots.push("a", "a1")
    assert slots.pop_ready() == ("a", "a0")
    slots.push("b", "b0")
    assert slots.pop_ready() == ("b", "b0")
    assert slots.pop_ready() is None
    clock.now = 1.0
    assert slots.pop_ready() == ("a", "a1")


def test_pacing_and_per_host_cap_combine() -> None:
    clock = FakeClock()
    slots = HostSlots[str](10, per_host=1, rate_per_host=10.0, clock=clock)
    for i in range(3):
        slots.push("a", f"a{i}")
    assert slots.pop_ready() == ("a", "a0")
    clock.now = 5.0  # pacing long over, but the one slot is still taken
    assert slots.pop_ready() is None
    slots.release("a")
    assert slots.pop_ready() == ("a", "a1")
    assert slots.pop_ready() is None


def test_hundred_thousand_hosts_leave_no_state_behind() -> None:
    slots = HostSlots[int](50, per_host=2)
    n = 100_000
    for i in range(n):
        slots.push(f"host{i}.example:80", i)
    seen = 0
    while slots.queued or slots.in_flight:
        started = drain(slots)
        seen += len(started)
        for host, _ in started:
            slots.release(host)
    assert seen == n
    assert repr(slots) == "<HostSlots in_flight=0 queued=0 hosts=0 ready=0>"
    assert slots.next_wakeup() is None


def test_paced_hosts_linger_only_while_their_pacing_matters() -> None:
    clock = FakeClock()
    slots = HostSlots[int](1000, rate_per_host=1.0, clock=clock)
    n = 100_000
    for i in range(n):
        slots.push(f"h{i}", i)
    seen = 0
    while slots.queued or slots.in_flight:
        started = drain(slots)
        seen += len(started)
        for host, _ in started:
            slots.release(host)
    assert seen == n
    # Every host started at t=0 and may not start again before t=1: remembered.
    assert "hosts=100000" in repr(slots)
    clock.now = 0.999
    assert slots.pop_ready() is None
    assert "hosts=100000" in repr(slots)
    clock.now = 1.0
    assert slots.pop_ready() is None
    assert repr(slots) == "<HostSlots in_flight=0 queued=0 hosts=0 ready=0>"
    assert slots.next_wakeup() is None


def test_a_lingering_host_keeps_its_pacing_when_it_comes_back() -> None:
    clock = FakeClock()
    slots = HostSlots[str](10, rate_per_host=1.0, clock=clock)
    slots.push("a", "a0")
    assert slots.pop_ready() == ("a", "a0")
    clock.now = 0.1
    slots.release("a")
    assert "hosts=1" in repr(slots)  # idle, but its next start is still paced
    clock.now = 0.5
    slots.push("a", "a1")
    assert slots.pop_ready() is None
    assert slots.next_wakeup() == 1.0
    clock.now = 1.0
    assert slots.pop_ready() == ("a", "a1")
    slots.release("a")
    clock.now = 2.0
    assert slots.pop_ready() is None
    assert "hosts=0" in repr(slots)


def test_an_unpaced_host_is_forgotten_at_its_last_release() -> None:
    slots = HostSlots[str](10, per_host=3)
    slots.push("a", "a0")
    slots.push("a", "a1")
    drain(slots)
    slots.release("a")
    assert "hosts=1" in repr(slots)
    slots.release("a")
    assert "hosts=0" in repr(slots)
    assert slots.host_in_flight("a") == 0


def run_paced(slots: HostSlots[str], clock: FakeClock, host: str, n: int) -> list[float]:
    """Start times of ``n`` items for ``host``, each released at once, jumping the clock."""
    for i in range(n):
        slots.push(host, f"{host}{i}")
    starts: list[float] = []
    while len(starts) < n:
        ready = slots.pop_ready()
        if ready is None:
            wake = slots.next_wakeup()
            assert wake is not None
            clock.now = wake
            continue
        starts.append(clock.now)
        slots.release(ready[0])
    return starts


def test_set_rate_slows_one_host_and_leaves_the_others_at_the_job_rate() -> None:
    clock = FakeClock()
    slots = HostSlots[str](10, rate_per_host=4.0, clock=clock)
    slots.set_rate("slow", 0.5)  # a Crawl-delay of 2 s
    assert run_paced(slots, clock, "slow", 3) == [0.0, 2.0, 4.0]
    clock.now = 10.0
    assert run_paced(slots, clock, "other", 3) == [10.0, 10.25, 10.5]


def test_set_rate_paces_a_host_when_the_job_has_no_rate() -> None:
    clock = FakeClock()
    slots = HostSlots[str](10, clock=clock)
    slots.set_rate("a", 10.0)
    assert run_paced(slots, clock, "a", 3) == [0.0, 0.1, 0.2]
    assert run_paced(slots, clock, "b", 3) == [0.2, 0.2, 0.2]  # unpaced


def test_set_rate_outlives_the_host_being_forgotten() -> None:
    clock = FakeClock()
    slots = HostSlots[str](10, clock=clock)
    slots.set_rate("a", 1.0)
    run_paced(slots, clock, "a", 1)
    clock.now = 5.0
    assert slots.pop_ready() is None
    assert "hosts=0" in repr(slots)  # idle and past its pacing: forgotten
    assert run_paced(slots, clock, "a", 3) == [5.0, 6.0, 7.0]


def test_set_rate_applies_to_a_host_already_queued() -> None:
    clock = FakeClock()
    slots = HostSlots[str](10, rate_per_host=100.0, clock=clock)
    slots.push("a", "a0")
    slots.push("a", "a1")
    assert slots.pop_ready() == ("a", "a0")  # next start paced at 0.01 (the job rate)
    slots.set_rate("a", 0.25)
    clock.now = 0.01
    assert slots.pop_ready() == ("a", "a1")  # a start already paced keeps its time
    slots.push("a", "a2")
    assert slots.pop_ready() is None
    assert slots.next_wakeup() == pytest.approx(4.01)  # the next one uses the new rate


def test_set_rate_none_restores_the_job_rate() -> None:
    clock = FakeClock()
    slots = HostSlots[str](10, rate_per_host=2.0, clock=clock)
    slots.set_rate("a", 0.1)
    slots.set_rate("a", None)
    assert run_paced(slots, clock, "a", 3) == [0.0, 0.5, 1.0]
    slots.set_rate("b", None)  # no override to remove: harmless
    assert run_paced(slots, clock, "b", 2) == [1.0, 1.5]


def test_set_rate_refuses_zero_negative_and_nan() -> None:
    slots = HostSlots[str](10)
    for rate in (0.0, -1.0, float("nan")):
        with pytest.raises(ValueError, match="rate"):
            slots.set_rate("a", rate)


def test_rate_overrides_are_bounded_and_the_oldest_goes_first() -> None:
    clock = FakeClock()
    slots = HostSlots[str](10, rate_per_host=1.0, clock=clock, max_rate_overrides=2)
    slots.set_rate("a", 0.5)
    slots.set_rate("b", 0.5)
    slots.set_rate("a", 0.25)  # re-set: now the newest
    slots.set_rate("c", 0.5)  # evicts "b"
    assert run_paced(slots, clock, "a", 2) == [0.0, 4.0]
    assert run_paced(slots, clock, "b", 2) == [4.0, 5.0]  # back to the job rate
    assert run_paced(slots, clock, "c", 2) == [5.0, 7.0]
