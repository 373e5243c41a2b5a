from __future__ import annotations

import pytest
from pydantic import ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from enhanced_agent_bus.cache import BytesCodec, CacheSettings, RedisDecisionStore, TieredCache
from enhanced_agent_bus.errors import ConfigurationError

GOOD_KEY = "0123456789abcdef" * 4


class _Mounted(BaseSettings):
    """How the lead mounts CacheSettings in BusSettings (the env var names depend on it)."""

    model_config = SettingsConfigDict(
        env_prefix="AGENTBUS_", env_nested_delimiter="__", extra="forbid", frozen=True
    )
    cache: CacheSettings = CacheSettings()


def test_defaults_run_without_redis() -> None:
    settings = CacheSettings()
    assert settings.redis_url is None
    assert settings.pool_size == 20
    assert settings.breaker.failure_threshold == 3


def test_redis_url_without_hmac_key_names_the_variable() -> None:
    with pytest.raises(ValidationError, match="AGENTBUS_CACHE__HMAC_KEY"):
        CacheSettings(redis_url="redis://127.0.0.1:6379/0")


def test_short_hmac_key_is_refused() -> None:
    with pytest.raises(ValidationError, match="is 8 characters"):
        CacheSettings(redis_url="redis://127.0.0.1:6379/0", hmac_key="12345678")


def test_errors_never_echo_the_url_or_the_key() -> None:
    with pytest.raises(ValidationError) as info:
        CacheSettings(redis_url="http://:hunter2@host/0", hmac_key=GOOD_KEY)
    text = str(info.value)
    assert "'http'" in text
    assert "hunter2" not in text
    assert GOOD_KEY not in text


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("l1_maxsize", 0),
        ("l1_ttl_s", 0),
        ("pool_size", 0),
        ("socket_timeout_s", 0),
        ("connect_timeout_s", -1),
        ("l2_ttl_s", 0.0001),
        ("key_prefix", ""),
        ("key_prefix", "has space"),
    ],
)
def test_out_of_range_fields_fail_with_their_name(field: str, value: object) -> None:
    with pytest.raises(ValidationError, match=field):
        CacheSettings(**{field: value})


def test_environment_variables_configure_the_mounted_settings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AGENTBUS_CACHE__REDIS_URL", "redis://127.0.0.1:6379/15")
    with pytest.raises(ValidationError, match="AGENTBUS_CACHE__HMAC_KEY"):
        _Mounted()
    monkeypatch.setenv("AGENTBUS_CACHE__HMAC_KEY", GOOD_KEY)
    monkeypatch.setenv("AGENTBUS_CACHE__POOL_SIZE", "7")
    monkeypatch.setenv("AGENTBUS_CACHE__BREAKER__RESET_TIMEOUT_S", "2.5")
    settings = _Mounted().cache
    assert settings.hmac_key.get_secret_value() == GOOD_KEY
    assert settings.pool_size == 7
    assert settings.breaker.reset_timeout_s == 2.5


def test_store_refuses_settings_that_bypassed_validation() -> None:
    unchecked = CacheSettings.model_construct(
        redis_url=CacheSettings(redis_url="redis://h/0", hmac_key=GOOD_KEY).redis_url
    )
    with pytest.raises(ConfigurationError, match="AGENTBUS_CACHE__HMAC_KEY"):
        RedisDecisionStore.from_settings(unchecked)


def test_store_needs_a_url() -> None:
    with pytest.raises(ConfigurationError, match="AGENTBUS_CACHE__REDIS_URL"):
        RedisDecisionStore.from_settings(CacheSettings())


def test_l1_only_cache_from_default_settings() -> None:
    cache: TieredCache[bytes] = TieredCache.from_settings(
        CacheSettings(l1_maxsize=5), codec=BytesCodec(), supervisor=None
    )
    assert not cache.has_l2
    assert cache.stats()["l1_maxsize"] == 5
    assert cache.stats()["l2_enabled"] == 0
