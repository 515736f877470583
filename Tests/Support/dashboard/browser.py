#!/usr/bin/env python3
"""Drives the gateway's dashboard in a real browser (Debian's headless Chromium through its
chromedriver and Selenium), as a person would, against a live cluster, and checks what it shows
against `conveyor stats --json`. Used by Tests/IntegrationTests/DashboardBrowserTests.swift.

    browser.py --url http://127.0.0.1:PORT --admin-token T --reader-token T --conveyor BIN
               --broker tcp://127.0.0.1:P --screenshot FILE

It expects the cluster to be running a batch of `sleep` tasks and to hold at least two dead
letters (the Swift test makes them). Prints what it checked; exits 1 with the reason on a failure.
"""
import argparse
import json
import subprocess
import sys
import time
import urllib.error
import urllib.request

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.common.by import By

parser = argparse.ArgumentParser()
for name in ("--url", "--admin-token", "--reader-token", "--conveyor", "--broker", "--screenshot"):
    parser.add_argument(name, required=True)
parser.add_argument("--pause-name", default="sleep")
options = parser.parse_args()


class Failure(Exception):
    pass


def check(condition, message):
    if not condition:
        raise Failure(message)
    print("ok:", message, flush=True)


def stats():
    out = subprocess.run([options.conveyor, "stats", "--json", "--broker", options.broker],
                         capture_output=True, text=True, timeout=20)
    if out.returncode != 0:
        raise Failure("conveyor stats failed: " + out.stderr)
    return time.time(), json.loads(out.stdout)


def wait(what, condition, timeout=15.0):
    """Polls `condition` until it holds; a page still loading (a script error, an element not
    there yet) counts as not yet."""
    end = time.time() + timeout
    while True:
        try:
            value = condition()
        except WebDriverException:
            value = None
        if value:
            return value
        if time.time() > end:
            raise Failure("timed out after %.0f s waiting for %s" % (timeout, what))
        time.sleep(0.1)


def browser():
    chrome = webdriver.ChromeOptions()
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=1400,1300", "--no-first-run", "--disable-extensions"):
        chrome.add_argument(argument)
    chrome.binary_location = "/usr/bin/chromium"
    return webdriver.Chrome(options=chrome, service=Service("/usr/bin/chromedriver"))


def sign_in(driver, token):
    driver.get(options.url + "/")
    field = driver.find_element(By.ID, "token")
    field.clear()
    field.send_keys(token)
    driver.find_element(By.ID, "sign-in").click()


def reading(driver):
    """What the page shows now, as numbers, with the time it was read."""
    return driver.execute_script("""
        const number = id => Number(document.getElementById(id).textContent);
        const names = {};
        for (const row of document.querySelectorAll('#names tbody tr[data-name]')) {
          const value = c => Number(row.querySelector('td.' + c).textContent);
          names[row.dataset.name] = {queued: value('queued'), running: value('running'), succeeded: value('succeeded'),
                                     paused: row.classList.contains('paused')};
        }
        return {renders: Number(document.body.dataset.renders || 0), live: document.getElementById('connection').textContent,
                queued: number('queued-total'), completed: number('completed-total'), dead: number('dead-total'),
                consumers: document.querySelectorAll('#consumers tbody tr[data-pid]').length,
                dead_ids: [...document.querySelectorAll('#dead-letters tbody tr[data-id]')].map(r => r.dataset.id),
                rate: document.getElementById('rate').textContent, uptime: document.getElementById('uptime').textContent,
                message: document.getElementById('message').textContent, names: names};
    """) | {"t": time.time()}


def matches_stats(driver, label):
    """Reads the page between stats samples: the page's completed count lies within what the
    broker said over the 3 s before the reading and just after it."""
    samples = []
    for _ in range(12):
        samples.append(stats())
        time.sleep(0.25)
    page = reading(driver)
    samples.append(stats())
    window = [s for t, s in samples if page["t"] - 3.0 <= t <= page["t"] + 1.0]
    low = min(s["totals"]["completed"] for s in window)
    high = max(s["totals"]["completed"] for s in window)
    check(low <= page["completed"] <= high,
          "%s: the page's completed %d lies within conveyor stats' %d..%d" % (label, page["completed"], low, high))
    latest = samples[-1][1]
    check(page["consumers"] == len(latest["consumers"]),
          "%s: %d consumers on the page, as in conveyor stats" % (label, page["consumers"]))
    check(set(page["names"]) >= set(latest.get("queued", {})),
          "%s: every queued name of conveyor stats is on the page (%s)" % (label, sorted(page["names"])))
    return page, latest


def same_origin_checks(driver):
    """An action without the CSRF token, or from another origin, is refused, even with the
    session's cookie; the same request from the page's own script works."""
    cookie = driver.get_cookie("conveyor_session")
    check(cookie is not None and cookie.get("httpOnly") and cookie.get("sameSite") == "Strict",
          "the session cookie is HttpOnly and SameSite=Strict: %s" % {k: cookie.get(k) for k in ("httpOnly", "sameSite")} if cookie else "no cookie")
    visible = driver.execute_script("return document.cookie")
    check("conveyor_session" not in visible, "the page's script cannot read the session cookie")

    def post(headers):
        request = urllib.request.Request(options.url + "/dashboard/api/dead-letters/purge", data=b'{"id":"none"}', method="POST",
                                         headers={"Cookie": "conveyor_session=" + cookie["value"], "Content-Type": "application/json"} | headers)
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"{}")

    csrf = driver.execute_script("return document.querySelector('meta[name=\"csrf-token\"]').content")
    status, body = post({"Origin": "http://evil.example", "X-CSRF-Token": csrf})
    check(status == 403 and body["error"]["code"] == "cross_origin", "another origin is refused: %d %s" % (status, body))
    status, body = post({"Origin": options.url})
    check(status == 403 and body["error"]["code"] == "csrf", "no CSRF token is refused: %d %s" % (status, body))
    status, body = post({"Origin": options.url, "X-CSRF-Token": "0" * 64})
    check(status == 403 and body["error"]["code"] == "csrf", "a wrong CSRF token is refused: %d %s" % (status, body))


