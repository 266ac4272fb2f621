"""The search page, driven in Debian's headless Chromium by Playwright against a real ``searcher
serve`` (two indexes, a token, ``--watch``) on a free loopback port."""
from __future__ import annotations

import json
import shutil
import tempfile
import time
from pathlib import Path

import pytest

httpx = pytest.importorskip("httpx")
pytest.importorskip("fastapi")
sync_api = pytest.importorskip("playwright.sync_api")
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
if not Path(CHROMIUM).exists():
    pytest.skip("chromium is not installed (scripts/setup.sh installs it): the browser tests are skipped",
                allow_module_level=True)

from .conftest import NOTES, write_tree
from .test_server import TOKEN, start_server

ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
HOSTILE = "<img src=x onerror=alert(1)>.md"
DEPLOY = ("# Deploying\n\n" + "\n\n".join(f"Step {i}: the pipeline checks stage {i} and waits for the health check "
                                          "before the next stage of the rollout." for i in range(1, 40))
          + "\n\n## Rollback\n\nTo roll back a broken release, run the rollback job with the previous version tag; "
          "it restores the last good build.\n")


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """The server: index 'notes' (watching its folder) and index 'recipes', with a token."""
    from searcher import Searcher

    base = tmp_path_factory.mktemp("web")
    notes = write_tree(base / "notes", {**NOTES, "ops/deploy.md": DEPLOY, "photo.png": b"\x89PNG\r\n",
                                        f"evil/{HOSTILE}": "# Hostile\n\n<script>document.title='pwned'</script> and "
                                        "<img src=x onerror=\"document.title='pwned'\"> stay text.\n"})
    recipes = write_tree(base / "recipes", {"soup.md": "# Lentil soup\n\nSimmer red lentils with cumin and "
                                                       "lemon for twenty minutes.\n"})
    for folder in (notes, recipes):
        with Searcher(base / "idx" / folder.name) as s:
            s.index(folder)
    proc, url = start_server("--index", str(base / "idx/notes"), "--index", str(base / "idx/recipes"),
                             "--token", TOKEN, "--watch", str(notes), log=base / "server.log")
    yield url, notes
    proc.terminate()
    proc.wait(60)


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield b
        b.close()


@pytest.fixture
def page(browser, site):
    """A fresh page (empty session storage), past the token prompt."""
    url, _ = site
    context = browser.new_context(viewport={"width": 1100, "height": 720})
    context.add_init_script(f"sessionStorage.setItem('searcher.token', {json.dumps(TOKEN)})")
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.goto(url)
    yield pg
    context.close()
    assert not errors, errors


def search(pg, query: str) -> list[str]:
    """Type a query; the file names of the hits, best first, once the page shows them for this query."""
    pg.fill("#q", query)
    pg.wait_for_function("q => document.querySelector('#hits').dataset.query === q", arg=query)
    return pg.locator("#hits .hit .name").all_text_contents()


def test_typing_a_query_shows_the_right_document_first_with_marked_words(page):
    with page.expect_request(lambda r: r.url.endswith("/search")):
        names = search(page, "how do I keep more days of logs")
    assert names[0] == "logging.md"
    first = page.locator("#hits .hit").first
    assert first.locator(".where").text_content().endswith("logging.md:1 (Logging)")
    assert "days" in first.locator(".snippet mark").all_text_contents()
    assert float(first.locator(".score").text_content()) > 0


def test_mode_switch_and_filters_reach_the_search(page):
    search(page, "logs network error")
    with page.expect_request(lambda r: r.url.endswith("/search")) as req:
        page.check("input[name=mode][value=keyword]")
    assert req.value.post_data_json["mode"] == "keyword"
    names = lambda: page.locator("#hits .name").all_text_contents()
    page.wait_for_function("() => document.querySelector('#status').textContent.includes('result')")
    assert {"retry.py", "logging.md"} <= set(names())
    with page.expect_request(lambda r: r.url.endswith("/search")) as req:
        page.fill("#f-types", "md")
        page.press("#f-types", "Enter")
    assert req.value.post_data_json["filters"] == {"types": ["md"]}
    page.wait_for_function("() => !document.querySelector('#hits').textContent.includes('retry.py')")
    assert names() and all(n.endswith(".md") for n in names())
    page.check("input[name=mode][value=hybrid]")
    page.fill("#f-types", "")
    with page.expect_request(lambda r: r.url.endswith("/search") and "cooking" in r.post_data) as req:
        page.fill("#f-path", "*cooking*")
        page.press("#f-path", "Enter")
    assert req.value.post_data_json["filters"] == {"path": "*cooking*"} and req.value.post_data_json["mode"] == "hybrid"
    page.wait_for_function("() => [...document.querySelectorAll('#hits .name')].map(n => n.textContent).join() == 'bread.md'")


