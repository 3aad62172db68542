"""The dashboard's HTTP side: the page, its static files, and nothing else."""

from __future__ import annotations

import re

import pytest

from receiver.config import ServeConfig
from receiver.server.app import create_app
from receiver.store import open_store_from_url
from receiver.views.dashboard import static_files
from tests.apps import serve_app

IMPORT = re.compile(r'from "\./([^"]+)"')


@pytest.fixture
async def client():
    async with serve_app(
        create_app(ServeConfig(allow_unauthenticated=True), open_store_from_url("memory://"))
    ) as client:
        yield client


async def test_the_root_serves_the_page_under_a_same_origin_policy(client):
    response = await client.get("/")
    assert response.status == 200
    assert response.headers["Content-Type"] == "text/html; charset=utf-8"
    assert "default-src 'self'" in response.headers["Content-Security-Policy"]
    assert '<script type="module" src="/static/app.js"></script>' in await response.text()


async def test_modules_are_served_as_javascript(client):
    response = await client.get("/static/app.js")
    assert response.status == 200
    # Browsers refuse a module of any other type.
    assert response.headers["Content-Type"] == "text/javascript; charset=utf-8"
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_every_module_imported_is_a_file_the_dashboard_serves():
    files = static_files()
    imported = {
        name
        for path in files.values()
        if path.suffix == ".js"
        for name in IMPORT.findall(path.read_text(encoding="utf-8"))
    }
    assert imported, "no imports found: the pattern no longer matches the modules"
    assert imported <= set(files)


async def test_a_revalidation_is_answered_not_modified(client):
    first = await client.get("/static/style.css")
    assert first.headers["Cache-Control"] == "no-cache"
    again = await client.get("/static/style.css", headers={"If-None-Match": first.headers["ETag"]})
    assert again.status == 304


@pytest.mark.parametrize("path", ["/static/nothing.js", "/static/..%2Fdashboard.py", "/static/%2e%2e%2fapi.py"])
async def test_names_outside_the_static_files_are_not_found(client, path):
    response = await client.get(path)
    assert response.status == 404
    assert "error" in await response.json()


def test_a_folder_without_the_page_is_refused_with_a_clear_error(tmp_path):
    (tmp_path / "app.js").write_text("")
    with pytest.raises(RuntimeError, match="reinstall the package"):
        static_files(tmp_path)
