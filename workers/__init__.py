"""Celery entry point: ``celery -A workers worker -B``.

Celery finds ``workers.app`` at import, so this edge reads the settings (the ``REFERRAL_``
environment) here; nothing in ``engine`` does.
"""

from __future__ import annotations

from workers.app import create_app

app = create_app()

__all__ = ["app"]
