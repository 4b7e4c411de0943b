"""The main flow of the pages in headless Chromium, against the three services run as real processes.

mock_gateway accepts every message after a delay, so that the campaign page
is seen sending before its own polling shows it finished.
"""

import re

import pytest
from playwright.async_api import Page, expect

from tests.conftest import COOKIE_SECRET
from tests.processes import free_port, start_service, stop_service
from tests.service_secrets import email_client_secrets, web_secrets

ADMIN_EMAIL = "admin@example.com"
ADMIN_PASSWORD = "a long admin password"
# Long enough that the campaign page loads while its emails are still at the gateway.
GATEWAY_LATENCY_MS = 1500
CSV_FILE = (
    "email;first_name;last_name;city\n"
    "ada@example.com;Ada;Lovelace;London\n"
    "grace@example.com;Grace;Hopper;Arlington\n"
    "not-an-address;Bad;Row;Nowhere\n"
).encode()


@pytest.fixture(scope="session")
def browser_type_launch_args():
    return {
        "executable_path": "/usr/bin/chromium",
        "args": ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"],
    }


@pytest.fixture
def web_url(tmp_path, database_url, redis_url):
    """Start mock_gateway, email_client and web on free ports of 127.0.0.1; return web's URL."""
    gateway_port, email_client_port, web_port = free_port(), free_port(), free_port()
    gateway_url = f"http://127.0.0.1:{gateway_port}"
    email_client_url = f"http://127.0.0.1:{email_client_port}"
    web_url = f"http://127.0.0.1:{web_port}"
    processes = []
    try:
        processes.append(start_service("mock_gateway", {
            "MOCK_GATEWAY_HOST": "127.0.0.1",
            "MOCK_GATEWAY_PORT": str(gateway_port),
            "MOCK_GATEWAY_OUTCOMES": '{"202": 1}',
            "MOCK_GATEWAY_LATENCY_MS": str(GATEWAY_LATENCY_MS),
        }, gateway_port, tmp_path / "mock_gateway.log"))
        processes.append(start_service("email_client", {
            "REDIS_URL": redis_url,
            "EMAIL_CLIENT_HOST": "127.0.0.1",
            "EMAIL_CLIENT_PORT": str(email_client_port),
            "EMAIL_CLIENT_WEB_URL": web_url,
            "EMAIL_CLIENT_GATEWAY_URL": gateway_url,
            **email_client_secrets(),
        }, email_client_port, tmp_path / "email_client.log"))
        processes.append(start_service("web", {
            "DATABASE_URL": database_url,
            "WEB_HOST": "127.0.0.1",
            "WEB_PORT": str(web_port),
            "WEB_EMAIL_CLIENT_URL": email_client_url,
            "WEB_COOKIE_SECRET": COOKIE_SECRET,
            **web_secrets(),
            "WEB_ADMIN_EMAIL": ADMIN_EMAIL,
            "WEB_ADMIN_PASSWORD": ADMIN_PASSWORD,
        }, web_port, tmp_path / "web.log"))
        yield web_url
    finally:
        for process in reversed(processes):
            stop_service(process)


async def sign_in(page: Page, web_url: str) -> None:
    await page.goto(web_url + "/settings")
    await expect(page.locator("h1")).to_have_text("Sign in")
    await page.get_by_label("Email address", exact=True).fill(ADMIN_EMAIL)
    await page.get_by_label("Password", exact=True).fill("not the password")
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.locator(".form-error")).to_have_text("the email address or the password is wrong")
    await page.get_by_label("Password", exact=True).fill(ADMIN_PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.locator("h1")).to_have_text("Settings")
    assert page.url == web_url + "/settings"
    await expect(page.locator("#signed-in-as")).to_have_text(ADMIN_EMAIL)


async def fill_settings(page: Page, web_url: str) -> None:
    await page.goto(web_url + "/settings")
    await expect(page.locator("#settings-banner")).to_contain_text("From address")
    await page.get_by_label("From name", exact=True).fill("Postmill News")
    await page.get_by_label("From address", exact=True).fill("news@example.com")
    await page.get_by_label("Gateway username", exact=True).fill("postmill")
    await page.get_by_label("Gateway password", exact=True).fill("secret")
    await page.get_by_role("button", name="Save settings").click()
    await expect(page.locator(".flash")).to_have_text("Settings saved.")
    await expect(page.locator("#settings-banner")).to_have_count(0)
    await expect(page.locator("#password-state")).to_contain_text("A gateway password is set.")
    await expect(page.get_by_label("Gateway password", exact=True)).to_have_value("")


