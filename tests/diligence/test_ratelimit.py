"""The buyer pages' fixed-window counter, on a pinned clock (`rate_clock`: 5 s into a window)."""

from __future__ import annotations

from trustdesk.diligence import ratelimit


def test_the_limit_holds_within_a_window_and_says_how_long_to_wait(settings, rate_clock):
    settings.DILIGENCE_RATE_LIMIT_PER_IP = (2, 60)
    assert [ratelimit.hit("ip", "a") for _ in range(2)] == [None, None]
    assert ratelimit.hit("ip", "a") == 55  # the window ends 55 s from now
    rate_clock.advance(40.5)
    assert ratelimit.hit("ip", "a") == 14  # whole seconds, rounded down
    rate_clock.advance(14)
    assert ratelimit.hit("ip", "a") == 1  # never less than one second


def test_the_count_starts_again_at_the_window_edge(settings, rate_clock):
    settings.DILIGENCE_RATE_LIMIT_PER_LINK = (1, 60)
    assert ratelimit.hit("link", "7") is None
    rate_clock.advance(54.9)  # the last moment of the window
    assert ratelimit.hit("link", "7") is not None
    rate_clock.advance(0.1)  # the next window
    assert ratelimit.hit("link", "7") is None
    assert ratelimit.hit("link", "7") is not None


def test_clients_and_kinds_are_counted_apart(settings, rate_clock):
    settings.DILIGENCE_RATE_LIMIT_PER_IP = (1, 60)
    settings.DILIGENCE_RATE_LIMIT_PER_LINK = (1, 60)
    assert ratelimit.hit("ip", "a") is None
    assert ratelimit.hit("ip", "b") is None
    assert ratelimit.hit("link", "a") is None
    assert ratelimit.hit("ip", "a") is not None
