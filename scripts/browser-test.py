#!/usr/bin/env python3
"""The admin UI in real headless Chromium (selenium + chromedriver), against a running Keywarden and mock vendors.

    python3 scripts/browser-test.py http://127.0.0.1:PORT ADMIN_TOKEN SCREENSHOT_DIR

Signs in, saves a key on the OpenAI card, changes the default model with the key blank and tests it, meets the
activation guard on an empty card, watches the stats strip move, creates / searches / sorts / pages / edits /
deletes (with confirmation) workspace keys, checks that a viewer is offered no edit controls, and that no page
ever contains the canary key. Saves a screenshot of each page at laptop and phone widths.
"""
import json
import time
import os
import signal
import sys
import urllib.error
import urllib.request

signal.signal(signal.SIGTERM, signal.SIG_DFL)

from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

base, admin, shots = sys.argv[1].rstrip("/"), sys.argv[2], sys.argv[3]
os.makedirs(shots, exist_ok=True)
CANARY = "sk-canary-ui-Zq81Lm0Pw3Xv"
failures = []


def check(condition, what):
    print(("ok   " if condition else "FAIL ") + what)
    if not condition:
        failures.append(what)


def api(method, path, body=None, token=admin):
    request = urllib.request.Request(base + path, method=method, data=json.dumps(body).encode() if body is not None else None,
                                     headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    with urllib.request.urlopen(request) as reply:
        return json.loads(reply.read() or b"{}")


options = webdriver.ChromeOptions()
for flag in ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--window-size=1280,900"]:
    options.add_argument(flag)
driver = webdriver.Chrome(service=webdriver.ChromeService(executable_path=os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver")), options=options)
driver.implicitly_wait(3)
seen_sources = []


def visit(path):
    driver.get(base + path)
    seen_sources.append(driver.page_source)


def shot(name):
    seen_sources.append(driver.page_source)
    driver.set_window_size(1280, 900)
    driver.save_screenshot(os.path.join(shots, f"{name}.png"))
    driver.set_window_size(390, 844)
    driver.save_screenshot(os.path.join(shots, f"{name}-phone.png"))
    driver.set_window_size(1280, 900)


def wait_for(text, timeout=8.0):
    """Whether `text` appears in the page within `timeout` seconds (a click's navigation may still be loading)."""
    import time
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            if text in driver.page_source:
                return True
        except Exception:
            pass
        time.sleep(0.1)
    return False


def submit(element):
    """Clicks something that loads a new page, and waits until it has.

    The old page is marked with a window property that a new document does not carry; asking for it while the
    browser swaps documents can fail (chromedriver: "Node with given id does not belong to the document"), so
    such errors mean "not yet" and the wait asks again.
    """
    driver.execute_script("window.__keywardenOldPage = true")
    element.click()

    def loaded(d):
        try:
            return d.execute_script("return !window.__keywardenOldPage && document.readyState === 'complete'")
        except WebDriverException:
            return False

    WebDriverWait(driver, 15, poll_frequency=0.1).until(loaded)
    seen_sources.append(driver.page_source)


def card(provider):
    return driver.find_element(By.ID, provider)


def stat(name):
    return int(driver.find_element(By.ID, f"stat-{name}").text)


def sign_in(token):
    visit("/login")
    driver.find_element(By.NAME, "token").send_keys(token)
    submit(driver.find_element(By.CSS_SELECTOR, "form button[type=submit]"))


try:
    # Sign in.
    visit("/login")
    shot("01-login")
    sign_in(admin)
    check(driver.current_url.endswith("/platform/providers"), "a platform admin lands on the provider cards")
    before = {name: stat(name) for name in ["providers", "active", "ready", "nokey"]}
    check(before["providers"] >= 20 and before["nokey"] == before["providers"], f"stats strip on a fresh install: {before}")

    # Paste a key on the OpenAI card and save.
    card("openai").find_element(By.NAME, "api_key").send_keys(CANARY)
    submit(card("openai").find_element(By.CSS_SELECTOR, "button.primary"))
    check(wait_for("OpenAI settings saved.") and "OpenAI settings saved." in card("openai").text, "saving shows 'OpenAI settings saved.'")
    placeholder = card("openai").find_element(By.NAME, "api_key").get_attribute("placeholder")
    check("saved — leave blank to keep" in placeholder, f"the key field says it is saved: {placeholder!r}")
    check(card("openai").find_element(By.NAME, "api_key").get_attribute("value") == "", "the key field is empty after saving")
    check(stat("nokey") == before["nokey"] - 1, "No key set moves down by one")

    # Change the default model with the key field blank; the key still works (Test against the mock says valid).
    models = Select(card("openai").find_element(By.NAME, "default_model"))
    choice = next(o.get_attribute("value") for o in models.options if o.get_attribute("value") and not o.is_selected() and o.is_enabled())
    models.select_by_value(choice)
    submit(card("openai").find_element(By.CSS_SELECTOR, "button.primary"))
    check(Select(card("openai").find_element(By.NAME, "default_model")).first_selected_option.get_attribute("value") == choice,
          f"the default model is now {choice}")
    submit(card("openai").find_element(By.XPATH, ".//button[text()='Test']"))
    check("valid" in card("openai").find_element(By.CSS_SELECTOR, "[data-status]").text, "Test with the kept key says valid")
    shot("02-providers-tested")

    # Activate: the stats strip moves; an empty card meets the guard.
    submit(card("openai").find_element(By.XPATH, ".//button[text()='Activate']"))
    check(stat("active") == before["active"] + 1 and stat("ready") == before["ready"] + 1, "Active and Ready move up after activating")
    submit(card("anthropic").find_element(By.XPATH, ".//button[text()='Activate']"))
    check("Add an API key before activating." in card("anthropic").text, "an empty card shows the activation guard")
    shot("03-providers-guard")
    # The platform's OpenAI key rotates from its card: its own page, the same steps as a workspace key.
    visit("/platform/providers")
    submit(driver.find_element(By.CSS_SELECTOR, "#openai a[href='/platform/providers/openai/rotation']"))
    check(wait_for("Rotate this key") and "the platform's key" in driver.page_source, "a card with a key opens its rotation page")
    driver.find_element(By.ID, "new_api_key").send_keys(CANARY + "-platform-rotated")
    submit(driver.find_element(By.XPATH, "//button[text()='Stage new key']"))
    submit(driver.find_element(By.XPATH, "//button[text()='Test new key']"))
    check(wait_for("Valid:"), "the card's staged key is tested")
    submit(driver.find_element(By.XPATH, "//button[text()='Promote the new key']"))
    check(wait_for("New key promoted.") and CANARY not in driver.page_source, "the card's key is promoted; no page shows a key")
    shot("03b-card-rotation")
    driver.find_element(By.XPATH, "//button[text()='Remove old key now']").click()
    submit(driver.find_element(By.ID, "confirm-ok"))
    check(wait_for("Rotation finished"), "the card's old key is removed")

    # Workspace keys: create (form), search, sort, paginate, edit, delete with confirmation.
    workspace = api("POST", "/api/v1/workspaces", {"name": "Acme Support"})["id"]
    for i in range(11):
        api("POST", f"/api/v1/workspaces/{workspace}/keys",
            {"provider": ["openai", "anthropic", "elevenlabs"][i % 3], "description": f"Team key {i:02d}", "api_key": f"sk-team-{i:02d}-abcdefgh", "role": "fallback"})
    visit(f"/workspaces/{workspace}/keys")
    check(not driver.find_elements(By.ID, "description"), "before a provider is chosen the form asks only for the provider")
    # Choosing the provider shows its fields (the select submits itself; without JavaScript, "Show its fields" does).
    Select(driver.find_element(By.ID, "provider")).select_by_value("azure-openai")
    check(wait_for("New Azure OpenAI key"), "choosing Azure OpenAI shows its form")
    labels = driver.find_element(By.CSS_SELECTOR, "section[aria-labelledby=new-key]").text
    check("Endpoint URL (required)" in labels and "API version (required)" in labels and "Deployment" in labels,
          f"the Azure OpenAI form shows its required endpoint and API version at creation: {labels!r}")
    shot("04a-keys-create-azure")
    Select(driver.find_element(By.ID, "provider")).select_by_value("openai")
    check(wait_for("New OpenAI key"), "choosing OpenAI shows its form")
    check(driver.find_element(By.ID, "extra-organization_id") is not None and
          Select(driver.find_element(By.ID, "default_model")).first_selected_option.get_attribute("value") == "gpt-5.4-mini",
          "the OpenAI form shows its optional fields and the default model list")
    driver.find_element(By.ID, "description").send_keys("Assistant chat key")
    driver.find_element(By.ID, "api_key").send_keys(CANARY + "-ws")
    submit(driver.find_element(By.XPATH, "//button[text()='Save & Verify']"))
    check(wait_for("API key created."), "creating a key shows a toast")
    check(driver.find_element(By.CSS_SELECTOR, "tbody tr td").text == "Assistant chat key", "the key just saved is pinned at the top of the table")
    note = driver.find_element(By.XPATH, "//tr[td[contains(., 'Assistant chat key')]]//p[contains(@class,'row-note')]").text
    check(note.startswith("Valid"), f"Save & Verify shows the result on the key's row: {note!r}")
    shot("04b-keys-saved-verified")
    visit(f"/workspaces/{workspace}/keys")
    check("12 keys" in driver.page_source, "twelve keys in the table")
    check(len(driver.find_elements(By.CSS_SELECTOR, "tbody tr")) == 10, "a page holds ten rows")
    submit(driver.find_element(By.CSS_SELECTOR, "a[rel=next]"))
    check(len(driver.find_elements(By.CSS_SELECTOR, "tbody tr")) == 2 and "Page 2 of 2" in driver.page_source, "page two holds the other two")
    shot("04-keys-page2")
    visit(f"/workspaces/{workspace}/keys")
    driver.find_element(By.ID, "search").send_keys("Assistant")
    submit(driver.find_element(By.XPATH, "//button[text()='Filter']"))
    rows = driver.find_elements(By.CSS_SELECTOR, "tbody tr")
    check(len(rows) == 1 and "Assistant chat key" in rows[0].text, "search by description finds one key")
    visit(f"/workspaces/{workspace}/keys?category=voice")
    check("3 keys" in driver.page_source, "the Voice category shows the ElevenLabs keys")
    visit(f"/workspaces/{workspace}/keys")
    submit(driver.find_element(By.LINK_TEXT, "Description"))
    first = driver.find_elements(By.CSS_SELECTOR, "tbody tr td")[0].text
    submit(driver.find_element(By.PARTIAL_LINK_TEXT, "Description"))
    first_desc = driver.find_elements(By.CSS_SELECTOR, "tbody tr td")[0].text
    check(first == "Assistant chat key" and first_desc == "Team key 10", f"sorting by description, both ways: {first!r}, {first_desc!r}")
    submit(driver.find_element(By.LINK_TEXT, "Team key 10"))
    description = driver.find_element(By.ID, "description")
    description.clear()
    description.send_keys("Team key 10 (renamed)")
    check(driver.find_element(By.ID, "extra-default_max_tokens") is not None, "the edit form shows the key's own extras (Anthropic: default max tokens)")
    Select(driver.find_element(By.ID, "default_model")).select_by_value("claude-haiku-4-5")
    driver.find_element(By.ID, "extra-default_max_tokens").send_keys("2048")
    submit(driver.find_element(By.XPATH, "//button[text()='Save changes']"))
    check(wait_for("API key updated."), "editing a key from its row shows a toast")
    visit(f"/workspaces/{workspace}/keys?search=renamed")
    check("Team key 10 (renamed)" in driver.page_source, "the edited description is saved")
    edited = next(k for k in api("GET", f"/api/v1/workspaces/{workspace}/keys?search=renamed")["items"])
    check(edited.get("default_model") == "claude-haiku-4-5" and "default_max_tokens" in edited.get("extras_set", []),
          f"the edited default model and extra are saved: {edited.get('default_model')}, {edited.get('extras_set')}")
    # The key's life: an expiry date and a rotate-by age, then the guided rotation under the same key id.
    visit(f"/workspaces/{workspace}/keys?search=Assistant")
    submit(driver.find_element(By.LINK_TEXT, "Assistant chat key"))
    driver.execute_script("arguments[0].value = arguments[1]", driver.find_element(By.ID, "expires_at"),
                          time.strftime("%Y-%m-%d", time.gmtime(time.time() + 10 * 86400)))
    driver.find_element(By.ID, "rotate_by_days").send_keys("90")
    submit(driver.find_element(By.XPATH, "//button[text()='Save changes']"))
    check(wait_for("API key updated."), "saving an expiry date and a rotate-by age")
    visit(f"/workspaces/{workspace}/keys?search=Assistant")
    row_notes = driver.find_element(By.XPATH, "//tr[td[contains(., 'Assistant chat key')]]").text
    check("Expires in 9 days" in row_notes or "Expires in 10 days" in row_notes, f"the row warns of the near expiry: {row_notes!r}")
    submit(driver.find_element(By.LINK_TEXT, "Assistant chat key"))
    key_id = driver.current_url.rstrip("/").split("/")[-1]
    check("Rotate this key" in driver.page_source and driver.find_element(By.CSS_SELECTOR, ".step.current").text.endswith("Add the new key"),
          "the key's page offers the guided rotation, at its first step")
    driver.find_element(By.ID, "new_api_key").send_keys(CANARY + "-rotated")
    submit(driver.find_element(By.XPATH, "//button[text()='Stage new key']"))
    check(wait_for("New key staged."), "staging the new key")
    submit(driver.find_element(By.XPATH, "//button[text()='Test new key']"))
    check(wait_for("Valid:"), "the staged key's test shows its verdict")
    check(driver.find_element(By.CSS_SELECTOR, ".step.current").text.endswith("Promote it"), "after a passing test the next step is promotion")
    shot("04c-key-rotation-tested")
    submit(driver.find_element(By.XPATH, "//button[text()='Promote the new key']"))
    check(wait_for("New key promoted.") and "serves as fallback until" in driver.page_source, "promotion keeps the old key as fallback")
    check(driver.current_url.endswith(key_id) or key_id in driver.page_source, "the key keeps its id")
    shot("04d-key-rotation-promoted")
    driver.find_element(By.XPATH, "//button[text()='Remove old key now']").click()
    submit(driver.find_element(By.ID, "confirm-ok"))
    check(wait_for("Rotation finished"), "removing the old key ends the rotation")
    check(CANARY not in driver.page_source, "no page shows the key")
    visit(f"/workspaces/{workspace}/keys")
    row = driver.find_element(By.XPATH, "//tr[td[contains(., 'Team key 03')]]")
    row.find_element(By.XPATH, ".//button[text()='Delete']").click()
    dialog = driver.find_element(By.TAG_NAME, "dialog")
    check("Delete the key" in dialog.text, "delete asks for confirmation first")
    shot("05-keys-confirm")
    submit(driver.find_element(By.ID, "confirm-ok"))
    check(wait_for("API key deleted.") and "Team key 03" not in driver.page_source, "confirming deletes the key")
    shot("06-keys")

    # A few gateway calls for the workspace, so the usage page has something to draw.
    for _ in range(3):
        request = urllib.request.Request(base + "/openai/v1/chat/completions", method="POST",
                                         data=json.dumps({"model": "gpt-5.4-mini", "messages": [{"role": "user", "content": "hi"}]}).encode(),
                                         headers={"Authorization": f"Bearer {admin}", "Content-Type": "application/json", "X-Keywarden-Workspace": workspace})
        urllib.request.urlopen(request).read()
    for _ in range(50):
        if api("GET", f"/api/v1/usage?workspace={workspace}")["totals"]["requests"] >= 3:
            break
        time.sleep(0.1)
    visit(f"/workspaces/{workspace}/usage")
    check("Calls per day by source" in driver.page_source and driver.find_elements(By.CSS_SELECTOR, "svg.chart rect"),
          "the usage page draws its charts")
    check(driver.find_element(By.CSS_SELECTOR, ".stats li .n").text == "3", "the usage totals count the three calls")
    shot("07-usage")
    driver.find_element(By.ID, "platform-limit").send_keys("10")
    submit(driver.find_element(By.XPATH, "//button[text()='Save budget']"))
    check(wait_for("Budget saved.") and "of 10 credits" in driver.page_source and driver.find_elements(By.CSS_SELECTOR, "progress"),
          "a platform admin sets the workspace's budget; the usage page shows its progress")
    shot("07b-usage-budget")
    href = driver.find_element(By.LINK_TEXT, "CSV").get_attribute("href")
    session = driver.get_cookie("kw_session")["value"]
    exported = urllib.request.urlopen(urllib.request.Request(href, headers={"Cookie": f"kw_session={session}"})).read().decode()
    check(exported.startswith("at,workspace_id,provider") and exported.count("\r\n") == 4, f"the usage page's CSV link exports the three calls: {exported[:80]!r}")
    visit(f"/workspaces/{workspace}/requests")
    rows = driver.find_elements(By.CSS_SELECTOR, "table.requests tbody tr[data-request]")
    check(len(rows) == 3, f"the request log lists the three calls: {len(rows)}")
    shot("07c-requests")
    visit(f"/workspaces/{workspace}/requests?status=error")
    check("No calls match these filters." in driver.page_source, "the request log filters by status")
    visit("/platform/requests")
    check(len(driver.find_elements(By.CSS_SELECTOR, "table.requests tbody tr[data-request]")) >= 3, "the platform's request log lists them too")
    visit(f"/workspaces/{workspace}/chain")
    check(driver.find_elements(By.CSS_SELECTOR, "section[id^='chain-'] table") and "A call now goes to" in driver.page_source,
          "the key chain page says which key serves each provider")
    shot("07d-chain")
    visit("/audit")
    check("credential.created" in driver.page_source and "(platform admin)" in driver.page_source, "the audit log lists the changes, by name")
    shot("08-audit")
    visit("/audit?verify=1")
    check("The chain is intact" in driver.page_source, "the audit page walks the chain")

    # Workspace settings: exclusive mode, a binding, a webhook (its secret shown once); the platform's e-mail settings.
    visit(f"/workspaces/{workspace}/settings")
    driver.find_element(By.CSS_SELECTOR, "input[type=checkbox][name=exclusive]").click()
    submit(driver.find_element(By.XPATH, "//section[@aria-labelledby='mode-title']//button"))
    # Three providers have active keys here: exclusive mode is refused, with the reason.
    check("toast bad" in driver.page_source and not driver.find_element(By.CSS_SELECTOR, "input[type=checkbox][name=exclusive]").is_selected(),
          "exclusive mode is refused while several providers are active")
    driver.find_element(By.ID, "consumer").send_keys("assistant-1")
    Select(driver.find_element(By.ID, "modality")).select_by_value("tts")
    Select(driver.find_element(By.ID, "key_id")).select_by_index(1)
    submit(driver.find_element(By.XPATH, "//button[text()='Add binding']"))
    check(wait_for("Binding saved.") and "assistant-1" in driver.page_source, "a binding is added and listed")
    driver.find_element(By.ID, "url").send_keys("https://hooks.example.com/keywarden")
    driver.find_element(By.XPATH, "//input[@name='events[]' and @value='key.invalid']").click()
    submit(driver.find_element(By.XPATH, "//button[text()='Add webhook']"))
    secret = driver.find_element(By.CSS_SELECTOR, "code.secret").text
    check(secret.startswith("whsec_") and "shown only this once" in driver.page_source, "a new webhook's signing secret is shown once")
    shot("10-settings")
    visit(f"/workspaces/{workspace}/settings")
    check(secret not in driver.page_source and "hooks.example.com" in driver.page_source, "the secret is not shown again; the webhook is listed")
    visit("/platform/notifications")
    for field, value in [("smtp-host", "smtp.example.com"), ("smtp-username", "mailer"), ("smtp-password", "smtp-pass-canary-77"), ("smtp-from", "keys@example.com")]:
        element = driver.find_element(By.ID, field)
        element.clear()
        element.send_keys(value)
    submit(driver.find_element(By.XPATH, "//button[text()='Save e-mail settings']"))
    check(wait_for("E-mail settings saved.") and "smtp-pass-canary-77" not in driver.page_source
          and "saved — leave blank to keep" in driver.find_element(By.ID, "smtp-password").get_attribute("placeholder"), "SMTP settings saved, the password never shown")
    shot("11-notifications")

    # The operator's journey from the browser alone: a workspace with BYOK, a member, the backend's token, its calls in usage.
    visit("/workspaces")
    check("Acme Support" in driver.page_source, "the Workspaces page lists the workspaces")
    driver.find_element(By.ID, "workspace-name").send_keys("Journey Co")
    submit(driver.find_element(By.XPATH, "//button[text()='Create workspace']"))
    check(wait_for("Workspace created.") and "/members" in driver.current_url, "creating a workspace leads to its members and tokens")
    journey = driver.current_url.split("/workspaces/")[1].split("/")[0]
    check(api("GET", f"/api/v1/workspaces/{journey}")["byok_allowed"] is True, "the new workspace's plan allows BYOK")
    driver.find_element(By.ID, "member-name").send_keys("Mia Owner")
    Select(driver.find_element(By.ID, "member-role")).select_by_value("owner")
    submit(driver.find_element(By.XPATH, "//button[text()='Add member']"))
    mia = driver.find_element(By.ID, "revealed-value").text
    check(mia.startswith("kw_") and "shown only this once" in driver.page_source, "a new member's sign-in token is shown once")
    shot("12-member-added")
    driver.find_element(By.ID, "token-name").send_keys("Backend (production)")
    check(driver.find_element(By.CSS_SELECTOR, "input[name='permissions[]'][value='gateway.use']").is_selected(), "a new service token has gateway.use ticked")
    submit(driver.find_element(By.XPATH, "//button[text()='Create token']"))
    backend = driver.find_element(By.ID, "revealed-value").text
    snippet = driver.find_element(By.ID, "revealed-snippet").text
    check(backend.startswith("kw_") and f'base_url="{base}/v1"' in snippet and backend in snippet,
          f"the backend token is shown once, with the two-line SDK snippet: {snippet!r}")
    check(driver.find_elements(By.XPATH, "//button[text()='Copy']"), "the token has a copy button")
    shot("13-token-created")
    visit(f"/workspaces/{journey}/members")
    check(backend not in driver.page_source and mia not in driver.page_source, "the tokens are never shown again")
    row = driver.find_element(By.XPATH, "//tr[td[contains(., 'Backend (production)')]]")
    check("never" in row.text and "gateway.use" in row.text, f"the token is listed, never used yet: {row.text!r}")
    # The backend calls through the platform's OpenAI key with its token; the answer says the platform paid.
    request = urllib.request.Request(base + "/openai/v1/chat/completions", method="POST",
                                     data=json.dumps({"model": "gpt-5.4-mini", "messages": [{"role": "user", "content": "hi"}]}).encode(),
                                     headers={"Authorization": f"Bearer {backend}", "Content-Type": "application/json"})
    with urllib.request.urlopen(request) as reply:
        check(reply.status == 200 and reply.headers.get("X-Keywarden-Source") == "platform", "the backend token's call is served by the platform's key")
    for _ in range(50):
        if api("GET", f"/api/v1/usage?workspace={journey}")["totals"]["requests"] >= 1:
            break
        time.sleep(0.1)
    visit(f"/workspaces/{journey}/members")
    row = driver.find_element(By.XPATH, "//tr[td[contains(., 'Backend (production)')]]")
    check("never" not in row.text and "UTC" in row.text, f"the token's last use is shown: {row.text!r}")
    visit(f"/workspaces/{journey}/usage")
    check(driver.find_element(By.CSS_SELECTOR, ".stats li .n").text == "1", "the workspace's usage shows the backend's call")
    shot("14-journey-usage")

    # Workspaces: the switcher, rename, the BYOK switch, a role change, revoking, removing, deleting with confirmation.
    Select(driver.find_element(By.ID, "switch-workspace")).select_by_visible_text("Acme Support")
    check(wait_for("Acme Support") and driver.current_url.endswith(f"/workspaces/{workspace}/keys"), "the header's switcher opens another workspace")
    visit("/workspaces?search=journey")
    rows = driver.find_elements(By.CSS_SELECTOR, "table.workspaces tbody tr")
    check(len(rows) == 1 and "Journey Co" in rows[0].text and "Allowed" in rows[0].text, "search finds the workspace, BYOK allowed")
    # A plan from the page: saved with its limits and period, then the workspace put on it.
    driver.find_element(By.ID, "plan_name").send_keys("growth")
    Select(driver.find_element(By.ID, "plan-period")).select_by_value("week")
    driver.find_element(By.ID, "plan-platform").send_keys("500")
    driver.find_element(By.ID, "plan-rpm").send_keys("120")
    submit(driver.find_element(By.XPATH, "//button[text()='Save plan']"))
    check(wait_for("Plan saved."), "a platform admin saves a plan")
    plan_row = driver.find_element(By.XPATH, "//table[contains(@class,'plans')]//tr[td[1][text()='growth']]").text
    check("week" in plan_row and "500" in plan_row and "120" in plan_row, f"the plans table shows its period and limits: {plan_row!r}")
    visit("/workspaces?search=journey")
    Select(driver.find_element(By.CSS_SELECTOR, "table.workspaces select[name=plan]")).select_by_value("growth")
    check(wait_for("Plan set."), "choosing a plan in the workspace's row sets it (the select submits itself)")
    journey_ws = next(w for w in api("GET", "/api/v1/workspaces?search=journey")["items"])
    check(journey_ws.get("plan") == "growth", f"the workspace is on the plan: {journey_ws.get('plan')}")
    budget = api("GET", f"/api/v1/workspaces/{journey_ws['id']}/budget")
    check(budget["period"] == "week" and budget["platform"]["limit_source"] == "plan", f"its budget comes from the plan: {budget}")
    shot("15b-plans")
    visit("/workspaces?search=journey")
    rows = driver.find_elements(By.CSS_SELECTOR, "table.workspaces tbody tr")
    submit(rows[0].find_element(By.LINK_TEXT, "Rename"))
    field = driver.find_element(By.ID, f"rename-{journey}")
    field.clear()
    field.send_keys("Journey Company")
    submit(driver.find_element(By.XPATH, "//button[text()='Save name']"))
    check(wait_for("Workspace renamed.") and "Journey Company" in driver.page_source, "renaming a workspace")
    submit(driver.find_element(By.XPATH, f"//tr[@id='ws-{journey}']//button[text()='Forbid']"))
    check(wait_for("no longer used") and "Not allowed" in driver.find_element(By.ID, f"ws-{journey}").text
          and api("GET", f"/api/v1/workspaces/{journey}")["byok_allowed"] is False, "the BYOK switch turns the plan's BYOK off")
    shot("15-workspaces")
    visit(f"/workspaces/{journey}/members")

    def change_role(name, role):
        member_row = driver.find_element(By.XPATH, f"//tr[td[contains(., '{name}')]]")
        Select(member_row.find_element(By.TAG_NAME, "select")).select_by_value(role)
        submit(member_row.find_element(By.XPATH, ".//button[text()='Change']"))
    change_role("Mia Owner", "admin")
    check("keeps at least one owner" in driver.page_source, "the workspace's last owner cannot be demoted")
    driver.find_element(By.ID, "member-name").send_keys("Sam Support")
    submit(driver.find_element(By.XPATH, "//button[text()='Add member']"))
    change_role("Sam Support", "viewer")
    sam_role = Select(driver.find_element(By.XPATH, "//tr[td[contains(., 'Sam Support')]]//select")).first_selected_option.text
    check(wait_for("Role changed.") and sam_role == "viewer", f"changing a member's role: {sam_role}")
    driver.find_element(By.XPATH, "//tr[td[contains(., 'Backend (production)')]]//button[text()='Revoke']").click()
    check("Revoke the token" in driver.find_element(By.TAG_NAME, "dialog").text, "revoking asks for confirmation")
    submit(driver.find_element(By.ID, "confirm-ok"))
    check(wait_for("Token revoked"), "the token is revoked")
    try:
        urllib.request.urlopen(request)
        check(False, "a revoked token is refused")
    except urllib.error.HTTPError as error:
        check(error.code == 401, f"a revoked token is refused: {error.code}")
    driver.find_element(By.XPATH, "//tr[td[contains(., 'Sam Support')]]//button[text()='Remove']").click()
    submit(driver.find_element(By.ID, "confirm-ok"))
    check(wait_for("Member removed") and "Sam Support" not in driver.page_source, "removing a member")
    # Mia, an owner, lands on her own workspace and manages its members; what her role may not do is not offered.
    submit(driver.find_element(By.XPATH, "//button[text()='Sign out']"))
    sign_in(mia)
    check(driver.current_url.endswith(f"/workspaces/{journey}/keys"), "a workspace member lands on their own workspace")
    check(not driver.find_elements(By.ID, "switch-workspace") and not driver.find_elements(By.LINK_TEXT, "Workspaces"),
          "a workspace member is offered no workspace switcher or Workspaces page")
    submit(driver.find_element(By.LINK_TEXT, "Members"))
    offered = [box.get_attribute("value") for box in driver.find_elements(By.CSS_SELECTOR, "input[name='permissions[]']")]
    check(offered and "gateway.use" in offered and "keys.reveal" not in offered,
          f"an owner is offered the permissions the role holds, and gateway.use (the platform allows it by default): {offered}")
    shot("15a-members-owner")
    submit(driver.find_element(By.XPATH, "//button[text()='Sign out']"))
    sign_in(admin)
    visit("/workspaces")
    driver.find_element(By.XPATH, f"//tr[@id='ws-{journey}']//button[text()='Delete']").click()
    warning = driver.find_element(By.TAG_NAME, "dialog").text
    check("usage history is kept" in warning and ") are deleted with their secrets" in warning, f"the delete dialog says what happens to its keys: {warning!r}")
    shot("16-workspace-delete-confirm")
    submit(driver.find_element(By.ID, "confirm-ok"))
    check(wait_for("Workspace deleted.") and "Journey Company" not in driver.page_source, "deleting a workspace")

    # Seed 004: the workspace's own keys as provider cards; exclusive mode switches providers from the toggles.
    cards_ws = api("POST", "/api/v1/workspaces", {"name": "Cards Co", "exclusive": True})["id"]
    api("POST", f"/api/v1/workspaces/{cards_ws}/keys", {"provider": "openai", "description": "Ours", "api_key": "sk-cards-openai-12345678", "active": True})
    api("POST", f"/api/v1/workspaces/{cards_ws}/keys", {"provider": "anthropic", "description": "Claude", "api_key": "sk-ant-cards-12345678", "active": False})
    visit(f"/workspaces/{cards_ws}/byok")
    check("only one custom provider at a time" in driver.page_source, "exclusive mode is said on the page")
    check("On ·" in card("card-openai").text and "Turn off" in card("card-openai").text, "the OpenAI card is on, with its toggle")
    anthropic_card = card("card-anthropic").text
    check("Switch to Anthropic" in anthropic_card and "turns off OpenAI" in anthropic_card, f"the Anthropic toggle says it turns OpenAI off: {anthropic_card!r}")
    check("Add your key" in card("card-gemini").text, "a provider without a key offers to add one")
    shot("17-byok-cards")
    submit(card("card-anthropic").find_element(By.XPATH, ".//button[text()='Switch to Anthropic']"))
    check(wait_for("activated") and "On ·" in card("card-anthropic").text and "On ·" not in card("card-openai").text,
          "switching turns Anthropic on and OpenAI off")
    card("card-openai").find_element(By.XPATH, ".//button[text()='Remove']").click()
    check("Remove your OpenAI key" in driver.find_element(By.TAG_NAME, "dialog").text, "Remove asks for confirmation")
    submit(driver.find_element(By.ID, "confirm-ok"))
    check(wait_for("API key deleted.") and "Add your key" in card("card-openai").text, "removing the key from its card")
    submit(card("card-anthropic").find_element(By.PARTIAL_LINK_TEXT, "Settings"))
    check(driver.find_element(By.ID, "extra-default_max_tokens") is not None, "the card's gear opens the key's settings and model")
    shot("18-byok-settings")

    # A viewer sees the table and no edit controls.
    viewer = api("POST", f"/api/v1/workspaces/{workspace}/members", {"name": "Val Viewer", "role": "viewer"})["token"]
    submit(driver.find_element(By.XPATH, "//button[text()='Sign out']"))
    check(driver.current_url.endswith("/login"), "signing out returns to the sign-in page")
    sign_in(viewer)
    check(driver.current_url.endswith(f"/workspaces/{workspace}/keys"), "a member lands on the workspace's keys")
    check(not driver.find_elements(By.XPATH, "//button[text()='Delete']") and not driver.find_elements(By.ID, "description"),
          "a viewer is offered no edit controls")
    shot("09-keys-viewer")
    visit("/platform/providers")
    check("AI &amp; API keys" not in driver.page_source and "You do not have permission for this" in driver.page_source, "a viewer cannot open the platform cards")

    # A POST without the session's CSRF token is refused and changes nothing; without a session it goes to sign-in.
    session_cookie = driver.get_cookie("kw_session")
    check(session_cookie and session_cookie.get("httpOnly") and session_cookie.get("sameSite") == "Strict", f"the session cookie is HttpOnly, SameSite=Strict: {session_cookie}")

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None
    opener = urllib.request.build_opener(NoRedirect)
    def post(path, data, cookie=None):
        request = urllib.request.Request(base + path, data=data.encode(), method="POST",
                                         headers={"Content-Type": "application/x-www-form-urlencoded", **({"Cookie": cookie} if cookie else {})})
        try:
            with opener.open(request) as reply:
                return reply.status, dict(reply.headers)
        except urllib.error.HTTPError as error:
            return error.code, dict(error.headers)
    forged = post(f"/workspaces/{workspace}/keys/x/delete", "csrf_token=forged", f"kw_session={session_cookie['value']}")
    check(forged[0] == 403, f"a forged POST is refused: {forged[0]}")
    anonymous = post("/platform/providers/openai", "api_key=sk-x&csrf_token=x")
    check(anonymous[0] == 303 and anonymous[1].get("Location") == "/login", f"no session: sent to sign in ({anonymous[0]})")
    headers = urllib.request.urlopen(base + "/login").headers
    check("frame-ancestors 'none'" in headers.get("Content-Security-Policy", "") and headers.get("X-Frame-Options") == "DENY"
          and headers.get("Cache-Control") == "no-store", "pages carry CSP, X-Frame-Options DENY and no-store")

    check(all(CANARY not in source and "smtp-pass-canary-77" not in source for source in seen_sources),
          f"no page contained the canary key or the SMTP password ({len(seen_sources)} pages read)")
    logs = driver.get_log("browser") if hasattr(driver, "get_log") else []
    csp = [entry for entry in logs if "Content Security Policy" in entry.get("message", "")]
    check(not csp, f"no Content-Security-Policy violations: {csp}")
finally:
    driver.quit()

print(f"{len(failures)} failure(s)")
sys.exit(1 if failures else 0)