def main():
    driver = browser()
    try:
        sign_in(driver, "not-a-token")
        problem = wait("the sign-in problem", lambda: driver.find_elements(By.ID, "problem"))
        check("not one of" in problem[0].text, "a wrong token is told so: " + problem[0].text)

        sign_in(driver, options.admin_token)
        wait("the page to go live", lambda: reading(driver)["live"] == "live" and reading(driver)["renders"] >= 2)
        first, first_stats = matches_stats(driver, "first reading")
        time.sleep(2.5)
        second, _ = matches_stats(driver, "second reading")
        check(all(r["rate"].replace(".", "", 1).isdigit() for r in (first, second)) and float(second["rate"]) > 0,
              "the done-per-second tile shows a number (%s, then %s)" % (first["rate"], second["rate"]))
        check(second["uptime"].startswith("broker up "), "the header shows the broker's uptime: " + second["uptime"])
        check(second["renders"] > first["renders"], "the page updated itself (%d renders, then %d)" % (first["renders"], second["renders"]))
        check(second["completed"] > first["completed"], "the numbers change while the batch runs (%d, then %d completed)"
              % (first["completed"], second["completed"]))
        same_origin_checks(driver)

        # Pause: nothing more of that name starts; resume: it goes on.
        name = options.pause_name
        row = wait("a row for " + name, lambda: driver.find_elements(By.CSS_SELECTOR, '#names tr[data-name="%s"] button.pause' % name))
        row[0].click()
        wait("the row to say paused", lambda: reading(driver)["names"].get(name, {}).get("paused"))
        _, after = stats()
        check(name in (after.get("paused") or []), "conveyor stats lists %s as paused" % name)
        time.sleep(2.0)  # what had started finishes
        settled = stats()[1]["names"][name]["succeeded"]
        time.sleep(2.0)
        later = stats()[1]["names"][name]
        check(later["succeeded"] == settled and later["queued"] > 0,
              "while paused no %s task starts: succeeded stays %d, %d queued" % (name, settled, later["queued"]))
        driver.find_element(By.CSS_SELECTOR, '#names tr[data-name="%s"] button.resume' % name).click()
        wait("the row to say resumed", lambda: not reading(driver)["names"].get(name, {}).get("paused"))
        wait("%s to go on after resume" % name, lambda: stats()[1]["names"][name]["succeeded"] > settled, timeout=20)
        check(True, "after resume %s tasks run again" % name)

        # Dead letters: requeue one, purge another.
        ids = wait("two dead letters on the page", lambda: (lambda r: r["dead_ids"] if len(r["dead_ids"]) >= 2 else None)(reading(driver)))
        before = stats()[1]["dead_letter_total"]
        target = ids[0]
        driver.find_element(By.CSS_SELECTOR, '#dead-letters tr[data-id="%s"] button.purge' % target).click()
        wait("the purged row to go", lambda: target not in reading(driver)["dead_ids"])
        check(stats()[1]["dead_letter_total"] == before - 1, "purge: conveyor stats counts one dead letter fewer")
        target = ids[1]
        driver.find_element(By.CSS_SELECTOR, '#dead-letters tr[data-id="%s"] button.requeue' % target).click()
        wait("the requeue to be confirmed", lambda: reading(driver)["message"] == "requeued %s (1)" % target)
        check(True, "requeue: the page says requeued %s (1)" % target)
        status = subprocess.run([options.conveyor, "status", target, "--broker", options.broker], capture_output=True, text=True, timeout=20)
        check("dead" not in status.stdout.lower() or "queued" in status.stdout.lower() or "running" in status.stdout.lower(),
              "requeue: conveyor status %s no longer says dead: %s" % (target, status.stdout.strip()))

        wait("a drawn chart", lambda: len(reading(driver)) and driver.execute_script(
            "return document.getElementById('throughput-chart').getContext('2d').getImageData(0,0,560,160).data.some(v => v !== 0)"))
        driver.save_screenshot(options.screenshot)
        check(True, "screenshot saved to " + options.screenshot)

        # A read-only token: the page shows, its actions are off and refused.
        driver.delete_all_cookies()
        sign_in(driver, options.reader_token)
        wait("the read-only page", lambda: reading(driver)["renders"] >= 1)
        disabled = driver.execute_script("return [...document.querySelectorAll('button.admin')].every(b => b.disabled)")
        check(disabled, "a read-only token sees every action button disabled")
        answer = driver.execute_script("""
            const csrf = document.querySelector('meta[name="csrf-token"]').content;
            return fetch('/dashboard/api/dead-letters/requeue', {method: 'POST', headers: {'X-CSRF-Token': csrf}, body: '{}'})
              .then(r => r.status);""")
        check(answer == 403, "a read-only token's action is refused with 403 (got %s)" % answer)
    finally:
        driver.quit()


try:
    main()
    print("all checks passed")
except Failure as failure:
    print("FAILED:", failure, flush=True)
    sys.exit(1)
