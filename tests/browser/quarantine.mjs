// A reviewer decides what waits in quarantine, in the console: signs in (setting up the
// second factor reviewers must have), sees the files that came in while no trusted clamd
// could scan them, releases one and blocks the other. Run by tests/console.rs, which
// uploads the files first and checks the API's view after.
import assert from "node:assert/strict";

import { accessible, browser, checked, context, env, submit, totp, welcome } from "./console_kit.mjs";

try {
  const { page, errors } = await context();
  await welcome(page, env("UPGATE_REVIEWER"), "quarantine reviewer");
  await submit(page, "main form button");
  await page.fill("#totp-code", totp(await page.locator("#totp-secret").innerText()));
  await submit(page, "main form button");
  await page.click("nav a[href='/console/quarantine']");
  await page.waitForURL(/\/console\/quarantine$/);
  const rows = page.locator("#quarantine tbody tr");
  assert.equal(await rows.count(), 2);
  assert.deepEqual(await page.locator("#quarantine td.state").allInnerTexts(), ["held", "held"]);
  await accessible(page, "reviewer: quarantine, two held");
  const row = (name) => page.locator("#quarantine tbody tr", { hasText: name });
  await Promise.all([page.waitForEvent("framenavigated"), row("checked.pdf").locator("button[value=release]").click()]);
  await page.waitForLoadState();
  await Promise.all([page.waitForEvent("framenavigated"), row("suspect.pdf").locator("button[value=block]").click()]);
  await page.waitForLoadState();
  assert.equal(await row("checked.pdf").count(), 0, "a released file leaves quarantine");
  assert.equal(await row("suspect.pdf").locator("td.state").innerText(), "blocked");
  assert.equal(await row("suspect.pdf").locator("button").count(), 0, "a blocked file is decided");
  await accessible(page, "reviewer: quarantine, decided");
  assert.deepEqual(errors, []);
  console.log(JSON.stringify({ checked }));
} finally {
  await browser.close();
}
