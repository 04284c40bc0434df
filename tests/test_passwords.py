"""Password hashing: argon2id at its standard cost, and the cheaper setting tests run with."""

from __future__ import annotations

import pytest

from chaoshub import create_app
from chaoshub.auth import passwords
from chaoshub.core import db
from chaoshub.core.config import ConfigError, load_settings


@pytest.fixture
def standard_app(settings):
    hub = create_app({**settings, "PASSWORD_HASHING": "standard"})
    yield hub
    db.dispose(hub)


def test_the_standard_setting_hashes_with_rfc_9106_low_memory_parameters(standard_app):
    with standard_app.app_context():
        stored = passwords.hash_password("a long enough secret")
        assert stored.startswith("$argon2id$v=19$m=65536,t=3,p=4$")
        assert passwords.matches(stored, "a long enough secret")
        assert not passwords.matches(stored, "another long secret")
        assert not passwords.matches(None, "a long enough secret")


def test_hashes_made_at_either_cost_verify_at_the_other(app, standard_app):
    with app.app_context():
        fast = passwords.hash_password("a long enough secret")
    with standard_app.app_context():
        standard = passwords.hash_password("a long enough secret")
        assert passwords.matches(fast, "a long enough secret")
    with app.app_context():
        assert fast.startswith("$argon2id$v=19$m=1024,t=1,p=1$")
        assert passwords.matches(standard, "a long enough secret")


def test_production_refuses_the_fast_setting(tmp_path):
    production = {"CHAOSHUB_ENV": "production", "SECRET_KEY": "x" * 32,
                  "CHAOSHUB_SIGNING_KEY_FILE": str(tmp_path / "key.pem"),
                  "CHAOSHUB_INSTANCE_PATH": str(tmp_path), "PUBLIC_URL": "https://hub.example.com"}
    assert load_settings(production)["PASSWORD_HASHING"] == "standard"
    with pytest.raises(ConfigError, match="not production"):
        load_settings({**production, "PASSWORD_HASHING": "fast"})
    with pytest.raises(ConfigError, match="one of standard, fast"):
        load_settings({**production, "PASSWORD_HASHING": "md5"})
