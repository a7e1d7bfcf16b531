// Headless Chromium loads public/index.html from one origin and calls the function on another,
// through the real Firebase JS SDK: sign-in, the callable, CORS on success and on refusal.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import crypto from "node:crypto";
import fs from "node:fs/promises";
import path from "node:path";
import { launchChromium } from "./chromium.mjs";
import { startFunction, demoSecret } from "./function.mjs";
import { startStaticServer, sdkVersion } from "./static-server.mjs";
import { emulatorHost, project } from "./emulator.mjs";

const expectedHMAC = (uid) => crypto.createHmac("sha256", demoSecret).update(uid).digest("base64");
const screenshots = path.join(import.meta.dirname, "screenshots");

let fn, site, hosting, chromium, browser;
before(async () => {
  fn = await startFunction();
  site = await startStaticServer();
  hosting = await startStaticServer({ functionURL: fn.url }); // the same origin, as make dev and Hosting serve it
  chromium = await launchChromium();
  browser = chromium.browser;
});
after(async () => {
  await chromium?.close();
  await site?.close();
  await hosting?.close();
  await fn?.stop();
});

// openPage loads the demo page, signed out, pointed at the local function on another origin
// and the emulator.
async function openPage(t, extra = {}) {
  // Its own context: Firebase Auth persists the user in IndexedDB, which pages of one context share.
  const context = await browser.createBrowserContext();
  t.after(() => context.close());
  const page = await context.newPage();
  const failures = [];
  page.on("pageerror", (err) => failures.push(err.message));
  page.on("requestfailed", (req) => failures.push(`${req.url()} ${req.failure()?.errorText}`));
  const query = new URLSearchParams({ function: fn.url, authEmulator: `http://${emulatorHost}`, project, ...extra });
  await page.goto(`${site.url}?${query}`);
  await page.waitForSelector("body[data-ready=true]", { timeout: 15000 });
  assert.notEqual(new URL(site.url).origin, new URL(fn.url).origin, "the page and the function must be on different origins");
  return { page, failures };
}

const text = (page, selector) => page.$eval(selector, (el) => el.textContent);

test("signed out, the callable's 401 reaches page code as functions/unauthenticated", async (t) => {
  const { page, failures } = await openPage(t);
  await page.click("#get-hmac");
  await page.waitForSelector("#error[data-code]:not([data-code=''])", { timeout: 15000 });
  assert.equal(await page.$eval("#error", (el) => el.dataset.code), "functions/unauthenticated");
  assert.deepEqual(failures, [], "no CORS or network failure");
});

test("anonymous sign-in, then the page shows the user's HMAC", async (t) => {
  const { page, failures } = await openPage(t);
  await page.click("#anonymous");
  await page.waitForSelector("#who[data-uid]:not([data-uid=''])", { timeout: 15000 });
  const uid = await page.$eval("#who", (el) => el.dataset.uid);
  await page.click("#get-hmac");
  await page.waitForFunction(() => document.getElementById("hmac").textContent !== "–", { timeout: 15000 });
  assert.equal(await text(page, "#external-id"), uid);
  assert.equal(await text(page, "#hmac"), expectedHMAC(uid));
  assert.equal(await text(page, "#error"), "");
  assert.deepEqual(failures, []);
  await fs.mkdir(screenshots, { recursive: true });
  await page.screenshot({ path: path.join(screenshots, "signed-in.png"), fullPage: true });
});

// showsHMACOf waits until the page shows an HMAC, and checks it is uid's, beside uid.
async function showsHMACOf(page, uid) {
  await page.waitForFunction((u) => document.getElementById("external-id").textContent === u, { timeout: 15000 }, uid);
  assert.equal(await text(page, "#hmac"), expectedHMAC(uid));
}

