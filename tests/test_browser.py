"""The search page in a real browser: Debian's headless Chromium driven by Playwright.

Never downloads a browser. Without /usr/bin/chromium (or without Playwright) the
tests are skipped, unless SEARCH_REQUIRE_BROWSER=1 (as in CI), when they fail.
Waiting is done with Playwright's auto-waiting ``expect``; JavaScript timers are
driven with Playwright's fake clock where a test must prove that nothing happens.
"""

from __future__ import annotations

import os
import re
import threading
from pathlib import Path
from urllib.parse import quote

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
CONTENT = ROOT / "content"
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
DEBOUNCE_MS = 200  # search-widget.js
XSS = "<script>alert(1)</script>"


def _unavailable(reason: str):
    if os.environ.get("SEARCH_REQUIRE_BROWSER") == "1":
        pytest.fail(f"browser test cannot run ({reason}) and SEARCH_REQUIRE_BROWSER=1 is set; "
                    "install Debian's Chromium: apt-get install chromium", pytrace=False)
    pytest.skip(f"browser test skipped: {reason} (set SEARCH_REQUIRE_BROWSER=1 to make this a failure)")


@pytest.fixture(scope="module", autouse=True)
def _browser_available():
    """Checked before anything is built, so that a missing browser skips (or fails) at once."""
    if not CHROMIUM.exists():
        _unavailable(f"{CHROMIUM} is missing")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError as e:
        _unavailable(f"Playwright for Python is not installed: {e}")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """Base URL of the app serving an index of the sample articles in content/."""
    from werkzeug.serving import make_server

    from search.indexer import build
    from search.web import create_app

    index = tmp_path_factory.mktemp("browser") / "index"
    build(CONTENT, index, workers=1)
    app = create_app({"index_dir": str(index)})
    srv = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=srv.serve_forever, name="search-test-server", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{srv.server_port}"
    finally:
        srv.shutdown()
        thread.join(10)
        srv.server_close()


@pytest.fixture(scope="module")
def browser(_browser_available):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


class Watched:
    """A page with everything that went wrong in it collected."""

    def __init__(self, context):
        self.context = context
        self.page = context.new_page()
        self.errors: list[str] = []
        self.requests: list[str] = []
        self.dialogs: list[str] = []
        self.page.on("console", lambda m: m.type == "error" and self.errors.append(f"console: {m.text}"))
        self.page.on("pageerror", lambda e: self.errors.append(f"pageerror: {e}"))
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.page.on("dialog", self._dialog)

    def _dialog(self, dialog):
        self.dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()

    def api_calls(self, path: str) -> list[str]:
        return [u for u in self.requests if f"/api/{path}" in u]

    def assert_clean(self):
        assert self.errors == [], "errors in the page:\n" + "\n".join(self.errors)
        assert self.dialogs == [], f"dialogs opened: {self.dialogs}"


@pytest.fixture
def open_page(browser):
    """open_page(**context_options) -> Watched; contexts are closed after the test."""
    contexts = []

    def make(**options) -> Watched:
        context = browser.new_context(**options)
        context.set_default_timeout(10_000)
        contexts.append(context)
        return Watched(context)

    yield make
    for c in contexts:
        c.close()


def total(page) -> int:
    text = page.locator(".search-status p").first.inner_text()
    m = re.fullmatch(r"(\d+) 件", text.strip())
    assert m, f"no result count in {text!r}"
    return int(m.group(1))


