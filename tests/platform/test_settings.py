"""Production refuses to start with development secrets; embedded mode makes its own Fernet key."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

ROOT = Path(__file__).resolve().parents[2]


def run_check(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k not in {"SECRET_KEY", "TRADEWIND_FERNET_KEYS"}}
    clean.update(TRADEWIND_DATA_DIR=str(tmp_path), **env)
    clean.pop("DATABASE_URL", None)
    return subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env=clean,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("env", "missing"),
    [
        ({}, "SECRET_KEY"),
        ({"SECRET_KEY": "tradewind-insecure-development-key"}, "SECRET_KEY"),
        ({"SECRET_KEY": "a-real-secret-key-of-decent-length-0123456789"}, "TRADEWIND_FERNET_KEYS"),
    ],
)
def test_production_refuses_missing_or_development_secrets(tmp_path, env, missing):
    result = run_check(tmp_path, TRADEWIND_ENV="production", **env)
    assert result.returncode != 0
    assert missing in result.stderr
    assert not (tmp_path / "fernet.key").exists()


def test_production_starts_with_real_keys(tmp_path):
    result = run_check(
        tmp_path,
        TRADEWIND_ENV="production",
        SECRET_KEY="a-real-secret-key-of-decent-length-0123456789",
        TRADEWIND_FERNET_KEYS=Fernet.generate_key().decode(),
    )
    assert result.returncode == 0, result.stderr


def test_embedded_mode_generates_a_private_fernet_key_once(tmp_path):
    assert run_check(tmp_path).returncode == 0
    key_file = tmp_path / "fernet.key"
    key = key_file.read_text()
    Fernet(key.encode())  # a valid key
    assert key_file.stat().st_mode & 0o077 == 0
    assert run_check(tmp_path).returncode == 0
    assert key_file.read_text() == key


def test_a_prepare_threshold_that_is_not_a_number_or_off_is_refused_by_name(tmp_path):
    result = run_check(tmp_path, TRADEWIND_DB_PREPARE_THRESHOLD="often")
    assert result.returncode != 0
    assert "TRADEWIND_DB_PREPARE_THRESHOLD must be a whole number or 'off', not 'often'" in result.stderr
    assert run_check(tmp_path, TRADEWIND_DB_PREPARE_THRESHOLD="off").returncode == 0
