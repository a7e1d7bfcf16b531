// The README's "Use it from your app" snippets and docs/react.md's component, run as written:
// taken from those files (so the text and the test cannot drift apart) into an app served by a
// real Vite dev server whose vite.config.js is the README's (its proxy forwards
// /api/proficient-hmac to the function), and run in Chromium: the callable and fetch snippets in
// a page of their own, the React component in a React app with a stand-in for
// @proficient/react's InteractionView.
//
// The function runs with ALLOW_ANONYMOUS=false and reaches the Auth emulator through a forwarder
// the test can turn into an outage (502, which the function answers 503 with Retry-After) or
// into an emulator that has forgotten its users (the function answers 401).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import crypto from "node:crypto";
import http from "node:http";
import { launchChromium } from "./chromium.mjs";
import { startFunction, demoSecret } from "./function.mjs";
import { startViteDevServer } from "./vite-server.mjs";
import { readmeBlock as snippet } from "./readme.mjs";
import { interactionViewSource } from "./proficient-react.mjs";
import { emulatorHost, project } from "./emulator.mjs";
import { createElement } from "react";
import { renderToString } from "react-dom/server";

const expectedHMAC = (uid) => crypto.createHmac("sha256", demoSecret).update(uid).digest("base64");

// Sign-in controls for the tests, on every page.
const signIn = `import { getAuth, signInAnonymously, createUserWithEmailAndPassword, signOut } from "firebase/auth";
window.auth = {
  anonymous: async () => (await signInAnonymously(getAuth())).user.uid,
  create: async (email) => (await createUserWithEmailAndPassword(getAuth(), email, "correct-horse")).user.uid,
  signOut: () => signOut(getAuth()),
};
`;

// The page for the callable and fetch snippets, each a module of the app.
const snippetsMain = `import "./init.js";
import "./sign-in.js";
import * as callable from "./callable.js";
import * as rest from "./fetch.js";
const attempt = (f) => f().then((hmac) => ({ hmac }), (err) => ({ code: err.code, message: err.message }));
window.snippets = { callable: () => attempt(callable.proficientHmac), fetch: () => attempt(rest.proficientHmac) };
document.body.dataset.ready = "true";
`;

// The React app around the README's component.
const reactMain = `import "./init.js";
import "./sign-in.js";
import { createRoot } from "react-dom/client";
import Agent from "./Agent.jsx";
createRoot(document.getElementById("root")).render(<Agent agentId="ag_test" />);
document.body.dataset.ready = "true";
`;

// The stand-in fed the callable snippet directly, as an app would without the README's
// component: with ?key, a new view per user; without, one view across users.
const standInMain = `import "./init.js";
import "./sign-in.js";
import { useEffect, useState } from "react";
import { createRoot } from "react-dom/client";
import { getAuth, onAuthStateChanged } from "firebase/auth";
import { InteractionView } from "@proficient/react";
import { proficientHmac } from "./proficientHmac.js";
const keyed = new URLSearchParams(location.search).has("key");
function Direct() {
  const [user, setUser] = useState(null);
  useEffect(() => onAuthStateChanged(getAuth(), setUser), []);
  if (!user) return null;
  return <InteractionView key={keyed ? user.uid : "one"} apiKey="pk_test" agentId="ag_test" userExternalId={user.uid} userHmac={proficientHmac} />;
}
createRoot(document.getElementById("root")).render(<Direct />);
document.body.dataset.ready = "true";
`;

const page = (script) => `<!doctype html><html><body><div id="root"></div><script type="module" src="${script}"></script></body></html>`;

// startAuthForwarder passes the function's calls to the Auth emulator, or, by mode, answers as a
// proxy whose upstream is gone ("down": 502) or as an emulator that has forgotten every user
// ("forgetful": a lookup finds no one).
function startAuthForwarder() {
  const forwarder = { mode: "up" };
  const server = http.createServer((req, res) => {
    if (forwarder.mode === "down") {
      res.writeHead(502, { "Content-Type": "text/plain" }).end("bad gateway\n");
      return;
    }
    if (forwarder.mode === "forgetful" && req.url.includes("accounts:lookup")) {
      req.resume();
      res.writeHead(200, { "Content-Type": "application/json" }).end('{"kind":"identitytoolkit#GetAccountInfoResponse"}');
      return;
    }
    const upstream = http.request(`http://${emulatorHost}${req.url}`, { method: req.method, headers: req.headers }, (answer) => {
      res.writeHead(answer.statusCode, answer.headers);
      answer.pipe(res);
    });
    upstream.on("error", () => res.destroy());
    req.pipe(upstream);
  });
  return new Promise((resolve) => {
    server.listen(0, "127.0.0.1", () => {
      forwarder.host = `127.0.0.1:${server.address().port}`;
      forwarder.close = () => new Promise((done) => server.close(done));
      resolve(forwarder);
    });
  });
}

