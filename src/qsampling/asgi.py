"""ASGI entry point for uvicorn workers: ``uvicorn qsampling.asgi:app``."""

from qsampling.app import create_app

app = create_app()
