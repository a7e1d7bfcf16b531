// docs/angular.md, run as written: an app made by the pinned CLI's `ng new --ssr` (e2e/angular, its
// own lock file), with the guide's proxy.conf.json, angular.json line, src/app/firebase.ts,
// component and template, and the README's fetch snippet as src/app/proficient-hmac.ts. `ng build`
// prerenders it; `ng serve` serves it, in Chromium, with the proxy (through a gate the test can
// hold, close and reopen, in front of the function) and without the proxyConfig line.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import crypto from "node:crypto";
import { EventEmitter, once } from "node:events";
import fs from "node:fs/promises";
import http from "node:http";
import path from "node:path";
import { launchChromium } from "./chromium.mjs";
import { readmeBlock } from "./readme.mjs";
import { freePorts, startFunction, demoSecret } from "./function.mjs";
import { emulatorHost } from "./emulator.mjs";

const here = import.meta.dirname;
const guide = "docs/angular.md";
const angularDir = path.join(here, "angular"); // its own package: the Angular CLI, Angular, firebase
const ng = path.join(angularDir, "node_modules", "@angular", "cli", "bin", "ng.js");
const project = "my-app";
const expectedHMAC = (uid) => crypto.createHmac("sha256", demoSecret).update(uid).digest("base64");
const guideText = await fs.readFile(path.join(here, "..", guide), "utf8");

// The guide's words for the two mistakes, in italics after "Without that line".
const [proxyMissing, functionStopped] = [...guideText.slice(guideText.indexOf("Without that line")).matchAll(/\*([^*]+)\*/g)]
  .slice(0, 2).map((m) => m[1].replace(/\s+/g, " "));

// run resolves to { code, output } of a command in dir.
function run(args, dir) {
  const child = spawn(process.execPath, args, { cwd: dir, env: { ...process.env, NG_CLI_ANALYTICS: "false" }, stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  child.stdout.on("data", (chunk) => (output += chunk));
  child.stderr.on("data", (chunk) => (output += chunk));
  return new Promise((resolve) => child.once("exit", (code) => resolve({ code, output })));
}

// startNgServe runs `ng serve` in dir and resolves to { url, output(), stop() } once it serves.
async function startNgServe(dir, port) {
  const child = spawn(process.execPath, [ng, "serve", "--host", "127.0.0.1", "--port", String(port)], {
    cwd: dir,
    env: { ...process.env, NG_CLI_ANALYTICS: "false" },
    stdio: ["ignore", "pipe", "pipe"],
    detached: true, // its own process group: stop() ends its workers too
  });
  let output = "";
  const ready = new Promise((resolve, reject) => {
    for (const stream of [child.stdout, child.stderr]) {
      stream.setEncoding("utf8");
      stream.on("data", (chunk) => {
        output += chunk;
        if (/Local:\s+http:\/\/127\.0\.0\.1:\d+/.test(output)) resolve();
      });
    }
    child.once("exit", (code) => reject(new Error(`ng serve exited (${code}):\n${output}`)));
  });
  const exited = new Promise((resolve) => child.once("exit", resolve));
  await ready;
  return {
    url: `http://127.0.0.1:${port}/`,
    output: () => output,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) process.kill(-child.pid, "SIGTERM");
      await exited;
    },
  };
}

// uidOf reads the user from an emulator ID token (unsigned: its payload is plain base64url JSON).
const uidOf = (authorization = "") => JSON.parse(Buffer.from(authorization.split(".")[1] ?? "", "base64url").toString() || "{}").user_id;

