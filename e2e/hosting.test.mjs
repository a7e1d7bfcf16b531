// The README's firebase.json for an app, served by the real Hosting emulator: as written, the
// function's rewrite comes before the single-page app's catch-all, so /api/proficient-hmac goes
// to the Cloud Run rewrite (which the emulator cannot reach offline: it answers an error naming
// it) and not to index.html. With the two rewrites swapped, the API path gets index.html, and the
// README's snippets, run in Chromium from that site, say what happened.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { launchChromium } from "./chromium.mjs";
import { readmeBlock } from "./readme.mjs";
import { freePorts } from "./function.mjs";
import { emulatorHost, project } from "./emulator.mjs";

const here = import.meta.dirname;
const firebaseCLI = path.join(here, "node_modules", ".bin", "firebase");
const appIndex = "<!doctype html><title>the app's index.html</title>";

// The snippets' page: the SDK's browser modules from the site itself (an import map instead of a
// bundler), the app initialised, then each snippet imported as a module of its own.
const sdkModules = ["firebase-app.js", "firebase-auth.js", "firebase-functions.js"];
const { version: sdkVersion } = JSON.parse(await fs.readFile(path.join(here, "node_modules", "firebase", "package.json"), "utf8"));
const snippetsPage = `<!doctype html><html><head><script type="importmap">${JSON.stringify({
  imports: {
    "firebase/app": "/sdk/firebase-app.js",
    "firebase/auth": "/sdk/firebase-auth.js",
    "firebase/functions": "/sdk/firebase-functions.js",
    [`https://www.gstatic.com/firebasejs/${sdkVersion}/`]: "/sdk/",
  },
})}</script></head><body><script type="module">
import { initializeApp } from "firebase/app";
import { getAuth, connectAuthEmulator, signInAnonymously } from "firebase/auth";
initializeApp({ apiKey: "demo-api-key", projectId: "${project}" });
connectAuthEmulator(getAuth(), "http://${emulatorHost}", { disableWarnings: true });
await signInAnonymously(getAuth());
const attempt = (f) => f().then((hmac) => ({ hmac }), (err) => ({ message: err.message }));
const callable = await import("/callable.js");
const rest = await import("/fetch.js");
window.snippets = { callable: () => attempt(callable.proficientHmac), fetch: () => attempt(rest.proficientHmac) };
document.body.dataset.ready = "true";
</script></body></html>`;

// startHosting serves the app's site with the given firebase.json in the Hosting emulator and
// resolves to { url, stop() } once it answers.
async function startHosting(name, firebaseJSON, ports) {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), `hosting-${name}-`));
  const site = path.join(dir, firebaseJSON.hosting.public);
  await fs.mkdir(path.join(site, "sdk"), { recursive: true });
  await fs.writeFile(path.join(site, "index.html"), appIndex);
  await fs.writeFile(path.join(site, "snippets.html"), snippetsPage);
  await fs.writeFile(path.join(site, "callable.js"), await readmeBlock("**Firebase web SDK, callable protocol**", "js"));
  await fs.writeFile(path.join(site, "fetch.js"), await readmeBlock("**Plain `fetch`**", "js"));
  for (const file of sdkModules) await fs.copyFile(path.join(here, "node_modules", "firebase", file), path.join(site, "sdk", file));
  const [hosting, hub, logging] = ports;
  const config = {
    ...firebaseJSON,
    emulators: {
      hosting: { host: "127.0.0.1", port: hosting },
      hub: { host: "127.0.0.1", port: hub },
      logging: { host: "127.0.0.1", port: logging },
      ui: { enabled: false },
    },
  };
  await fs.writeFile(path.join(dir, "firebase.json"), JSON.stringify(config, null, 2));
  // A project of its own: this runs beside make test's own emulators.
  const child = spawn(firebaseCLI, ["emulators:start", "--only", "hosting", "--project", `demo-hosting-${name}`, "--config", path.join(dir, "firebase.json")], {
    cwd: dir,
    env: { ...process.env, CI: "true", NO_UPDATE_NOTIFIER: "1" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  child.stdout.on("data", (chunk) => (output += chunk));
  child.stderr.on("data", (chunk) => (output += chunk));
  const exited = new Promise((resolve) => child.once("exit", resolve));
  const url = `http://127.0.0.1:${hosting}/`;
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGINT");
    await exited;
    await fs.rm(dir, { recursive: true, force: true });
  };
  // Poll until it serves the site (at most 60 s), or fail at once if it exits.
  let gone = false;
  exited.then(() => (gone = true));
  for (let attempt = 0; attempt < 600 && !gone; attempt++) {
    const ok = await fetch(url).then((res) => res.ok, () => false);
    if (ok) return { url, stop };
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  await stop();
  throw new Error(`the Hosting emulator (${name}) did not start:\n${output}`);
}

const apiCall = (url) =>
  fetch(new URL("api/proficient-hmac", url), { method: "POST", headers: { "Content-Type": "application/json" }, body: '{"data":null}' });

let asWritten, swapped, chromium;
before(async () => {
  const readme = JSON.parse(await readmeBlock("**Firebase Hosting.**", "json"));
  const rewrites = readme.hosting.rewrites;
  assert.equal(rewrites.length, 2, "the README's firebase.json has the function's rewrite and the catch-all");
  const reversed = { ...readme, hosting: { ...readme.hosting, rewrites: [...rewrites].reverse() } };
  // Both emulators' ports at once, so the two starting side by side never pick the same one.
  const ports = await freePorts(6);
  [asWritten, swapped, chromium] = await Promise.all([
    startHosting("readme", readme, ports.slice(0, 3)), startHosting("swapped", reversed, ports.slice(3)), launchChromium(),
  ]);
});
after(async () => {
  await chromium?.close();
  await asWritten?.stop();
  await swapped?.stop();
});

test("the README's firebase.json: the API path goes to the function's rewrite, other paths to index.html", async () => {
  const page = await fetch(new URL("some/app/route", asWritten.url));
  assert.equal(page.status, 200);
  assert.equal(await page.text(), appIndex, "the catch-all serves index.html for the app's routes");
  const api = await apiCall(asWritten.url);
  const body = await api.text();
  assert.notEqual(body, appIndex, "the API path must not get index.html");
  assert.match(body, /Cloud Run service/, "the Cloud Run rewrite handled the API path");
});

test("with the rewrites swapped, the API path gets index.html, and the snippets say to put the rewrite first", async (t) => {
  const api = await apiCall(swapped.url);
  assert.equal(api.status, 200);
  assert.match(api.headers.get("content-type"), /^text\/html/);
  assert.equal(await api.text(), appIndex);

  const context = await chromium.browser.createBrowserContext();
  t.after(() => context.close());
  const tab = await context.newPage();
  const failures = [];
  tab.on("pageerror", (err) => failures.push(err.message));
  await tab.goto(new URL("snippets.html", swapped.url).href);
  await tab.waitForSelector("body[data-ready=true]", { timeout: 15000 });
  const answers = await tab.evaluate(async () => [await snippets.callable(), await snippets.fetch()]);
  for (const answer of answers) {
    assert.match(answer.message ?? "", /your Hosting catch-all answered: put the rewrite first/, JSON.stringify(answer));
  }
  assert.deepEqual(failures, []);
});
