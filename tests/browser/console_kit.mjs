// What the console's browser scripts share: Chromium launched as this machine allows,
// axe-core on every state (plus a check that nothing scrolls sideways), contexts that
// collect page errors, the welcome and sign-in steps, an RFC 6238 code as an
// authenticator app makes it, and a call to the control API.
import { createHmac } from "node:crypto";
import { createRequire } from "node:module";
import assert from "node:assert/strict";
import { chromium } from "playwright-core";

const require = createRequire(import.meta.url);
const axePath = require.resolve("axe-core/axe.min.js");
export const env = (k) => {
  const v = process.env[k];
  assert.ok(v, `${k} is set`);
  return v;
};
export const control = env("UPGATE_CONTROL");
const shots = process.env.UPGATE_SHOTS;
export const PASSWORD = "a long enough password";

export const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync"],
});
export const phone = { viewport: { width: 360, height: 640 }, isMobile: true, hasTouch: true };
export const desktop = { viewport: { width: 1280, height: 800 } };
export const checked = [];

export async function accessible(page, state) {
  await page.addScriptTag({ path: axePath });
  const result = await page.evaluate(() => window.axe.run(document, { resultTypes: ["violations"] }));
  const found = result.violations.map((v) => `${v.id}: ${v.nodes.map((n) => n.target.join(" ")).join(", ")}`);
  assert.deepEqual(found, [], `axe violations in "${state}"`);
  // Nothing wider than the viewport (a phone scrolls tables inside their box, not the page).
  const wide = await page.evaluate(() => document.documentElement.scrollWidth > window.innerWidth + 1);
  assert.ok(!wide, `"${state}" scrolls sideways`);
  checked.push(state);
  if (shots) await page.screenshot({ path: `${shots}/${state.replace(/\W+/g, "-")}.png`, fullPage: true });
}

export async function context(options = desktop) {
  // bypassCSP lets axe-core be injected; the console itself never runs inline script.
  const ctx = await browser.newContext({ ignoreHTTPSErrors: true, bypassCSP: true, ...options });
  const page = await ctx.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  page.on("console", (m) => {
    if (m.type() === "error" && !/status of (401|403|422)/.test(m.text())) errors.push(`${m.text()} ${m.location().url}`);
  });
  return { ctx, page, errors };
}

// Clicks a submit button and waits for the page the form leads to.
export async function submit(page, selector) {
  await Promise.all([page.waitForEvent("framenavigated"), page.click(selector)]);
  await page.waitForLoadState();
}

// The welcome link: choose a password, land signed in.
export async function welcome(page, link, state) {
  await page.goto(link);
  await accessible(page, `${state}: welcome`);
  await page.fill("#password", PASSWORD);
  await submit(page, "button[type=submit]");
}

export async function signIn(page, email, code) {
  await page.goto(`${control}/console/sign-in`);
  await page.fill("#email", email);
  await page.fill("#password", PASSWORD);
  if (code) await page.fill("#code", code);
  await submit(page, "main button[type=submit]");
}

export function base32(text) {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  let bits = "";
  for (const c of text) bits += alphabet.indexOf(c).toString(2).padStart(5, "0");
  const bytes = [];
  for (let i = 0; i + 8 <= bits.length; i += 8) bytes.push(parseInt(bits.slice(i, i + 8), 2));
  return Buffer.from(bytes);
}

// RFC 6238, as an authenticator app computes it, for the step `offset` steps from now.
export function totp(secret, offset = 0) {
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(Math.floor(Date.now() / 1000 / 30) + offset));
  const mac = createHmac("sha1", base32(secret)).update(counter).digest();
  const o = mac[mac.length - 1] & 0xf;
  return String((mac.readUInt32BE(o) & 0x7fffffff) % 1000000).padStart(6, "0");
}

export async function api(token, method, path, body) {
  const res = await fetch(`${control}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    body: body && JSON.stringify(body),
  });
  const json = await res.json();
  assert.ok(res.ok, `${method} ${path}: ${res.status} ${JSON.stringify(json)}`);
  return json;
}