// startGate listens where the proxy sends the API path and forwards to gate.target (the
// function). It records each call's user; while holding, it keeps calls until released; closed,
// its port refuses connections, as a stopped function's does.
async function startGate(port, target) {
  const gate = Object.assign(new EventEmitter(), { target, holding: false, calls: [] });
  const forward = (req, res, body) => {
    const upstream = http.request(new URL(req.url, gate.target), { method: req.method, headers: req.headers }, (answer) => {
      res.writeHead(answer.statusCode, answer.headers);
      answer.pipe(res);
    });
    upstream.on("error", () => res.destroy());
    upstream.end(body);
  };
  const server = http.createServer(async (req, res) => {
    const chunks = [];
    for await (const chunk of req) chunks.push(chunk);
    const body = Buffer.concat(chunks);
    if (req.method !== "POST") return forward(req, res, body);
    const uid = uidOf(req.headers.authorization);
    gate.calls.push(uid);
    if (!gate.holding) return forward(req, res, body);
    gate.emit("held", { uid, release: () => forward(req, res, body) });
  });
  const listen = () => new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, "127.0.0.1", resolve);
  });
  await listen();
  gate.close = () => {
    const closed = new Promise((resolve) => server.close(resolve));
    server.closeAllConnections();
    return closed;
  };
  gate.reopen = listen;
  return gate;
}

let fn, gate, withProxy, withoutProxy, chromium, dir, build;
before(async () => {
  fn = await startFunction();
  const [gatePort, servePort, barePort] = await freePorts(3);
  gate = await startGate(gatePort, fn.url);

  // Inside e2e/angular, so that the app's imports resolve from its node_modules.
  dir = await fs.mkdtemp(path.join(angularDir, ".run-"));
  const made = await run([ng, "new", project, "--ssr", "--skip-install", "--skip-git", "--style=css", "--defaults"], dir);
  assert.equal(made.code, 0, made.output);
  const app = path.join(dir, project);

  const proxyConf = await readmeBlock("**`proxy.conf.json`**", "json", guide);
  assert.match(proxyConf, /"http:\/\/127\.0\.0\.1:8080"/, "the guide's proxy sends the path to make dev's function");
  const proxyLine = JSON.parse(`{${(await readmeBlock("**`angular.json`**", "json", guide)).match(/"options": \{.*\}/)[0]}}`);
  const firebaseTs = await readmeBlock("**`src/app/firebase.ts`**", "ts", guide);
  assert.match(firebaseTs, /"http:\/\/127\.0\.0\.1:9099"/);
  const usage = await readmeBlock("Use it in any template", "html", guide);
  const placeholder = /<!--[^]*?-->/;
  assert.match(usage, placeholder);
  const files = {
    "proxy.conf.json": proxyConf.replace("http://127.0.0.1:8080", `http://127.0.0.1:${gatePort}`),
    "src/app/firebase.ts": firebaseTs.replace("http://127.0.0.1:9099", `http://${emulatorHost}`),
    "src/app/proficient-hmac.ts": await readmeBlock("**Plain `fetch`**", "js"),
    "src/app/proficient-agent.ts": await readmeBlock("**`src/app/proficient-agent.ts`**", "ts", guide),
    // The app's root: the guide's template, with an element showing the session in place of
    // the comment, and sign-in controls for the test, set up in the browser only.
    "src/app/app.ts": `import { Component, afterNextRender } from "@angular/core";
import { createUserWithEmailAndPassword, signOut } from "firebase/auth";
import { firebaseAuth } from "./firebase";
import { ProficientAgent } from "./proficient-agent";

@Component({
  selector: "app-root",
  imports: [ProficientAgent],
  template: \`${usage.replace(placeholder, '<output id="view" [attr.data-uid]="session.uid" [attr.data-hmac]="session.hmac"></output>')}\`,
})
export class App {
  constructor() {
    afterNextRender(() => {
      const page = window as any;
      page.auth = {
        create: async (email: string) => (await createUserWithEmailAndPassword(firebaseAuth(), email, "correct-horse")).user.uid,
        signOut: () => signOut(firebaseAuth()),
      };
      // Every user whose HMAC the page has shown, in order.
      page.shown = [];
      new MutationObserver(() => {
        const uid = document.getElementById("view")?.dataset["uid"];
        if (uid && page.shown.at(-1) !== uid) page.shown.push(uid);
      }).observe(document.body, { subtree: true, childList: true, attributes: true });
      document.body.dataset["ready"] = "true";
    });
  }
}
`,
  };
  for (const [name, text] of Object.entries(files)) await fs.writeFile(path.join(app, name), text);
  // The same app without the proxyConfig line, and one with it, each in its own folder.
  const bare = path.join(dir, "bare");
  await fs.cp(app, bare, { recursive: true });
  const angularJSON = JSON.parse(await fs.readFile(path.join(app, "angular.json"), "utf8"));
  const serve = angularJSON.projects[project].architect.serve;
  assert.equal(serve.builder, "@angular/build:dev-server", "ng new's serve target is the guide's");
  serve.options = { ...serve.options, ...proxyLine.options };
  await fs.writeFile(path.join(app, "angular.json"), JSON.stringify(angularJSON, null, 2));

  // The production build (with prerendering) beside the two dev servers.
  [build, withProxy, withoutProxy, chromium] = await Promise.all([
    run([ng, "build"], app), startNgServe(app, servePort), startNgServe(bare, barePort), launchChromium(),
  ]);
  build.app = app;
});
after(async () => {
  await chromium?.close();
  await withProxy?.stop();
  await withoutProxy?.stop();
  await gate?.close();
  await fn?.stop();
  if (dir) await fs.rm(dir, { recursive: true, force: true });
});

