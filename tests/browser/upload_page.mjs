// Drives the caller's upload page as a phone would, in Debian's headless Chromium:
// open the texted link, pick two files (one allowed, one not), watch each file's progress
// and answer, finish. Prints a JSON summary; exits non-zero on any broken expectation.
// Run by tests/browser.rs, which starts upgate and checks the server side.
import { readFileSync } from "node:fs";
import assert from "node:assert/strict";
import { chromium } from "playwright-core";

const url = process.env.UPGATE_LINK;
const message = process.env.UPGATE_MESSAGE;
const shot = process.env.UPGATE_SHOT;
const files = [
  { name: "certificate.pdf", mimeType: "application/pdf", buffer: readFileSync(process.env.UPGATE_PDF) },
  { name: "notes.png", mimeType: "image/png", buffer: readFileSync(process.env.UPGATE_PNG) },
];

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
  ],
});
try {
  // A phone-sized screen; the gateway's certificate is self-signed in tests.
  const context = await browser.newContext({
    ignoreHTTPSErrors: true,
    viewport: { width: 390, height: 844 },
    isMobile: true,
    hasTouch: true,
  });
  const page = await context.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  // A refused upload logs "failed to load resource" for its request: expected, not a bug.
  page.on("console", (m) => {
    if (m.type() === "error" && !m.location().url.endsWith("/files")) errors.push(`${m.text()} ${m.location().url}`);
  });

  const response = await page.goto(url);
  assert.equal(response.status(), 200);
  assert.equal(await page.locator(".ask").innerText(), message);
  assert.equal(await page.locator("#camera").getAttribute("capture"), "environment");
  assert.equal(await page.locator("#picker").getAttribute("accept"), "application/pdf,image/jpeg");

  await page.setInputFiles("#picker", files);
  await page.waitForFunction(() => document.querySelectorAll("#files li .ok, #files li .err").length === 2, null, {
    timeout: 20000,
  });
  const rows = await page.locator("#files li").evaluateAll((lis) =>
    lis.map((li) => ({
      name: li.querySelector(".name").textContent,
      progress: li.querySelector("progress").value,
      ok: !!li.querySelector(".ok"),
      text: li.querySelector(".ok, .err").textContent,
    })),
  );
  const pdf = rows.find((r) => r.name === "certificate.pdf");
  const png = rows.find((r) => r.name === "notes.png");
  assert.ok(pdf.ok, JSON.stringify(rows));
  assert.equal(pdf.progress, 100);
  assert.match(pdf.text, /Received certificate\.pdf/);
  assert.ok(!png.ok, JSON.stringify(rows));
  assert.match(png.text, /can't be accepted here\. Please send PDF or JPEG\./);
  assert.equal(await page.locator("#remaining").innerText(), "2");
  if (shot) await page.screenshot({ path: shot, fullPage: true });

  await page.locator("#done").click();
  await page.waitForFunction(() => document.getElementById("status").textContent.length > 0);
  const status = await page.locator("#status").innerText();
  assert.match(status, /Thank you/);
  assert.deepEqual(errors, []);

  // Opening the link again shows the "already used" page.
  const again = await page.goto(url);
  assert.equal(again.status(), 410);
  assert.match(await page.locator("h1").innerText(), /Already used/);
  console.log(JSON.stringify({ rows, status }));
} finally {
  await browser.close();
}