let authForwarder, fn, site, chromium, browser;
before(async () => {
  authForwarder = await startAuthForwarder();
  fn = await startFunction({ env: { ALLOW_ANONYMOUS: "false", FIREBASE_AUTH_EMULATOR_HOST: authForwarder.host } });
  const callable = await snippet("**Firebase web SDK, callable protocol**", "js");
  site = await startViteDevServer({
    functionURL: fn.url,
    files: {
      // The values docs/react.md says to set for development against the emulator.
      ".env.development.local": [
        "VITE_FIREBASE_API_KEY=demo-api-key", `VITE_FIREBASE_PROJECT_ID=${project}`,
        `VITE_AUTH_EMULATOR_URL=http://${emulatorHost}`, "VITE_PROFICIENT_API_KEY=pk_test_from_vite_env", "",
      ].join("\n"),
      "init.js": await snippet("First, your app's Firebase set-up", "js", "docs/react.md"),
      "sign-in.js": signIn,
      "index.html": page("/main.js"),
      "main.js": snippetsMain,
      "callable.js": callable,
      "fetch.js": await snippet("**Plain `fetch`**", "js"),
      "react.html": page("/react-main.jsx"),
      "react-main.jsx": reactMain,
      "Agent.jsx": await snippet("# Proficient's React SDK", "jsx", "docs/react.md"),
      "proficientHmac.js": callable,
      "proficient-react.js": interactionViewSource,
      "stand-in.html": page("/stand-in-main.jsx"),
      "stand-in-main.jsx": standInMain,
    },
    alias: { "@proficient/react": "proficient-react.js" },
  });
  chromium = await launchChromium();
  browser = chromium.browser;
});
after(async () => {
  await chromium?.close();
  await fn?.stop();
  await authForwarder?.close();
  await site?.close(); // last: it fails if Vite asked the pages to reload
});

