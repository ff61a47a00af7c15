// Drives the caller's upload page as a phone would, in Debian's headless Chromium, in every
// state a caller meets: the page as it opens, after files were sent (one allowed, one not),
// after "I'm finished"; by keyboard alone; without JavaScript; at 360x640 and 1280x800.
// axe-core checks every state for accessibility violations. Prints a JSON summary; exits
// non-zero on any broken expectation. Run by tests/browser.rs, which starts upgate, issues
// the links and checks the server side.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import net from "node:net";
import assert from "node:assert/strict";
import { chromium } from "playwright-core";

const require = createRequire(import.meta.url);
const axePath = require.resolve("axe-core/axe.min.js");
const url = process.env.UPGATE_LINK;
const plainUrl = process.env.UPGATE_LINK_PLAIN;
const germanUrl = process.env.UPGATE_LINK_GERMAN;
const cutUrl = process.env.UPGATE_LINK_CUT;
const gatewayPort = Number(process.env.UPGATE_GATEWAY_PORT);
const bigPdf = { name: "scan.pdf", mimeType: "application/pdf", buffer: readFileSync(process.env.UPGATE_BIG_PDF) };
const message = process.env.UPGATE_MESSAGE;
const shots = process.env.UPGATE_SHOTS;
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

const phone = { viewport: { width: 360, height: 640 }, isMobile: true, hasTouch: true };
const desktop = { viewport: { width: 1280, height: 800 } };
const checked = [];

// Runs axe-core on the page as it is now; any violation fails the run.
async function accessible(page, state) {
  await page.addScriptTag({ path: axePath });
  const result = await page.evaluate(() => window.axe.run(document, { resultTypes: ["violations"] }));
  const found = result.violations.map((v) => `${v.id}: ${v.nodes.map((n) => n.target.join(" ")).join(", ")}`);
  assert.deepEqual(found, [], `axe violations in state "${state}"`);
  checked.push(state);
  if (shots) await page.screenshot({ path: `${shots}/${state.replace(/\W+/g, "-")}.png`, fullPage: true });
}

async function open(options, link, { script = true } = {}) {
  // bypassCSP lets axe-core be injected; the page itself never runs inline script.
  const context = await browser.newContext({ ignoreHTTPSErrors: true, bypassCSP: true, ...options });
  const page = await context.newPage();
  if (!script) await page.route("**/assets/upload.js", (r) => r.abort());
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  // A refused upload logs "failed to load resource" for its request: expected, not a bug.
  page.on("console", (m) => {
    if (m.type() === "error" && !/\/(files|done|tus|tus\/[0-9a-f]+)$/.test(m.location().url) && !m.location().url.endsWith("upload.js"))
      errors.push(`${m.text()} ${m.location().url}`);
  });
  const response = await page.goto(link);
  assert.equal(response.status(), 200);
  // The texted link hands its token to a cookie and moves on to an address without it.
  await page.waitForURL(/\/u\/s\/[^/?]+/);
  await page.waitForLoadState();
  const token = new URL(link).pathname.split("/").pop();
  assert.ok(!page.url().includes(token), `the token left the address bar: ${page.url()}`);
  const [cookie] = (await page.context().cookies()).filter((c) => c.name.startsWith("upgate_"));
  assert.ok(cookie && cookie.httpOnly && cookie.secure && cookie.sameSite === "Strict", JSON.stringify(cookie));
  return { page, errors };
}

// A TCP relay to upgate that cuts, once, the connection on which the bytes from the
// browser pass `limit` (a phone losing its signal: not the browser's offline switch).
function cuttingRelay(target, limit) {
  let sent = 0;
  let cut = false;
  const sockets = new Set();
  const server = net.createServer((client) => {
    const upstream = net.connect(target, "127.0.0.1");
    sockets.add(client);
    sockets.add(upstream);
    client.on("data", (d) => {
      sent += d.length;
      if (sent > limit && !cut) {
        cut = true;
        client.destroy();
        upstream.destroy();
        return;
      }
      upstream.write(d);
    });
    upstream.on("data", (d) => client.write(d));
    for (const [a, b] of [[client, upstream], [upstream, client]]) {
      a.on("error", () => b.destroy());
      a.on("close", () => b.destroy());
    }
  });
  return new Promise((resolve) =>
    server.listen(0, "127.0.0.1", () =>
      resolve({
        port: server.address().port,
        cut: () => cut,
        close: () => {
          for (const s of sockets) s.destroy();
          server.close();
        },
      }),
    ),
  );
}