test("ng build prerenders the app with the guide's component, into the public folder of the guide's firebase.json", async () => {
  assert.equal(build.code, 0, build.output);
  assert.match(build.output, /Prerendered 1 static route/);
  assert.doesNotMatch(build.output, /app\/no-app|No Firebase App/);
  const { hosting } = JSON.parse(await readmeBlock("## Deploy to Firebase Hosting", "json", guide));
  const index = await fs.readFile(path.join(build.app, hosting.public, "index.html"), "utf8");
  assert.match(index, /<app-proficient-agent/, "the prerendered page holds the component");
  assert.doesNotMatch(index, /id="view"/, "no session on the server");
  assert.deepEqual(hosting.rewrites.map((r) => r.source), ["/api/proficient-hmac", "**"], "the function's rewrite before the catch-all");
});

// open loads the app in a fresh browser context, recording the page's errors (with expected,
// URLs whose failed loads are expected).
async function open(t, server, expected = []) {
  const context = await chromium.browser.createBrowserContext();
  t.after(() => context.close());
  const tab = await context.newPage();
  const failures = [];
  tab.on("pageerror", (err) => failures.push(err.message));
  tab.on("console", (msg) => {
    const url = msg.location()?.url ?? "";
    if (msg.type() === "error" && !url.endsWith("/favicon.ico") && !expected.some((path) => url.endsWith(path))) failures.push(`${msg.text()} (${url})`);
  });
  await tab.goto(server.url);
  await tab.waitForSelector("body[data-ready=true]", { timeout: 60000 });
  return { tab, failures };
}

const newEmail = (name) => `${name}-${crypto.randomUUID()}@example.com`;
const view = async (tab, uid) => {
  await tab.waitForSelector(`#view[data-uid="${uid}"]`, { timeout: 30000 });
  return tab.$eval("#view", (el) => el.dataset.hmac);
};
const text = (tab, selector) => tab.$eval(selector, (el) => el.textContent.replace(/\s+/g, " ").trim());