// open loads a page in a fresh browser context and records the page's uncaught errors and its
// calls to the function (status and Retry-After of each answer).
async function open(t, file, query = {}) {
  const context = await browser.createBrowserContext();
  t.after(() => context.close());
  const tab = await context.newPage();
  const failures = [];
  const calls = [];
  let failed;
  const firstFailure = new Promise((resolve) => (failed = resolve));
  tab.on("pageerror", (err) => {
    failures.push(err.message);
    failed(err.message);
  });
  tab.on("response", (res) => {
    if (res.request().method() === "POST" && new URL(res.url()).pathname === "/api/proficient-hmac") {
      calls.push({ status: res.status(), retryAfter: res.headers()["retry-after"] });
    }
  });
  await tab.goto(`${site.url}${file}?${new URLSearchParams({ authEmulator: `http://${emulatorHost}`, project, ...query })}`);
  await tab.waitForSelector("body[data-ready=true]", { timeout: 15000 });
  return { tab, failures, calls, firstFailure };
}

const newEmail = (name) => `${name}-${crypto.randomUUID()}@example.com`;

test("the callable and fetch snippets, as written: signed out they say so, refused they say why, signed in they give the HMAC", async (t) => {
  const { tab, failures } = await open(t, "index.html");
  const signedOut = await tab.evaluate(async () => [await snippets.callable(), await snippets.fetch()]);
  assert.equal(signedOut[0].code, "functions/unauthenticated");
  assert.match(signedOut[1].message, /^Sign in first/);
  await tab.evaluate(() => auth.anonymous());
  const anonymous = await tab.evaluate(async () => [await snippets.callable(), await snippets.fetch()]);
  assert.equal(anonymous[0].code, "functions/permission-denied");
  assert.match(anonymous[1].message, /^HTTP 403: Anonymous users/);
  const uid = await tab.evaluate((email) => auth.create(email), newEmail("snippets"));
  const signedIn = await tab.evaluate(async () => [await snippets.callable(), await snippets.fetch()]);
  assert.deepEqual(signedIn, [{ hmac: expectedHMAC(uid) }, { hmac: expectedHMAC(uid) }]);
  assert.deepEqual(failures, []);
});

test("the snippets load where a module may load on a server, with no Firebase app, and the React component renders nothing there", async () => {
  for (const file of ["/callable.js", "/fetch.js", "/Agent.jsx"]) {
    await assert.doesNotReject(site.ssrLoadModule(file), file);
  }
  const { default: Agent } = await site.ssrLoadModule("/Agent.jsx");
  assert.equal(renderToString(createElement(Agent, { agentId: "ag_test" })), "");
});

// The stand-in itself, fed the callable snippet directly: it must show what the real
// InteractionView does, or the React test below could not catch an example that hangs.
test("the InteractionView stand-in behaves as @proficient/react 0.23.0: two calls per view, stuck on a refusal, the first HMAC kept", async (t) => {
  await t.test("two calls before the first answer is cached", async (t) => {
    const { tab, calls } = await open(t, "stand-in.html", { key: "" });
    const uid = await tab.evaluate((email) => auth.create(email), newEmail("two-calls"));
    await tab.waitForSelector(`#view[data-uid="${uid}"]:not([data-interactions-hmac=""])`, { timeout: 15000 });
    assert.equal(calls.length, 2);
    assert.equal(await tab.$eval("#view", (el) => el.dataset.hmac), expectedHMAC(uid));
  });
  await t.test("a refusal leaves Loading agent... and an uncaught error", async (t) => {
    const { tab, firstFailure } = await open(t, "stand-in.html", { key: "" });
    await tab.evaluate(() => auth.anonymous());
    assert.match(await firstFailure, /Anonymous users/);
    assert.equal(await tab.$eval("#proficient-loading", (el) => el.textContent), "Loading agent...");
  });
  await t.test("without a key per user, the next user's view carries the first user's HMAC", async (t) => {
    const { tab } = await open(t, "stand-in.html");
    const first = await tab.evaluate((email) => auth.create(email), newEmail("first"));
    await tab.waitForSelector(`#view[data-uid="${first}"]`, { timeout: 15000 });
    const second = await tab.evaluate((email) => auth.create(email), newEmail("second"));
    await tab.waitForSelector(`#view[data-uid="${second}"]`, { timeout: 15000 });
    assert.equal(await tab.$eval("#view", (el) => el.dataset.hmac), expectedHMAC(first));
  });
});

test("the React snippet, as written: one call per user, their own HMAC, and refusals and outages shown with a retry", async (t) => {
  const { tab, failures, calls } = await open(t, "react.html");
  // Signed out (and while the saved sign-in is restored): nothing, and no crash.
  assert.equal(await tab.$("#root > *"), null);

  const shows = async (uid) => {
    await tab.waitForSelector(`#view[data-uid="${uid}"]:not([data-interactions-hmac=""])`, { timeout: 15000 });
    return tab.$eval("#view", (el) => ({ ...el.dataset }));
  };
  const alert = async () => {
    await tab.waitForSelector("[role=alert] button", { timeout: 15000 });
    return tab.$eval("[role=alert]", (el) => el.textContent);
  };
  const viewOf = (uid) => ({ apiKey: "pk_test_from_vite_env", agent: "ag_test", uid, hmac: expectedHMAC(uid), interactionsHmac: expectedHMAC(uid) });
  const agentRequests = () => tab.evaluate(() => window.proficientRequests.filter((r) => r.what === "agent").length);

  // Refused: an anonymous user, with ALLOW_ANONYMOUS=false.
  await tab.evaluate(() => auth.anonymous());
  assert.match(await alert(), /Anonymous users cannot get an HMAC.*Try again/);
  assert.deepEqual(calls.splice(0).map((c) => c.status), [403]);

  // A user with a password: one call, and the view with their HMAC, loaded once.
  const first = await tab.evaluate((email) => auth.create(email), newEmail("react-first"));
  assert.deepEqual(await shows(first), viewOf(first));
  assert.deepEqual(calls.splice(0).map((c) => c.status), [200]);
  assert.equal(await agentRequests(), 1);

  // The next user while Firebase Authentication is unreachable from the function: 503, shown;
  // Try again once it is back brings the view, with this user's HMAC.
  authForwarder.mode = "down";
  const second = await tab.evaluate((email) => auth.create(email), newEmail("react-second"));
  assert.match(await alert(), /cannot be reached right now.*Try again/);
  assert.deepEqual(calls.splice(0), [{ status: 503, retryAfter: "5" }]);
  authForwarder.mode = "up";
  await tab.click("[role=alert] button");
  assert.deepEqual(await shows(second), viewOf(second));
  assert.deepEqual(calls.splice(0).map((c) => c.status), [200]);

  // The next user while the emulator has forgotten its users: 401, shown, then the same retry.
  authForwarder.mode = "forgetful";
  const third = await tab.evaluate((email) => auth.create(email), newEmail("react-third"));
  assert.match(await alert(), /Try again/);
  assert.deepEqual(calls.splice(0).map((c) => c.status), [401]);
  authForwarder.mode = "up";
  await tab.click("[role=alert] button");
  assert.deepEqual(await shows(third), viewOf(third));
  assert.deepEqual(calls.splice(0).map((c) => c.status), [200]);
  assert.equal(await agentRequests(), 3, "each view loaded once");

  await tab.evaluate(() => auth.signOut());
  await tab.waitForFunction(() => !document.querySelector("#root > *"), { timeout: 15000 });
  assert.deepEqual(failures, []);
});

// Last: it stops the function. The callable SDK alone would say "functions/internal: internal [500]".
test("with the function stopped, both snippets say the server in front of it could not reach it", async (t) => {
  const { tab } = await open(t, "index.html");
  await tab.evaluate((email) => auth.create(email), newEmail("stopped"));
  await fn.stop();
  const answers = await tab.evaluate(async () => [await snippets.callable(), await snippets.fetch()]);
  for (const answer of answers) {
    assert.match(answer.message ?? "", /^\/api\/proficient-hmac answered 500 from the server in front of the function: the function is not answering\. In development, start it/, JSON.stringify(answer));
  }
});