try {
  // --- With JavaScript, on a phone, by keyboard alone. ---
  const { page, errors } = await open(phone, url);
  assert.equal(await page.locator(".ask").innerText(), message);
  assert.equal(await page.locator("#camera").getAttribute("capture"), "environment");
  assert.equal(await page.locator("#picker").getAttribute("accept"), "application/pdf,image/jpeg");
  assert.ok(await page.locator("#picker-button").isVisible());
  assert.ok(!(await page.locator("#plain").isVisible()), "the script replaced the plain form");
  assert.ok(!(await page.locator("#done").isVisible()), "no \"I'm finished\" before a file is in");
  await accessible(page, "phone, as opened");

  // Finishing before any file is refused and spends nothing.
  const early = await page.evaluate(async () => (await fetch(location.pathname + "/done", { method: "POST" })).status);
  assert.equal(early, 409);

  // Tab to "Choose files" and press Enter: the file chooser opens. (Listening starts well
  // before the key press: Playwright intercepts choosers only once a listener is in place.)
  const chooserOpened = new Promise((resolve) => page.once("filechooser", resolve));
  let reached = null;
  for (let i = 0; i < 10 && reached !== "picker-button"; i++) {
    await page.keyboard.press("Tab");
    reached = await page.evaluate(() => document.activeElement && document.activeElement.id);
  }
  assert.equal(reached, "picker-button", "\"Choose files\" is reachable by Tab");
  await page.keyboard.press("Enter");
  const chooser = await chooserOpened;
  await chooser.setFiles(files);
  await page.waitForFunction(() => document.querySelectorAll("#files li .ok, #files li .err").length === 2, null, {
    timeout: 20000,
  });
  const rows = await page.locator("#files li").evaluateAll((lis) =>
    lis.map((li) => ({
      name: li.querySelector(".name").textContent,
      progress: li.querySelector("progress").value,
      label: li.querySelector("progress").getAttribute("aria-label"),
      ok: !!li.querySelector(".ok"),
      text: li.querySelector(".ok, .err").textContent,
    })),
  );
  const pdf = rows.find((r) => r.name === "certificate.pdf");
  const png = rows.find((r) => r.name === "notes.png");
  assert.ok(pdf.ok, JSON.stringify(rows));
  assert.equal(pdf.progress, 100);
  assert.equal(pdf.label, "Sending certificate.pdf");
  assert.match(pdf.text, /Received certificate\.pdf/);
  assert.ok(!png.ok, JSON.stringify(rows));
  assert.match(png.text, /can't be accepted here\. Please send PDF or JPEG\./);
  assert.equal(await page.locator("#remaining").innerText(), "2");
  assert.ok(await page.locator("#done").isVisible(), "\"I'm finished\" once a file is in");
  await accessible(page, "phone, after two files");

  await page.locator("#done").focus();
  await page.keyboard.press("Enter");
  await page.waitForFunction(() => document.querySelector("h1").textContent === "Thank you");
  assert.match(await page.locator("main").innerText(), /Your files have been received/);
  assert.equal(await page.locator("button, input").count(), 0, "after done, only the thank-you");
  await accessible(page, "phone, finished");
  assert.deepEqual(errors, []);

  // Opening the link again shows the "already used" page.
  const again = await page.goto(url);
  assert.equal(again.status(), 410);
  assert.match(await page.locator("h1").innerText(), /Already used/);
  await accessible(page, "phone, link used");

  // --- The second link on a desktop screen, as opened. ---
  const wide = await open(desktop, plainUrl);
  await accessible(wide.page, "desktop, as opened");

  // --- Without JavaScript: the plain form posts one file and answers with a page. ---
  const plain = await open(phone, plainUrl, { script: false });
  assert.ok(await plain.page.locator("#plain").isVisible());
  assert.ok(!(await plain.page.locator("#enhanced").isVisible()));
  await accessible(plain.page, "phone, without JavaScript");
  await plain.page.setInputFiles("#plain-file", files[0]);
  await plain.page.locator("#plain button[type=submit]").click();
  await plain.page.waitForLoadState();
  assert.match(await plain.page.locator("h1").innerText(), /File received/);
  assert.match(await plain.page.locator("main").innerText(), /Received certificate\.pdf/);
  await accessible(plain.page, "phone, without JavaScript, file received");
  // A refused file says why, and offers the next try.
  await plain.page.locator("a", { hasText: "Send another file" }).click();
  await plain.page.setInputFiles("#plain-file", files[1]);
  await plain.page.locator("#plain button[type=submit]").click();
  await plain.page.waitForLoadState();
  assert.match(await plain.page.locator("h1").innerText(), /File not sent/);
  assert.match(await plain.page.locator("main").innerText(), /Please send PDF or JPEG/);
  await plain.page.locator("button", { hasText: "I'm finished" }).click();
  await plain.page.waitForLoadState();
  assert.match(await plain.page.locator("h1").innerText(), /Thank you/);
  await accessible(plain.page, "phone, without JavaScript, finished");

  // --- A German phone: the page, the script's words and the server's answers in German;
  // the switcher changes the language, and the assistant's message stays as written. ---
  const de = await open({ ...phone, locale: "de-DE" }, germanUrl);
  assert.equal(await de.page.locator("html").getAttribute("lang"), "de");
  assert.equal(await de.page.locator("h1").innerText(), "Dateien senden");
  assert.equal(await de.page.locator(".ask").innerText(), message);
  assert.equal(await de.page.locator("#picker-button").innerText(), "Dateien auswählen");
  assert.equal(await de.page.locator("nav a[aria-current]").innerText(), "Deutsch");
  await accessible(de.page, "phone, German, as opened");
  await de.page.setInputFiles("#picker", files);
  await de.page.waitForFunction(() => document.querySelectorAll("#files li .ok, #files li .err").length === 2, null, {
    timeout: 20000,
  });
  const said = await de.page.locator("#files li .ok, #files li .err").allInnerTexts();
  assert.ok(said.includes("certificate.pdf empfangen. Vielen Dank!"), JSON.stringify(said));
  assert.ok(
    said.includes("Diese Art von Datei kann hier nicht angenommen werden. Bitte senden Sie PDF oder JPEG."),
    JSON.stringify(said),
  );
  assert.equal(await de.page.locator("#done").innerText(), "Ich bin fertig");
  await accessible(de.page, "phone, German, after two files");
  await de.page.locator("nav a", { hasText: "Français" }).click();
  await de.page.waitForLoadState();
  assert.equal(await de.page.locator("html").getAttribute("lang"), "fr");
  assert.equal(await de.page.locator("h1").innerText(), "Envoyez vos fichiers");
  assert.match(await de.page.locator(".hint").innerText(), /PDF ou JPEG, jusqu'à 8 Mo chacun/);
  assert.deepEqual(de.errors, []);

  // --- The network drops mid-file: a TCP relay between the browser and upgate cuts the
  // connection once, part-way through a chunk. The row waits, resumes from the server's
  // offset by itself, and the file arrives whole; no acknowledged byte is sent again. ---
  const relay = await cuttingRelay(gatewayPort, 1_300_000);
  const cutPage = await open(phone, cutUrl.replace(/:\d+\//, `:${relay.port}/`));
  const offsets = [];
  cutPage.page.on("request", (req) => {
    if (req.method() === "PATCH") offsets.push(Number(req.headers()["upload-offset"]));
  });
  await cutPage.page.setInputFiles("#picker", bigPdf);
  await cutPage.page.waitForFunction(() => document.querySelectorAll("#files li .ok, #files li .err").length === 1, null, {
    timeout: 60000,
  });
  const cutRow = await cutPage.page.locator("#files li").innerText();
  assert.match(cutRow, /Received scan\.pdf/, cutRow);
  assert.ok(relay.cut(), "the relay cut the connection");
  assert.equal(offsets[0], 0, JSON.stringify(offsets));
  assert.ok(offsets.slice(1).every((o) => o > 0), `never back to 0: ${offsets}`);
  let resent = 0;
  for (let i = 1; i < offsets.length; i++) if (offsets[i] <= offsets[i - 1]) resent++;
  assert.ok(resent <= 1, `at most the chunk in flight again: ${offsets}`);
  assert.ok(offsets.some((o) => o % (512 * 1024) !== 0), `resumed from the server's offset: ${offsets}`);
  relay.close();

  console.log(JSON.stringify({ rows, checked, offsets }));
} finally {
  await browser.close();
}