test("ng serve with the guide's proxy: signed out, one user, another, signed out: each their own HMAC, one call each", async (t) => {
  // The first page of a fresh dev server is rendered on the server: it must not fail there.
  const first = await fetch(withProxy.url);
  const html = await first.text();
  assert.equal(first.status, 200, html.slice(0, 2000));
  assert.match(html, /<app-proficient-agent/);

  const { tab, failures } = await open(t, withProxy);
  await tab.waitForSelector("app-proficient-agent p", { timeout: 30000 });
  assert.equal(await text(tab, "app-proficient-agent"), "Sign in to use the assistant.");
  gate.calls.length = 0;
  const a = await tab.evaluate((email) => auth.create(email), newEmail("angular-a"));
  assert.equal(await view(tab, a), expectedHMAC(a));
  const b = await tab.evaluate((email) => auth.create(email), newEmail("angular-b"));
  assert.notEqual(b, a);
  assert.equal(await view(tab, b), expectedHMAC(b), "after the switch, the new user's HMAC");
  assert.deepEqual(gate.calls, [a, b], "one call to the function per user");
  await tab.evaluate(() => auth.signOut());
  await tab.waitForFunction(() => !document.getElementById("view"), { timeout: 15000 });
  assert.equal(await text(tab, "app-proficient-agent"), "Sign in to use the assistant.");
  assert.deepEqual(await tab.evaluate(() => shown), [a, b]);
  assert.deepEqual(failures, []);
  assert.doesNotMatch(withProxy.output(), /app\/no-app|No Firebase App|ERROR/);
});

// gateNext resolves to the next call the gate holds.
const gateNext = async () => (await once(gate, "held"))[0];

test("an answer that arrives after the user changed is dropped: the page never shows it", async (t) => {
  const { tab, failures } = await open(t, withProxy);
  await tab.waitForSelector("app-proficient-agent p", { timeout: 30000 });
  gate.holding = true;
  t.after(() => (gate.holding = false));
  const lateUser = tab.evaluate((email) => auth.create(email), newEmail("angular-late"));
  const heldLate = await gateNext();
  const lateUid = await lateUser;
  assert.equal(heldLate.uid, lateUid);
  const nextHeld = gateNext();
  const current = await tab.evaluate((email) => auth.create(email), newEmail("angular-current"));
  const heldCurrent = await nextHeld;
  assert.equal(heldCurrent.uid, current);
  gate.holding = false;
  const lateDone = tab.waitForResponse((res) => res.url().endsWith("/api/proficient-hmac") && res.request().method() === "POST");
  heldLate.release();
  await (await lateDone).buffer();
  heldCurrent.release();
  assert.equal(await view(tab, current), expectedHMAC(current));
  assert.deepEqual(await tab.evaluate(() => shown), [current], "the late answer was never shown");
  assert.deepEqual(failures, []);
});

test("without the proxyConfig line, the page says so, as the guide does", async (t) => {
  const { tab, failures } = await open(t, withoutProxy, ["/api/proficient-hmac"]);
  await tab.evaluate((email) => auth.create(email), newEmail("angular-bare"));
  await tab.waitForSelector("[role=alert] button", { timeout: 30000 });
  const alert = await text(tab, "[role=alert]");
  assert.ok(alert.includes(proxyMissing), `${alert} does not say "${proxyMissing}"`);
  assert.match(alert, /^The assistant is unavailable: \/api\/proficient-hmac answered 404.*Try again$/);
  assert.deepEqual(failures, []);
});

test("with the function stopped, the page says so, as the guide does; Try again once it is back shows the HMAC", async (t) => {
  const { tab, failures } = await open(t, withProxy, ["/api/proficient-hmac"]);
  await fn.stop();
  await gate.close(); // the port the proxy sends to: refused, as a stopped function's is
  const uid = await tab.evaluate((email) => auth.create(email), newEmail("angular-stopped"));
  await tab.waitForSelector("[role=alert] button", { timeout: 30000 });
  const alert = await text(tab, "[role=alert]");
  assert.ok(alert.includes(functionStopped), `${alert} does not say "${functionStopped}"`);
  assert.match(alert, /^The assistant is unavailable: \/api\/proficient-hmac answered 5\d\d from the server in front of the function.*Try again$/);

  fn = await startFunction();
  gate.target = fn.url;
  await gate.reopen();
  await tab.click("[role=alert] button");
  assert.equal(await view(tab, uid), expectedHMAC(uid));
  assert.deepEqual(failures, []);
});
