"""The API reference in a real Chromium: every operation readable, schemas one click away."""

from __future__ import annotations

import json

import pytest

from tests.helpers import running_hub

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def hub_url(tmp_path_factory):
    with running_hub(tmp_path_factory.mktemp("api-docs-hub")) as url:
        yield url


def test_the_api_reference_shows_operations_and_their_schemas(page, hub_url):
    page.goto(f"{hub_url}/api/v1/docs")
    assert page.get_by_role("heading", level=1).inner_text().startswith("ChaosHub API")
    spec = json.loads(page.context.request.get(f"{hub_url}/api/v1/openapi.json").text())
    operations = sum(len(methods) for methods in spec["paths"].values())
    assert page.get_by_test_id("operation").count() == operations

    publish = page.locator("#publish_execution")
    assert "POST" in publish.get_by_role("heading").inner_text()
    assert "/api/v1/experiments/{experiment_id}/executions" in publish.inner_text()
    assert "201" in publish.locator(".responses").inner_text()
    publish.get_by_role("link", name="Journal").click()
    assert page.url.endswith("#schema-Journal")
    assert page.locator("#schema-Journal").is_visible()

    page.get_by_role("navigation", name="API sections").get_by_role("link", name="Runs").click()
    runs = [op for methods in spec["paths"].values() for op in methods.values()
            if op.get("tags", [""])[0] == "runs"]
    assert len(runs) >= 8  # reported by the control, started, aborted, watched, kept safe
    assert page.locator("#tag-runs").get_by_test_id("operation").count() == len(runs)

    page.get_by_test_id("spec-link").click()
    assert json.loads(page.locator("body").inner_text())["openapi"].startswith("3.")


def test_every_parameter_is_described_and_the_intro_reads_as_prose(page, hub_url):
    spec = json.loads(page.context.request.get(f"{hub_url}/api/v1/openapi.json").text())
    parameters = [(path, p) for path, methods in spec["paths"].items()
                  for operation in methods.values() for p in operation.get("parameters", [])]
    undescribed = [(path, p["name"]) for path, p in parameters
                   if not p.get("description", "").strip()]
    assert len(parameters) > 100 and undescribed == []

    page.goto(f"{hub_url}/api/v1/docs")
    intro = page.get_by_test_id("api-intro")
    assert "`" not in intro.inner_text()
    assert intro.locator("code").first.inner_text().startswith("Authorization: Bearer")
    # The path's own parameters are described on the page too.
    assert "org's name" in page.locator("#get_org tbody tr").first.inner_text()


def test_the_home_page_links_to_the_api_reference(page, hub_url):
    page.goto(hub_url)
    page.get_by_test_id("api-docs-link").click()
    page.wait_for_url(f"{hub_url}/api/v1/docs")
    assert page.get_by_role("heading", level=1).inner_text().startswith("ChaosHub API")