async def import_into_new_segment(page: Page, web_url: str) -> None:
    await page.goto(web_url + "/segments/new")
    await page.get_by_label("Name", exact=True).fill("Spring readers")
    await page.get_by_role("button", name="Add segment").click()
    await expect(page.locator("h1")).to_contain_text("Segment Spring readers")

    await page.get_by_role("link", name="Import contacts into this segment").click()
    await expect(page.locator("h1")).to_have_text("Import contacts")
    await expect(page.locator("#segment_id option:checked")).to_have_text("Spring readers")
    await page.get_by_label("CSV file", exact=True).set_input_files(
        files=[{"name": "contacts.csv", "mimeType": "text/csv", "buffer": CSV_FILE}]
    )
    await page.get_by_role("button", name="Import").click()
    await expect(page.locator("#import-status")).to_have_text("Import of contacts.csv finished.")
    await expect(page.locator('[data-report="created"]')).to_have_text("2")
    await expect(page.locator('[data-report="updated"]')).to_have_text("0")
    await expect(page.locator('[data-report="skipped"]')).to_have_text("1")
    error_row = page.locator("#import-errors tbody tr")
    await expect(error_row).to_have_count(1)
    await expect(error_row.locator("td").first).to_have_text("4")
    await expect(error_row.locator("td").last).to_contain_text("not a valid email address")

    await page.goto(web_url + "/segments")
    await expect(page.get_by_role("row", name=re.compile("Spring readers"))).to_contain_text("2")


async def create_and_preview_template(page: Page, web_url: str) -> None:
    await page.goto(web_url + "/templates/new")
    await page.get_by_label("Name", exact=True).fill("Spring news")
    await page.get_by_label("HTML", exact=True).fill("<h1>Hello {{ first_name }}</h1>\n<p>Spring in {{ city }}.</p>")
    await page.get_by_label("Text part", exact=True).fill("Hello {{ first_name }}, spring in {{ city }}.")
    await page.get_by_role("button", name="Add template").click()
    await expect(page.locator(".flash")).to_have_text("Template Spring news created.")

    await page.get_by_role("link", name="Preview").click()
    await page.get_by_label("Contact id or address", exact=True).fill("ada@example.com")
    await page.get_by_role("button", name="Show preview").click()
    await expect(page.locator("#preview-contact")).to_have_text("ada@example.com")
    await expect(page.frame_locator("iframe.preview").locator("h1")).to_have_text("Hello Ada")
    await expect(page.locator("#preview-text")).to_have_text("Hello Ada, spring in London.")


async def preview_runs_no_script(page: Page, web_url: str) -> None:
    await page.goto(web_url + "/templates/new")
    await page.get_by_label("Name", exact=True).fill("Script check")
    await page.get_by_label("HTML", exact=True).fill(
        '<p id="target">as written</p><script>document.getElementById("target").textContent = "ran"</script>')
    await page.get_by_role("button", name="Add template").click()
    await page.get_by_role("link", name="Preview").click()
    await expect(page.frame_locator("iframe.preview").locator("#target")).to_have_text("as written")


async def send_campaign(page: Page, web_url: str) -> None:
    await page.goto(web_url + "/campaigns/new")
    await page.get_by_label("Name", exact=True).fill("Spring 2025")
    await page.get_by_label("Segment", exact=True).select_option(label="Spring readers")
    await page.get_by_label("Template", exact=True).select_option(label="Spring news")
    await page.get_by_label("Subject", exact=True).fill("Spring is here, {{ first_name }}")
    await page.get_by_role("button", name="Create campaign").click()
    await expect(page.locator("#campaign-status")).to_have_text("draft")

    await page.get_by_role("link", name="Send…").click()
    await expect(page.locator("h1")).to_have_text("Send campaign Spring 2025?")
    await page.get_by_role("button", name="Send to 2 contacts").click()
    await expect(page.locator(".flash")).to_contain_text("is sending to 2 contacts")
    assert await page.locator("#campaign-status").text_content() == "sending"
    # A reload would drop this mark; only the page's own updates keep it.
    await page.evaluate("window.loadedOnce = true")

    await expect(page.locator("#campaign-status")).to_have_text("finished", timeout=30_000)
    assert await page.evaluate("window.loadedOnce === true")
    await expect(page.locator('[data-count="sent"]')).to_have_text("2")
    await expect(page.locator('[data-count="pending"]')).to_have_text("0")
    await expect(page.locator('[data-count="failed"]')).to_have_text("0")
    await expect(page.locator("#campaign-done")).to_have_text("2")
    job_statuses = page.locator("#jobs tbody tr td:nth-child(2)")
    await expect(job_statuses).to_have_text(["sent", "sent"])
    await expect(page.locator("#jobs tbody tr td:nth-child(4)").first).not_to_be_empty()


async def sign_out(page: Page, web_url: str) -> None:
    await page.get_by_role("button", name="Sign out").click()
    await expect(page.locator(".flash")).to_have_text("You are signed out.")
    await page.goto(web_url + "/campaigns")
    await expect(page.locator("h1")).to_have_text("Sign in")


async def test_main_flow(page: Page, web_url):
    # The pages must work under web's Content-Security-Policy: any refused script, style or frame fails the test.
    policy_errors = []
    page.on("console", lambda message: policy_errors.append(message.text)
            if "Content Security Policy" in message.text else None)

    await sign_in(page, web_url)
    await fill_settings(page, web_url)
    await import_into_new_segment(page, web_url)
    await create_and_preview_template(page, web_url)
    await send_campaign(page, web_url)

    await page.goto(web_url + "/")
    await expect(page.locator(".totals")).to_contain_text("Emails sent")
    await expect(page.get_by_role("row", name=re.compile("Spring 2025"))).to_contain_text("finished")
    assert policy_errors == []

    await preview_runs_no_script(page, web_url)
    await sign_out(page, web_url)
