import pytest

from tidings.core.ratelimit import RateLimiter


def test_burst_then_rate():
    limiter = RateLimiter(rate=2, burst=3)
    assert [limiter.take("a", 0.0) for _ in range(3)] == [0, 0, 0]
    assert limiter.take("a", 0.0) == pytest.approx(0.5)
    assert limiter.take("b", 0.0) == 0, "keys are independent"
    assert limiter.take("a", 0.5) == 0, "one token came back after 1/rate"
    assert limiter.take("a", 0.5) > 0
    assert limiter.take("a", 100.0) == 0


def test_refused_requests_do_not_drain_the_bucket_further():
    limiter = RateLimiter(rate=1, burst=1)
    assert limiter.take("a", 0.0) == 0
    assert limiter.take("a", 0.0) == pytest.approx(1.0)
    assert limiter.take("a", 0.0) == pytest.approx(1.0)
    assert limiter.take("a", 1.0) == 0


def test_keeps_at_most_max_keys():
    limiter = RateLimiter(rate=1, burst=1, max_keys=2)
    for key in ("a", "b", "c"):
        limiter.take(key, 0.0)
    assert limiter.take("a", 0.0) == 0, "'a' was evicted, so its bucket is full again"
    assert limiter.take("c", 0.0) > 0


def test_bad_parameters():
    with pytest.raises(ValueError):
        RateLimiter(rate=0, burst=1)
