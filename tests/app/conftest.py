"""The alert receivers (aiosmtpd, a local HTTP server) for the app's end-to-end tests."""

from alerts.conftest import http_receiver, smtp_server

__all__ = ["http_receiver", "smtp_server"]