def test_ime_composition_searches_only_when_done(server, open_page):
    from playwright.sync_api import expect

    w = open_page()
    page = w.page
    page.clock.install()
    page.goto(server + "/")
    box = page.get_by_label("キーワード")
    box.focus()
    box.evaluate("el => el.dispatchEvent(new CompositionEvent('compositionstart', {bubbles: true, data: ''}))")
    for text in ["ゆ", "ゆー", "ゆーざ", "ゆーざー", "ユーザー"]:  # romaji typing, then conversion
        box.evaluate("""(el, text) => {
            el.value = text;
            el.dispatchEvent(new CompositionEvent('compositionupdate', {bubbles: true, data: text}));
            el.dispatchEvent(new InputEvent('input', {bubbles: true, isComposing: true,
                                                      inputType: 'insertCompositionText', data: text}));
        }""", text)
        page.clock.run_for(DEBOUNCE_MS * 3)  # far past the debounce: a search would have started
    assert w.api_calls("search") == [], "searched while the IME was composing"
    assert w.api_calls("suggest") == [], "asked for suggestions while the IME was composing"

    with page.expect_request(lambda r: "/api/search" in r.url) as searched:
        box.evaluate("el => el.dispatchEvent(new CompositionEvent('compositionend', {bubbles: true, data: 'ユーザー'}))")
        page.clock.run_for(DEBOUNCE_MS * 2)
    assert "q=" + quote("ユーザー") in searched.value.url

    hits = page.locator(".search-results .search-hit")
    expect(hits.first).to_be_visible()
    marks = page.locator(".search-results mark")
    expect(marks.first).to_be_visible()
    assert all("ユーザ" in t for t in marks.all_inner_texts())
    assert total(page) == hits.count() > 0
    assert len(w.api_calls("search")) == 1
    expect(page).to_have_url(re.compile(r"\?q=" + re.escape(quote("ユーザー")) + "$"))
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "search-page.png"), full_page=True)

    # More typing updates the same history entry; "back" returns to the empty page.
    box.evaluate("el => { el.value = 'ユーザー 体験'; el.dispatchEvent(new InputEvent('input', {bubbles: true})); }")
    page.clock.run_for(DEBOUNCE_MS * 2)
    expect(page).to_have_url(re.compile(r"\?q=" + re.escape(quote("ユーザー 体験").replace("%20", "+")) + "$"))
    page.go_back()
    expect(page).to_have_url(server + "/")
    expect(box).to_have_value("")
    expect(hits).to_have_count(0)
    expect(page).to_have_title("記事検索")
    w.assert_clean()


def test_tag_facet_survives_reload_and_back(server, open_page):
    from playwright.sync_api import expect

    w = open_page()
    page = w.page
    page.goto(server + "/")
    box = page.get_by_label("キーワード")
    box.fill("AI")
    box.press("Enter")
    expect(page).to_have_url(re.compile(r"\?q=AI$"))
    expect(page).to_have_title("AI - 記事検索")
    expect(page.locator(".search-results .search-hit").first).to_be_visible()
    before = total(page)

    chips = page.locator(".search-facets .chip")
    expect(chips.first).to_be_visible()
    chip, tag, count = None, None, None
    for i in range(chips.count()):
        c = chips.nth(i)
        m = re.fullmatch(r"(.+) (\d+)", c.inner_text().strip())
        assert m, f"unexpected chip text {c.inner_text()!r}"
        if int(m.group(2)) < before:
            chip, tag, count = c, m.group(1), int(m.group(2))
            break
    assert chip is not None, "no tag chip narrows the results; pick another query"

    chip.click()
    status = page.locator(".search-status p").first
    expect(status).to_have_text(f"{count} 件")
    expect(page).to_have_url(re.compile(r"[?&]tag=" + re.escape(quote(tag))))
    selected = page.locator(".search-selected .chip-selected")
    expect(selected).to_have_count(1)
    expect(selected).to_contain_text(tag)
    for hit_tags in page.locator(".search-results .search-hit .hit-meta").all():
        assert tag in hit_tags.locator(".tag").all_inner_texts()

    page.reload()
    expect(box).to_have_value("AI")
    expect(selected).to_have_count(1)
    expect(selected).to_contain_text(tag)
    expect(status).to_have_text(f"{count} 件")
    expect(page.locator(".search-results .search-hit")).to_have_count(min(count, 10))

    box.fill("GPU")
    box.press("Enter")
    expect(page).to_have_title("GPU - 記事検索")
    page.go_back()
    expect(page).to_have_url(re.compile(r"\?q=AI&tag="))
    expect(page).to_have_title("AI - 記事検索")
    expect(box).to_have_value("AI")
    page.go_back()
    expect(page).to_have_url(re.compile(r"\?q=AI$"))
    expect(box).to_have_value("AI")
    expect(selected).to_have_count(0)
    expect(status).to_have_text(f"{before} 件")
    w.assert_clean()


