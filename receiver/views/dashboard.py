"""The dashboard: ``GET /`` and the static files it loads, served from the package.

The page is one HTML file whose ES modules read the query API; the view lives in the URL's
hash, so the server answers every view with the same page and needs no build step.
"""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from receiver.errors import HttpError, Kind
from receiver.keys import DASHBOARD_FILES

STATIC_DIR = Path(__file__).resolve().parent / "static"
STATIC_ROUTE = "/static/{name}"

CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    # Browsers refuse to run an ES module served with any other type.
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
}

HEADERS = {
    # Everything the page uses comes from the receiver itself: no CDN, no inline code.
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
        "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; "
        "frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    # Revalidate on every load (cheap: the ETag answers 304), so that after an upgrade a
    # browser never runs old modules beside new ones.
    "Cache-Control": "no-cache",
}


def static_files(directory: Path = STATIC_DIR) -> dict[str, Path]:
    """The files the dashboard may serve, by name; RuntimeError without its page.

    A fixed list read once (the app keeps it under DASHBOARD_FILES): a request names an
    entry in it and never reaches the file system with a path of its own.
    """
    files = {path.name: path for path in sorted(directory.iterdir()) if path.is_file() and path.suffix in CONTENT_TYPES}
    if "index.html" not in files:
        raise RuntimeError(f"the dashboard's files are missing from {directory}; reinstall the package")
    return files


def add_routes(app: web.Application) -> None:
    """Register ``GET /`` and ``GET /static/{name}`` (HEAD too) over ``app[DASHBOARD_FILES]``."""
    app.router.add_get("/", index)
    app.router.add_get(STATIC_ROUTE, static)


async def index(request: web.Request) -> web.FileResponse:
    return _respond(request.app[DASHBOARD_FILES]["index.html"])


async def static(request: web.Request) -> web.FileResponse:
    path = request.app[DASHBOARD_FILES].get(request.match_info["name"])
    if path is None:
        raise HttpError(Kind.NOT_FOUND, "no such dashboard file")
    return _respond(path)


def _respond(path: Path) -> web.FileResponse:
    headers = {**HEADERS, "Content-Type": CONTENT_TYPES[path.suffix]}
    return web.FileResponse(path, headers=headers)
