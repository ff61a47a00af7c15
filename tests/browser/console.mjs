// Drives the staff console in Debian's headless Chromium, each flow from sign-in: the
// settings form on a plan without SMS and with it (toggle, counter, preview, link
// warning, server validation), a call updating live as a caller uploads on the real
// upload page, a viewer who cannot download, a reviewer who must set up TOTP and then
// downloads, a session revoked from another browser and by the security team, forms posted
// without the form token, and the error pages. axe-core checks every page; screenshots go to UPGATE_SHOTS. Run by
// tests/console.rs, which starts upgate, creates the users and checks the audit log after.
import { readFileSync } from "node:fs";
import assert from "node:assert/strict";

import {
  accessible, api, browser, checked, context, control, desktop, env, phone, signIn, submit, totp, welcome,
} from "./console_kit.mjs";

const png = { name: "damage.png", mimeType: "image/png", buffer: readFileSync(env("UPGATE_PNG")) };
const pdf = { name: "receipt.pdf", mimeType: "application/pdf", buffer: readFileSync(env("UPGATE_PDF")) };
const summary = {};

try {
  // --- A plan without SMS: the toggle is greyed out, with the upgrade notice. ---
  const starter = await context(phone);
  await welcome(starter.page, env("UPGATE_STARTER_ADMIN"), "starter admin");
  assert.match(starter.page.url(), /\/console\/calls$/, await starter.page.locator("body").innerText());
  await accessible(starter.page, "starter admin: calls, none yet");
  await starter.page.goto(`${control}/console/assistants`);
  await accessible(starter.page, "starter admin: assistants, none yet");
  await starter.page.fill("#open-id", "desk");
  await starter.page.click("form.inline button");
  await starter.page.waitForURL(/\/console\/assistants\/desk$/);
  const toggle = starter.page.locator("#enabled");
  assert.ok(await toggle.isDisabled(), "the toggle is greyed out without SMS");
  assert.equal(await toggle.getAttribute("role"), "switch");
  assert.match(await starter.page.locator("#upgrade-notice").innerText(), /plan doesn't include SMS/);
  assert.match(await toggle.getAttribute("aria-describedby"), /upgrade-notice/);
  await accessible(starter.page, "starter admin: settings, plan without SMS");

  // --- A plan with SMS: counter, preview, link warning, the server's rules, save. ---
  const admin = await context(desktop);
  await welcome(admin.page, env("UPGATE_PRO_ADMIN"), "pro admin");
  await admin.page.goto(`${control}/console/assistants/desk`);
  // By keyboard: the skip link comes first and leads into the page; the toggle is reached
  // with Tab and switched with Space.
  await admin.page.keyboard.press("Tab");
  assert.equal(await admin.page.evaluate(() => document.activeElement.textContent), "Skip to content");
  await admin.page.keyboard.press("Enter");
  assert.equal(await admin.page.evaluate(() => document.activeElement.id), "main");
  for (let i = 0; i < 10 && (await admin.page.evaluate(() => document.activeElement.id)) !== "enabled"; i++) {
    await admin.page.keyboard.press("Tab");
  }
  assert.equal(await admin.page.evaluate(() => document.activeElement.id), "enabled", "the toggle is reached by Tab");
  await admin.page.keyboard.press("Space");
  assert.ok(await admin.page.locator("#enabled").isChecked(), "Space switches it");
  await admin.page.keyboard.press("Space");
  const on = admin.page.locator("#enabled");
  assert.ok(!(await on.isDisabled()));
  assert.equal(await admin.page.locator("#upgrade-notice").count(), 0);
  await on.check();
  await admin.page.fill("#trigger", "When the caller has photos of the damaged product");
  await admin.page.fill("#message", "");
  await admin.page.locator("#message").pressSequentially("Please send the photos");
  await admin.page.waitForFunction(() => document.querySelector("#message-counter").textContent === "22 / 100 characters");
  await admin.page.waitForFunction(() => document.querySelector("#preview-text").textContent.startsWith("Please send the photos https://"));
  assert.match(await admin.page.locator("#preview-meta").innerText(), /characters · GSM-7 · 1 segment$/);
  assert.ok(await admin.page.locator("#link-warning").isHidden());
  await admin.page.locator("#message").pressSequentially(" at www.example.com");
  await admin.page.waitForFunction(() => !document.querySelector("#link-warning").hidden);
  await accessible(admin.page, "pro admin: settings, message with a link");
  // Saved as it is, the server refuses it and says why next to the field.
  await submit(admin.page, "#settings button[type=submit]");
  assert.match(await admin.page.locator("#message-error").innerText(), /link/i);
  assert.match(await admin.page.locator("#message").getAttribute("aria-describedby"), /message-error/);
  await accessible(admin.page, "pro admin: settings refused");
  await admin.page.fill("#message", "Bitte senden Sie die Fotos über diesen Link, danke schön");
  await admin.page.locator("#message").pressSequentially("!");
  await admin.page.waitForFunction(() => /UCS-2|GSM-7/.test(document.querySelector("#preview-meta").textContent));
  await admin.page.fill("#message", "Please send the photos");
  await admin.page.locator("#message").pressSequentially(".");
  await admin.page.waitForFunction(() => document.querySelector("#link-warning").hidden);
  await admin.page.click("#settings button[type=submit]");
  await admin.page.waitForURL(/saved=1/);
  assert.equal(await admin.page.locator(".saved").innerText(), "Saved.");
  assert.ok(await admin.page.locator("#enabled").isChecked());
  assert.equal(await admin.page.locator("#message").inputValue(), "Please send the photos.");
  const tool = JSON.parse(await admin.page.locator("#tool").innerText());
  assert.ok(JSON.stringify(tool).includes("damaged product"), JSON.stringify(tool));
  await accessible(admin.page, "pro admin: settings saved");
  await admin.page.goto(`${control}/console/assistants`);
  assert.equal(await admin.page.locator("main table a").innerText(), "desk");
  await accessible(admin.page, "pro admin: assistants");

  // --- A link from the API; the call's page updates live as the caller uploads. ---
  const integration = env("UPGATE_INTEGRATION_TOKEN");
  await api(integration, "PUT", "/v1/calls/call-live", { assistant_id: "desk", caller_number: "+14155550123" });
  const link = await api(integration, "POST", "/v1/calls/call-live/upload-links");
  await admin.page.goto(`${control}/console/calls`);
  await accessible(admin.page, "pro admin: calls");
  await admin.page.click("#calls a");
  await admin.page.waitForURL(/\/console\/calls\/call-live$/, { waitUntil: "domcontentloaded" });
  assert.equal(await admin.page.locator("#no-files").innerText(), "No files yet.");
  assert.match(await admin.page.locator("#links .status").innerText(), /active/);
  await accessible(admin.page, "pro admin: call, waiting");
  const marker = await admin.page.evaluate(() => (window.__stayed = "yes"));
  const caller = await context(phone);
  await caller.page.goto(link.url);
  await caller.page.waitForURL(/\/u\/s\//);
  await caller.page.setInputFiles("#picker", [png, pdf]);
  await caller.page.waitForFunction(() => document.querySelectorAll("#files li .ok").length === 2, null, { timeout: 20000 });
  await admin.page.waitForFunction(() => document.querySelectorAll("#files td a").length === 2, null, { timeout: 15000 });
  assert.equal(await admin.page.evaluate(() => window.__stayed), marker, "the page updated in place, not by a reload");
  const timeline = await admin.page.locator("#timeline .kind").allInnerTexts();
  for (const kind of ["link issued", "sms sent", "link opened", "file stored"]) assert.ok(timeline.includes(kind), JSON.stringify(timeline));
  await accessible(admin.page, "pro admin: call, file arrived live");
  // The image has a thumbnail that loads; the PDF an icon.
  const thumbs = await admin.page.evaluate(() =>
    Array.from(document.querySelectorAll("#files tr")).slice(1).map((tr) => {
      const img = tr.querySelector("td.thumb img");
      return [tr.querySelector("td a").textContent, img.getAttribute("src"), img.complete && img.naturalWidth];
    }));
  const byName = Object.fromEntries(thumbs.map(([n, src, w]) => [n, { src, w }]));
  assert.match(byName["damage.png"].src, /\/thumb$/, JSON.stringify(thumbs));
  assert.ok(byName["damage.png"].w > 0, JSON.stringify(thumbs));
  assert.equal(byName["receipt.pdf"].src, "/console/assets/file.svg");
  const fileHref = await admin.page.locator("#files td a", { hasText: "damage.png" }).getAttribute("href");
  // Previews are re-encoded JPEG, never the bytes the caller sent.
  const preview = await admin.page.request.get(`${control}${fileHref}/preview`);
  assert.equal(preview.status(), 200);
  assert.equal(preview.headers()["content-type"], "image/jpeg");
  const jpeg = await preview.body();
  assert.deepEqual([...jpeg.subarray(0, 3)], [0xff, 0xd8, 0xff]);
  assert.ok(!jpeg.equals(png.buffer));
  summary.file = fileHref.split("/").pop();
  // Resend from the call's page.
  await submit(admin.page, "#links button");
  assert.equal(await admin.page.locator("#links .sms").count(), 2, "the link was texted again");
  // The caller's page lists their files across calls.
  await admin.page.goto(`${control}/console/calls/call-live`);
  await submit(admin.page, "dl.facts a[href^='/console/contacts/']");
  assert.match(admin.page.url(), /\/console\/contacts\/%2B14155550123$/);
  assert.deepEqual((await admin.page.locator("#files td a").allInnerTexts()).sort(), ["damage.png", "receipt.pdf"]);
  await accessible(admin.page, "pro admin: caller");
  // A call whose link brought nothing is on the follow-up page, with a one-click resend.
  await api(integration, "PUT", "/v1/calls/call-quiet", { assistant_id: "desk", caller_number: "+14155550177" });
  await api(integration, "POST", "/v1/calls/call-quiet/upload-links");
  await admin.page.goto(`${control}/console/follow-up`);
  const quiet = admin.page.locator("table.followup tr", { hasText: "call-quiet" });
  assert.equal(await quiet.count(), 1);
  assert.equal(await admin.page.locator("table.followup tr", { hasText: "call-live" }).count(), 0, "a call with files needs no follow-up");
  await accessible(admin.page, "pro admin: follow-up");
  await Promise.all([admin.page.waitForEvent("framenavigated"), quiet.locator("button").click()]);
  await admin.page.waitForLoadState();
  assert.match(admin.page.url(), /\/console\/follow-up\?resent=1$/);

  // Admins invite users; the link is shown once; a disabled user is signed out at once.
  await admin.page.goto(`${control}/console/users`);
  await admin.page.fill("#invite-email", "new@pro.example");
  await admin.page.selectOption("#invite-role", "viewer");
  await submit(admin.page, "main form button[type=submit]");
  const invite = await admin.page.locator("#invite-link").innerText();
  await accessible(admin.page, "pro admin: users, invited");
  const invited = await context(phone);
  await welcome(invited.page, invite, "invited viewer");
  assert.match(invited.page.url(), /\/console\/calls$/);
  await admin.page.goto(`${control}/console/users`);
  await Promise.all([
    admin.page.waitForEvent("framenavigated"),
    admin.page.locator("#users tr", { hasText: "new@pro.example" }).locator("button").click(),
  ]);
  await admin.page.waitForLoadState();
  assert.match(await admin.page.locator("#users tr", { hasText: "new@pro.example" }).innerText(), /disabled/);
  await invited.page.goto(`${control}/console/calls`);
  assert.match(invited.page.url(), /\/console\/sign-in$/, "a disabled user's session ends");

  // An admin sees files, but downloads are for reviewers.
  await admin.page.goto(`${control}${fileHref}`);
  assert.equal(await admin.page.locator("#download").count(), 0);

  // --- A viewer sees the file and cannot download it. ---
  const viewer = await context(phone);
  await welcome(viewer.page, env("UPGATE_VIEWER"), "viewer");
  await viewer.page.goto(`${control}${fileHref}`);
  assert.match(await viewer.page.locator("main").innerText(), /SHA-256/);
  await viewer.page.waitForFunction(() => document.querySelector("#preview")?.complete);
  assert.equal(await viewer.page.evaluate(() => document.querySelector("#preview").naturalWidth), 48);
  assert.equal(await viewer.page.locator("#preview").getAttribute("alt"), "Preview of damage.png");
  assert.equal(await viewer.page.locator("#no-download").innerText(), "Downloads are for reviewers.");
  await accessible(viewer.page, "viewer: file");
  const refused = await viewer.page.request.get(`${control}${fileHref}/content`);
  assert.equal(refused.status(), 403);
  assert.ok(!(await refused.body()).includes(png.buffer.subarray(0, 16)));

  // --- A reviewer must set up TOTP; then signs in with it and downloads. ---
  const reviewer = await context(desktop);
  await welcome(reviewer.page, env("UPGATE_REVIEWER"), "reviewer");
  assert.match(reviewer.page.url(), /\/console\/account\?enrol=1$/);
  await reviewer.page.goto(`${control}${fileHref}`);
  assert.match(reviewer.page.url(), /\/console\/account\?enrol=1$/, "no file before a second factor");
  await submit(reviewer.page, "main form button");
  const secret = await reviewer.page.locator("#totp-secret").innerText();
  await accessible(reviewer.page, "reviewer: set up TOTP");
  await reviewer.page.fill("#totp-code", totp(secret));
  await submit(reviewer.page, "main form button");
  assert.match(await reviewer.page.locator("#totp-status").innerText(), /^On/);
  await reviewer.page.click("header form.signout button");
  await reviewer.page.waitForURL(/\/console\/sign-in$/);
  await accessible(reviewer.page, "sign in");
  await signIn(reviewer.page, env("UPGATE_REVIEWER_EMAIL"), "");
  assert.match(await reviewer.page.locator("#form-error").innerText(), /6-digit code/);
  // The code used to turn TOTP on is spent; the next step's code is taken.
  await signIn(reviewer.page, env("UPGATE_REVIEWER_EMAIL"), totp(secret, 1));
  assert.match(reviewer.page.url(), /\/console\/calls$/);
  await reviewer.page.goto(`${control}${fileHref}`);
  await accessible(reviewer.page, "reviewer: file");
  const [download] = await Promise.all([reviewer.page.waitForEvent("download"), reviewer.page.click("#download")]);
  const got = readFileSync(await download.path());
  assert.ok(got.equals(png.buffer), "the download is the original bytes");
  // The audit log shows the download with the reviewer's email.
  await reviewer.page.goto(`${control}/console/audit?action=file.download`);
  assert.match(await reviewer.page.locator("#audit tbody").innerText(), /rosa@pro\.example/);
  await accessible(reviewer.page, "reviewer: audit log");
  // The security team stops a leaked token (and cannot invite anyone).
  await reviewer.page.goto(`${control}/console/users`);
  assert.equal(await reviewer.page.locator("#invite-email").count(), 0);
  const leaked = reviewer.page.locator("#tokens tr", { hasText: "leaked" });
  await Promise.all([reviewer.page.waitForEvent("framenavigated"), leaked.locator("button").click()]);
  await reviewer.page.waitForLoadState();
  assert.match(await leaked.innerText(), /revoked/);
  await accessible(reviewer.page, "reviewer: users and tokens");

  // --- A session revoked from another browser ends there at once. ---
  const other = await context(desktop);
  await signIn(other.page, env("UPGATE_PRO_ADMIN_EMAIL"), "");
  assert.match(other.page.url(), /\/console\/calls$/);
  await admin.page.goto(`${control}/console/account`);
  await accessible(admin.page, "pro admin: account");
  const revoke = admin.page.locator("tr", { hasText: "active" }).locator("button");
  await Promise.all([admin.page.waitForEvent("framenavigated"), revoke.click()]);
  await admin.page.waitForLoadState();
  await other.page.goto(`${control}/console/calls`);
  assert.match(other.page.url(), /\/console\/sign-in$/, "the revoked session is signed out");

  // --- Forms without the form token, or from another site, are refused. ---
  const forged = await admin.page.request.post(`${control}/console/assistants/desk`, {
    form: { enabled: "on", trigger: "x", message: "Hijacked" },
  });
  assert.equal(forged.status(), 403);
  const wrong = await admin.page.request.post(`${control}/console/assistants/desk`, {
    form: { _csrf: "0".repeat(64), message: "Hijacked" },
  });
  assert.equal(wrong.status(), 403);
  const csrf = await admin.page.locator("input[name=_csrf]").first().inputValue();
  const crossSite = await admin.page.request.post(`${control}/console/assistants/desk`, {
    form: { _csrf: csrf, message: "Hijacked" },
    headers: { origin: "https://evil.example" },
  });
  assert.equal(crossSite.status(), 403);
  await admin.page.goto(`${control}/console/assistants/desk`);
  assert.equal(await admin.page.locator("#message").inputValue(), "Please send the photos.");

  // --- The security team ends someone else's sessions from Users. ---
  const third = await context(desktop);
  await signIn(third.page, env("UPGATE_PRO_ADMIN_EMAIL"), "");
  assert.match(third.page.url(), /\/console\/calls$/);
  await reviewer.page.goto(`${control}/console/users`);
  const sessionsOf = `a[aria-label="Sessions of ${env("UPGATE_PRO_ADMIN_EMAIL")}"]`;
  await submit(reviewer.page, sessionsOf);
  assert.match(reviewer.page.url(), /\/console\/users\/usr_[0-9a-f]{16}\/sessions$/);
  await accessible(reviewer.page, "reviewer: a user's sessions");
  const active = reviewer.page.locator("tr", { hasText: "active" }).locator("button");
  assert.equal(await active.count(), 2, "the admin's two browsers");
  while ((await active.count()) > 0) await submit(reviewer.page, "tr:has-text('active') button");
  for (const signedOut of [admin.page, third.page]) {
    await signedOut.goto(`${control}/console/calls`);
    assert.match(signedOut.url(), /\/console\/sign-in$/, "ended by the reviewer");
  }

  // --- Error pages are pages too: navigable, labelled, accessible. ---
  await viewer.page.goto(`${control}/console/no-such-page`);
  assert.match(await viewer.page.locator("main").innerText(), /no such page/);
  await accessible(viewer.page, "viewer: no such page");
  await viewer.page.goto(`${control}/console/quarantine`);
  assert.match(await viewer.page.locator("main").innerText(), /for reviewers/);
  await accessible(viewer.page, "viewer: quarantine refused");
  viewer.errors = viewer.errors.filter((e) => !/status of 404.*no-such-page/.test(e));

  for (const c of [starter, admin, caller, viewer, reviewer, other, invited, third]) assert.deepEqual(c.errors, []);
  summary.checked = checked;
  console.log(JSON.stringify(summary));
} finally {
  await browser.close();
}