test(".stream() in Chromium: the HMAC signed in, functions/unauthenticated signed out", async (t) => {
  const { page, failures } = await openPage(t);
  await page.click("#stream-hmac");
  await page.waitForSelector("#error[data-code]:not([data-code=''])", { timeout: 15000 });
  assert.equal(await page.$eval("#error", (el) => el.dataset.code), "functions/unauthenticated");

  await page.click("#anonymous");
  await page.waitForSelector("#who[data-uid]:not([data-uid=''])", { timeout: 15000 });
  const uid = await page.$eval("#who", (el) => el.dataset.uid);
  await showsHMACOf(page, uid);
  await page.evaluate(() => { document.getElementById("hmac").textContent = "–"; });
  await page.click("#stream-hmac");
  await page.waitForFunction(() => document.getElementById("hmac").textContent !== "–", { timeout: 15000 });
  assert.equal(await text(page, "#hmac"), expectedHMAC(uid));
  assert.equal(await text(page, "#error"), "");
  // Another user's ID, through the page's own app and the SDK's browser module.
  const denied = await page.evaluate(async (url, version) => {
    const { getApp } = await import(`https://www.gstatic.com/firebasejs/${version}/firebase-app.js`);
    const { getFunctions, httpsCallableFromURL } = await import(`https://www.gstatic.com/firebasejs/${version}/firebase-functions.js`);
    const { data } = await httpsCallableFromURL(getFunctions(getApp()), url).stream({ userExternalId: "someone-else" });
    return data.then(() => "settled with data", (err) => err.code);
  }, fn.url, sdkVersion);
  assert.equal(denied, "functions/permission-denied");
  // On an error event the SDK errors its stream, which may cancel the fetch's body: Chromium
  // reports that as net::ERR_ABORTED. Anything else is a failure.
  assert.deepEqual(failures.filter((f) => !f.endsWith(" net::ERR_ABORTED")), []);
});

test("the page follows the signed-in user: after a switch, only the new user's HMAC", async (t) => {
  const { page, failures } = await openPage(t);
  await page.click("#anonymous");
  await page.waitForSelector("#who[data-uid]:not([data-uid=''])", { timeout: 15000 });
  const first = await page.$eval("#who", (el) => el.dataset.uid);
  await showsHMACOf(page, first);

  await page.type("#email", `switch-${Date.now()}@example.com`);
  await page.type("#password", "correct-horse");
  await page.click("#sign-up");
  await page.waitForFunction((u) => !["", u].includes(document.getElementById("who").dataset.uid), { timeout: 15000 }, first);
  const second = await page.$eval("#who", (el) => el.dataset.uid);
  await showsHMACOf(page, second);
  assert.notEqual(await text(page, "#hmac"), expectedHMAC(first));
  assert.match(await text(page, "#usage"), /key=\{user\.uid\}/);
  assert.deepEqual(failures, []);
});