def test_keyboard_opens_a_hit_with_its_chunk_highlighted_and_in_view(page):
    assert search(page, "roll back a broken release")[0] == "deploy.md"
    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowUp")
    assert page.evaluate("document.activeElement.querySelector('.name').textContent") == "deploy.md"
    page.keyboard.press("Enter")
    chunk = page.locator("#doc-text mark#hit-chunk")
    chunk.wait_for()
    assert "roll back a broken release" in chunk.text_content()
    assert page.locator("#doc-path").text_content().endswith("ops/deploy.md")
    box, height = chunk.bounding_box(), page.viewport_size["height"]
    assert 0 <= box["y"] < height                      # scrolled to: the chunk's start is on screen
    assert "Step 1:" in page.locator("#doc-text").text_content()   # the whole document, not only the chunk
    page.keyboard.press("Escape")
    page.wait_for_selector("#view-search:not([hidden])")
    assert page.locator("#hits .hit").count() > 0      # the results are still there


def test_hostile_names_and_text_are_shown_as_text(page):
    names = search(page, "hostile script img onerror stay text")
    assert HOSTILE in names
    assert page.locator("#hits img, #hits script").count() == 0
    page.locator("#hits .hit", has_text=HOSTILE).click()
    page.wait_for_function("() => document.querySelector('#doc-text').textContent.includes('<script>')")
    assert page.locator("#doc-path").text_content().endswith(HOSTILE)
    assert page.locator("#view-doc img, #view-doc script").count() == 0
    assert page.title() == "searcher"


def test_the_page_asks_for_the_token_once_and_sends_it(browser, site):
    url, _ = site
    context = browser.new_context()
    pg = context.new_page()
    sent: list[str | None] = []
    pg.on("request", lambda r: sent.append(r.headers.get("authorization")) if r.url.endswith("/search") else None)
    pg.goto(url)
    pg.fill("#q", "how long does sourdough bread bake")
    pg.wait_for_selector("#token-dialog[open]")
    pg.fill("#token", "wrong")
    pg.press("#token", "Enter")
    pg.wait_for_function("() => document.querySelector('#token-error').textContent.includes('refused')")
    pg.fill("#token", TOKEN)
    pg.press("#token", "Enter")
    pg.wait_for_function("() => document.querySelector('#hits').textContent.includes('bread.md')")
    pg.goto(url + "#/index")                            # another view: no second prompt
    pg.wait_for_selector("#index-info dt")
    assert not pg.locator("#token-dialog").evaluate("d => d.open")
    assert sent[-1] == f"Bearer {TOKEN}" and sent[0] in (None, "Bearer wrong")
    context.close()


def test_index_page_and_a_second_index(page):
    page.goto(page.url.split("#")[0] + "#/index")
    page.wait_for_selector("#index-info dt")
    info = page.locator("#index-info").text_content()
    assert "all-MiniLM-L6-v2" in info and "recall@10" in info and "chunks" in info
    assert "photo.png" in page.locator("#skipped").text_content()
    assert "binary file type" in page.locator("#skipped").text_content()
    page.select_option("#index-select", "recipes")
    page.wait_for_function("() => document.querySelector('#index-title').textContent == 'Index recipes'")
    page.goto(page.url.split("#")[0] + "#/")
    assert search(page, "lentils with cumin") == ["soup.md"]


def test_a_saved_file_becomes_searchable_through_serve_watch(page, site):
    url, notes = site
    deadline = time.monotonic() + 180                 # the watcher's first run (after loading the model)
    while (httpx.get(url + "/info", headers={"Authorization": f"Bearer {TOKEN}"}).json()["last_run"] or {}).get(
            "kind") != "watch":
        assert time.monotonic() < deadline, "serve --watch made no first run"
        time.sleep(0.5)
    (notes / "ops/oncall.md").write_text("# On call\n\nThe on-call engineer carries the zebra pager.\n")
    deadline = time.monotonic() + 60
    while "oncall.md" not in search(page, "who carries the zebra pager"):
        assert time.monotonic() < deadline, "serve --watch did not index the new file within 60 s"
        page.fill("#q", "")
        page.wait_for_function("() => document.querySelector('#hits').dataset.query === ''")
        time.sleep(0.5)
    page.goto(page.url.split("#")[0] + "#/index")
    page.wait_for_function("() => document.querySelector('#index-run').textContent.includes('watch run')")


def test_no_endpoint_reads_files_outside_the_index(site):
    url, notes = site
    auth = {"Authorization": f"Bearer {TOKEN}"}
    secret = Path(tempfile.mkdtemp()) / "secret.md"
    secret.write_text("not indexed")
    for path in (f"/documents/{secret}", "/documents/%2Fetc%2Fpasswd", "/ui/..%2Fserver.py", "/ui/%2Fetc%2Fpasswd",
                 "/ui/index.html/../../server.py"):
        r = httpx.get(url + path, headers=auth)
        assert r.status_code == 404, (path, r.text)
        assert "not indexed" not in r.text and "root:" not in r.text
    doc = httpx.get(url + f"/documents/{notes / 'ops/logging.md'}", headers=auth).json()
    assert doc["kind"] == "markdown" and doc["text"].startswith("# Logging")
    assert httpx.get(url + f"/documents/{notes / 'ops/logging.md'}").status_code == 401
    page = httpx.get(url + "/")
    assert page.status_code == 200 and "script-src 'self'" in page.headers["content-security-policy"]