def test_works_without_javascript(server, open_page):
    from playwright.sync_api import expect

    w = open_page(java_script_enabled=False)
    page = w.page
    page.goto(server + "/?q=" + quote("泳ぐ"))
    hits = page.locator(".search-results .search-hit")
    expect(hits).to_have_count(1)
    expect(hits.locator("a.hit-title")).to_contain_text("ロボット魚")
    expect(hits.locator("a.hit-title")).to_have_attribute("href", "/articles/robot-fish-osaka-expo/")
    expect(hits.locator("mark").first).to_be_visible()
    expect(page.locator(".search-status")).to_contain_text("1 件")

    # The form and the tag links work as plain HTML.
    box = page.get_by_label("キーワード")
    box.fill("GPU")
    box.press("Enter")
    expect(page).to_have_url(re.compile(r"\?q=GPU"))
    expect(hits.first).to_be_visible()
    before = total(page)
    chip = page.locator(".search-facets a.chip", has_text=re.compile(r"^LLM "))
    count = int(chip.locator(".count").inner_text())
    assert count < before
    chip.click()
    expect(page).to_have_url(re.compile(r"\?q=GPU&tag=LLM$"))
    selected = page.locator(".search-selected .chip-selected")
    expect(selected).to_have_text("LLM ×")
    expect(hits).to_have_count(count)
    assert total(page) == count
    box.fill("AI")
    box.press("Enter")  # a new query keeps the tag filter
    expect(page).to_have_url(re.compile(r"\?q=AI&tag=LLM"))
    expect(selected).to_have_text("LLM ×")
    selected.click()
    expect(page).to_have_url(re.compile(r"\?q=AI$"))
    expect(selected).to_have_count(0)

    response = page.goto(server + "/?q=" + quote(XSS))
    assert response is not None and response.ok
    assert XSS not in response.text()
    assert XSS not in page.content()
    expect(box).to_have_value(XSS)
    assert page.locator("script").count() == 1  # only the page's own script tag
    w.assert_clean()


def test_escaping_with_javascript(server, open_page):
    """The script keeps user text and snippets as text: no element but <mark>."""
    from playwright.sync_api import expect

    w = open_page()
    page = w.page
    page.goto(server + "/?q=" + quote(XSS))  # the server-rendered snippet first
    box = page.get_by_label("キーワード")
    expect(box).to_have_value(XSS)
    snippet = page.locator(".search-results .hit-snippet").first
    expect(snippet).to_contain_text("<script>alert(1)</script>")
    with page.expect_response(lambda r: "/api/search?q=alert&" in r.url):
        box.fill("alert")
        box.press("Enter")
    expect(page).to_have_url(re.compile(r"\?q=alert$"))
    expect(snippet.locator("mark")).to_have_text(["alert"])
    expect(snippet).to_contain_text("<script>alert(1)</script>")
    tags = page.locator(".search-results *").evaluate_all("els => [...new Set(els.map(e => e.localName))]")
    assert set(tags) <= {"li", "a", "mark", "div", "time", "span", "p"}, tags
    box.fill(XSS)
    box.press("Enter")
    expect(page.locator(".search-status p").first).to_be_visible()
    assert page.locator("script").count() == 1
    w.assert_clean()


@pytest.mark.parametrize("query", ["AI", "alert", "Next.js"])
def test_phone_width(server, open_page, query):
    from playwright.sync_api import expect

    w = open_page(viewport={"width": 375, "height": 740}, device_scale_factor=2, is_mobile=True, has_touch=True)
    page = w.page
    page.goto(server + "/")
    box = page.get_by_label("キーワード")
    expect(box).to_be_visible()
    box.fill(query)
    box.press("Enter")
    expect(page.locator(".search-results .search-hit").first).to_be_visible()
    expect(page.get_by_role("button", name="検索")).to_be_visible()
    box_width = box.bounding_box()["width"]
    assert box_width > 200, f"the search box is only {box_width}px wide"
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    page.goto(server + "/?q=" + quote(query))  # the server-rendered page too
    expect(page.locator(".search-results .search-hit").first).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    w.assert_clean()


def test_more_results_after_server_rendered_page(server, open_page):
    """The script replaces the server's page links by "more"; both reach every result."""
    from playwright.sync_api import expect

    w = open_page()
    page = w.page
    page.goto(server + "/?q=" + quote("開発") + "&per_page=8")
    links = page.locator(".search-results a.hit-title")
    expect(links).to_have_count(8)
    n = total(page)
    assert n > 16, "pick a query with more than two pages of results"
    more = page.get_by_role("button", name="もっと見る")
    expect(page.locator(".search-pages")).to_have_count(0)
    more.click()
    expect(links).to_have_count(16)
    more.click()
    expect(links).to_have_count(n)
    expect(more).to_be_hidden()
    hrefs = links.evaluate_all("els => els.map(e => e.getAttribute('href'))")
    assert len(set(hrefs)) == n
    w.assert_clean()

    plain = open_page(java_script_enabled=False)
    page = plain.page
    page.goto(server + "/?q=" + quote("開発") + "&per_page=8&sort=date")
    page.get_by_role("link", name="次へ").click()
    expect(page).to_have_url(re.compile(r"per_page=8&page=2$"))
    expect(page).to_have_url(re.compile(r"sort=date"))
    expect(page.locator(".search-results .search-hit")).to_have_count(8)
    expect(page.locator(".search-pages")).to_contain_text("2 / ")
    plain.assert_clean()


