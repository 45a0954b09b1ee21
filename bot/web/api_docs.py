"""The API's documentation page, ``/api/docs``, served entirely from this machine.

FastAPI's own page loads Swagger UI from a CDN, so it is blank on a network without
Internet access (as a bank's often is). Here the same page takes Swagger UI's script and
style sheet from the ``swagger-ui-py`` package (its ``static`` folder, Swagger UI 5),
mounted under ``/api/docs/assets``. Not ``swagger-ui-bundle``: its newest release
carries Swagger UI 4.15, which refuses FastAPI's OpenAPI 3.1 document ("Unable to render
this definition"). The OpenAPI document itself is ``/api/openapi.json``.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles


def _assets() -> Path:
    """swagger-ui-py's Swagger UI files, found without importing the package (its
    framework adapters take a tenth of a second to import, for nothing used here)."""
    spec = importlib.util.find_spec("swagger_ui")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("swagger-ui-py is not installed (pip install swagger-ui-py)")
    return Path(next(iter(spec.submodule_search_locations))) / "static"


DOCS_PATH = "/api/docs"
ASSETS_PATH = f"{DOCS_PATH}/assets"


def install(app: FastAPI) -> None:
    """Serve the documentation page and its assets (``create_app`` sets no docs_url)."""
    app.mount(ASSETS_PATH, StaticFiles(directory=str(_assets())), name="swagger_ui")
    openapi_url = app.openapi_url or "/api/openapi.json"

    @app.get(DOCS_PATH, include_in_schema=False)
    def api_docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=openapi_url,
            title=f"{app.title}: API",
            swagger_js_url=f"{ASSETS_PATH}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS_PATH}/swagger-ui.css",
            swagger_favicon_url=f"{ASSETS_PATH}/favicon-32x32.png",
        )
