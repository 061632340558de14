"""End-to-end tests in headless Chromium against the real product (``kb serve``)."""