def _focus_visible(locator) -> bool:
    style = locator.evaluate("el => { const s = getComputedStyle(el); return [s.outlineStyle, s.outlineWidth]; }")
    return style[0] != "none" and style[1] != "0px"


def test_keyboard_reaches_results(server, open_page):
    from playwright.sync_api import expect

    w = open_page()
    page = w.page
    page.clock.install()
    page.goto(server + "/")
    box = page.get_by_label("キーワード")
    suggest = page.locator(".search-suggest")
    box.fill("GPU")
    box.press("Enter")  # before the debounce ran out: the submit replaces the pending search
    links = page.locator(".search-results a.hit-title")
    expect(links.first).to_be_visible()
    page.clock.run_for(DEBOUNCE_MS * 3)
    assert len(w.api_calls("search")) == 1
    assert w.api_calls("suggest") == [], "the typed-ahead timer survived the submit"
    expect(suggest).to_be_hidden()
    box.press("ArrowDown")
    expect(links.nth(0)).to_be_focused()
    assert _focus_visible(links.nth(0))
    page.keyboard.press("ArrowDown")
    expect(links.nth(1)).to_be_focused()
    page.keyboard.press("ArrowUp")
    page.keyboard.press("ArrowUp")
    expect(box).to_be_focused()

    # Suggestions: the arrow keys move through them and Enter picks one.
    box.fill("")
    box.press_sequentially("Pyth")
    page.clock.run_for(DEBOUNCE_MS * 2)
    options = page.locator(".search-suggest [role=option]")
    expect(options.first).to_be_visible()
    expect(box).to_have_attribute("aria-expanded", "true")
    box.press("ArrowDown")
    expect(options.first).to_have_attribute("aria-selected", "true")
    picked = options.first.inner_text()
    box.press("Enter")
    expect(box).to_have_value(picked)
    expect(page.locator(".search-suggest")).to_be_hidden()
    expect(links.first).to_be_visible()
    box.press("ArrowDown")
    expect(links.first).to_be_focused()

    # Escape closes the open list and keeps the query (a search box's own Escape clears it);
    # leaving the box closes the list too.
    box.fill("")
    box.press_sequentially("Pyt")
    page.clock.run_for(DEBOUNCE_MS * 2)
    expect(options.first).to_be_visible()
    box.press("Escape")
    expect(suggest).to_be_hidden()
    expect(box).to_have_value("Pyt")
    box.press("h")
    page.clock.run_for(DEBOUNCE_MS * 2)
    expect(options.first).to_be_visible()
    box.press("Tab")
    expect(suggest).to_be_hidden()
    box.focus()

    # Suggestions that arrive after the search was submitted stay closed.
    held = []
    page.route("**/api/suggest?*", lambda route: held.append(route))
    box.fill("Pyth")
    with page.expect_request("**/api/suggest?*"):
        page.clock.run_for(DEBOUNCE_MS * 2)
    box.press("Enter")
    assert len(held) == 1
    with page.expect_response("**/api/suggest?*"):
        held[0].continue_()
    page.evaluate("() => fetch('/health').then(r => r.json())")  # let the page handle the late answer
    expect(suggest).to_be_hidden()
    expect(box).to_have_attribute("aria-expanded", "false")
    page.unroute("**/api/suggest?*")

    # The server-rendered page: ArrowDown and Tab both reach the results.
    page.goto(server + "/?q=GPU")
    box.focus()
    box.press("ArrowDown")
    expect(links.first).to_be_focused()
    assert _focus_visible(links.first)
    box.focus()
    for _ in range(30):
        page.keyboard.press("Tab")
        if links.first.evaluate("el => el === document.activeElement"):
            break
    else:
        pytest.fail("Tab never reached the first result")
    assert _focus_visible(links.first)
    w.assert_clean()