// As make dev serves it: the page calls /api/proficient-hmac on its own origin, forwarded to the
// function as the Hosting rewrite forwards it (method, path, headers, body and status unchanged).
test("same origin: the rewrite's path, forwarded as Hosting does, gives the HMAC and the refusals", async (t) => {
  const context = await browser.createBrowserContext();
  t.after(() => context.close());
  const page = await context.newPage();
  const failures = [];
  page.on("pageerror", (err) => failures.push(err.message));
  const called = [];
  page.on("request", (req) => req.method() === "POST" && !req.url().startsWith(`http://${emulatorHost}/`) && called.push(req.url()));
  await page.goto(`${hosting.url}?${new URLSearchParams({ authEmulator: `http://${emulatorHost}`, project })}`);
  await page.waitForSelector("body[data-ready=true]", { timeout: 15000 });
  await page.click("#get-hmac");
  await page.waitForSelector("#error[data-code]:not([data-code=''])", { timeout: 15000 });
  assert.equal(await page.$eval("#error", (el) => el.dataset.code), "functions/unauthenticated");
  await page.click("#anonymous");
  await page.waitForSelector("#who[data-uid]:not([data-uid=''])", { timeout: 15000 });
  await showsHMACOf(page, await page.$eval("#who", (el) => el.dataset.uid));
  assert.ok(called.length > 0 && called.every((url) => url === new URL("/api/proficient-hmac", hosting.url).href), JSON.stringify(called));
  assert.deepEqual(failures, []);
});

test("email/password account created on the page gets its HMAC", async (t) => {
  const { page, failures } = await openPage(t);
  await page.type("#email", `browser-${Date.now()}@example.com`);
  await page.type("#password", "correct-horse");
  await page.click("#sign-up");
  await page.waitForSelector("#who[data-uid]:not([data-uid=''])", { timeout: 15000 });
  const uid = await page.$eval("#who", (el) => el.dataset.uid);
  assert.match(await text(page, "#who"), /^browser-\d+@example\.com/);
  await page.click("#get-hmac");
  await page.waitForFunction(() => document.getElementById("hmac").textContent !== "–", { timeout: 15000 });
  assert.equal(await text(page, "#hmac"), expectedHMAC(uid));
  assert.deepEqual(failures, []);
});

// Tracing libraries add these to cross-origin calls; the preflight must let them through, and a
// streaming callable's refusal must reach page code as an event, not as a CORS failure.
test("tracing headers cross the preflight; a stream's refusal reaches the page", async (t) => {
  const { page, failures } = await openPage(t);
  const answer = await page.evaluate(async (url) => {
    const resp = await fetch(url, {
      method: "POST",
      headers: {
        "Content-Type": "application/json", Accept: "text/event-stream",
        traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", tracestate: "rojo=00f067aa0ba902b7",
        "sentry-trace": "0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-1", baggage: "sentry-environment=e2e",
      },
      body: JSON.stringify({ data: null }),
    });
    return { status: resp.status, type: resp.headers.get("content-type"), body: await resp.text() };
  }, fn.url);
  assert.deepEqual(failures, []);
  assert.equal(answer.status, 200);
  assert.equal(answer.type, "text/event-stream");
  assert.match(answer.body, /^data: \{"error":\{"status":"UNAUTHENTICATED","message":"Sign in first/);
});

// Datadog RUM and New Relic's browser agent wrap fetch and add their own headers to calls to
// traced origins, so the SDK's call is preflighted asking for them; the preflight must allow
// them (as onCall does) and the call give the HMAC.
test("a call carrying Datadog RUM and New Relic headers passes its preflight and gets the HMAC", async (t) => {
  const { page, failures } = await openPage(t);
  const sent = [];
  page.on("request", (req) => req.url().startsWith(fn.url) && req.method() === "POST" && sent.push(req.headers()));
  await page.click("#anonymous");
  await page.waitForSelector("#who[data-uid]:not([data-uid=''])", { timeout: 15000 });
  const uid = await page.$eval("#who", (el) => el.dataset.uid);
  await showsHMACOf(page, uid);
  sent.length = 0;
  const data = await page.evaluate(async (url, version) => {
    const untraced = window.fetch;
    window.fetch = (input, init = {}) => {
      const headers = new Headers(init.headers);
      headers.set("x-datadog-trace-id", "8448eb211c80319c");
      headers.set("x-datadog-parent-id", "7214366546153466155");
      headers.set("x-datadog-origin", "rum");
      headers.set("x-datadog-sampling-priority", "1");
      headers.set("newrelic", "eyJ2IjpbMCwxXSwiZCI6eyJ0eSI6IkJyb3dzZXIifX0=");
      return untraced(input, { ...init, headers });
    };
    try {
      const { getApp } = await import(`https://www.gstatic.com/firebasejs/${version}/firebase-app.js`);
      const { getFunctions, httpsCallableFromURL } = await import(`https://www.gstatic.com/firebasejs/${version}/firebase-functions.js`);
      return (await httpsCallableFromURL(getFunctions(getApp()), url)()).data;
    } catch (err) {
      return { code: err.code };
    } finally {
      window.fetch = untraced;
    }
  }, fn.url, sdkVersion);
  assert.deepEqual(data, { hmac: expectedHMAC(uid), userExternalId: uid });
  assert.deepEqual(failures, []);
  assert.equal(sent.length, 1, "one call");
  for (const name of ["x-datadog-trace-id", "x-datadog-parent-id", "x-datadog-origin", "x-datadog-sampling-priority", "newrelic"]) {
    assert.ok(sent[0][name], `the call carried ${name}, so its preflight asked for it`);
  }
});

// Last, as it stops the function to read its flushed log: an App Check token from the JS SDK's
// custom provider crosses the preflight and reaches the function, which records it as present
// (not verified: App Check is not emulated, so enforcement stays off locally).
test("X-Firebase-AppCheck from the App Check SDK passes CORS and reaches the function", async (t) => {
  const { page, failures } = await openPage(t, { appCheckToken: "e2e-custom-provider-token" });
  const sent = [];
  page.on("request", (req) => req.url().startsWith(fn.url) && req.method() === "POST" && sent.push(req.headers()["x-firebase-appcheck"]));
  await page.click("#anonymous");
  await page.waitForSelector("#who[data-uid]:not([data-uid=''])", { timeout: 15000 });
  const uid = await page.$eval("#who", (el) => el.dataset.uid);
  await page.click("#get-hmac");
  await page.waitForFunction(() => document.getElementById("hmac").textContent !== "–", { timeout: 15000 });
  assert.equal(await text(page, "#hmac"), expectedHMAC(uid));
  assert.deepEqual(failures, []);
  assert.ok(sent.length > 0 && sent.every((token) => token === "e2e-custom-provider-token"),
    `every callable request carried the App Check token: ${JSON.stringify(sent)}`);

  await fn.stop(); // flushes the function's log
  const line = fn.logs().split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l))
    .find((entry) => entry.uid === uid && entry.reason === "ok");
  assert.equal(line?.appCheck, "unverified", "the function saw the App Check header");
});
