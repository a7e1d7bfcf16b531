// The README's "Call it from your app" snippets, run as written: taken from README.md itself (so
// the text and the test cannot drift apart) into an app served by a real Vite dev server whose
// vite.config.js is the README's (its proxy forwards /api/proficient-hmac to the function), and
// run in Chromium: the callable and fetch snippets in a page of their own, the React snippet in a
// React app.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import crypto from "node:crypto";
import { launchChromium } from "./chromium.mjs";
import { startFunction, demoSecret } from "./function.mjs";
import { startViteDevServer } from "./vite-server.mjs";
import { readmeBlock as snippet } from "./readme.mjs";
import { emulatorHost, project } from "./emulator.mjs";

const expectedHMAC = (uid) => crypto.createHmac("sha256", demoSecret).update(uid).digest("base64");

// The app's Firebase set-up, as an app's entry module does it, first.
const init = `import { initializeApp } from "firebase/app";
import { getAuth, connectAuthEmulator } from "firebase/auth";
const params = new URLSearchParams(location.search);
initializeApp({ apiKey: "demo-api-key", projectId: params.get("project") });
connectAuthEmulator(getAuth(), params.get("authEmulator"), { disableWarnings: true });
`;

// The page for the callable and fetch snippets, each a module of the app.
const snippetsMain = `import "./init.js";
import { getAuth, signInAnonymously } from "firebase/auth";
import * as callable from "./callable.js";
import * as rest from "./fetch.js";
const attempt = (f) => f().then((hmac) => ({ hmac }), (err) => ({ code: err.code, message: err.message }));
window.snippets = {
  callable: () => attempt(callable.proficientHmac),
  fetch: () => attempt(rest.proficientHmac),
  signIn: async () => (await signInAnonymously(getAuth())).user.uid,
};
document.body.dataset.ready = "true";
`;

// A stand-in for @proficient/react's InteractionView that keeps the HMAC the way its useApi hook
// does: userHmac is asked once, when the view mounts, and kept even if userExternalId changes.
const proficientStandIn = `import { useEffect, useState } from "react";
export function InteractionView({ apiKey, agentId, userExternalId, userHmac }) {
  const [hmac, setHmac] = useState("");
  useEffect(() => { userHmac().then(setHmac, (err) => setHmac("error: " + err.message)); }, []);
  return <output id="view" data-api-key={String(apiKey)} data-agent={agentId} data-uid={userExternalId} data-hmac={hmac} />;
}
`;

// The React app around the README's component, with sign-in controls for the test.
const reactMain = `import "./init.js";
import { createRoot } from "react-dom/client";
import { getAuth, signInAnonymously, createUserWithEmailAndPassword, signOut } from "firebase/auth";
import Agent from "./Agent.jsx";
createRoot(document.getElementById("root")).render(<Agent agentId="ag_test" />);
window.auth = {
  anonymous: async () => (await signInAnonymously(getAuth())).user.uid,
  create: async (email) => (await createUserWithEmailAndPassword(getAuth(), email, "correct-horse")).user.uid,
  signOut: () => signOut(getAuth()),
};
document.body.dataset.ready = "true";
`;

const page = (script) => `<!doctype html><html><body><div id="root"></div><script type="module" src="${script}"></script></body></html>`;

let fn, site, chromium, browser;
before(async () => {
  fn = await startFunction();
  site = await startViteDevServer({
    functionURL: fn.url,
    files: {
      ".env": "VITE_PROFICIENT_API_KEY=pk_test_from_vite_env\n",
      "init.js": init,
      "index.html": page("/main.js"),
      "main.js": snippetsMain,
      "callable.js": await snippet("**Firebase web SDK, callable protocol**", "js"),
      "fetch.js": await snippet("**Plain `fetch`**", "js"),
      "react.html": page("/react-main.jsx"),
      "react-main.jsx": reactMain,
      "Agent.jsx": await snippet("**Proficient's React SDK**", "jsx"),
      "proficientHmac.js": await snippet("**Firebase web SDK, callable protocol**", "js"),
      "proficient-react.jsx": proficientStandIn,
    },
    alias: { "@proficient/react": "proficient-react.jsx" },
  });
  chromium = await launchChromium();
  browser = chromium.browser;
});
after(async () => {
  await chromium?.close();
  await site?.close();
  await fn?.stop();
});

async function open(t, page) {
  const context = await browser.createBrowserContext();
  t.after(() => context.close());
  const tab = await context.newPage();
  const failures = [];
  tab.on("pageerror", (err) => failures.push(err.message));
  await tab.goto(`${site.url}${page}?${new URLSearchParams({ authEmulator: `http://${emulatorHost}`, project })}`);
  await tab.waitForSelector("body[data-ready=true]", { timeout: 15000 });
  return { tab, failures };
}

test("the callable and fetch snippets, as written: signed out they say so, signed in they give the HMAC", async (t) => {
  const { tab, failures } = await open(t, "index.html");
  const signedOut = await tab.evaluate(async () => [await snippets.callable(), await snippets.fetch()]);
  assert.equal(signedOut[0].code, "functions/unauthenticated");
  assert.match(signedOut[1].message, /^Sign in first/);
  const uid = await tab.evaluate(() => snippets.signIn());
  const signedIn = await tab.evaluate(async () => [await snippets.callable(), await snippets.fetch()]);
  assert.deepEqual(signedIn, [{ hmac: expectedHMAC(uid) }, { hmac: expectedHMAC(uid) }]);
  assert.deepEqual(failures, []);
});

test("the React snippet, as written, in a React app: each user's view gets that user's HMAC", async (t) => {
  const { tab, failures } = await open(t, "react.html");
  // Signed out (and while the saved sign-in is restored): no view, and no crash.
  assert.equal(await tab.$("#view"), null);
  const shows = async (uid) => {
    await tab.waitForSelector(`#view[data-uid="${uid}"]:not([data-hmac=""])`, { timeout: 15000 });
    return tab.$eval("#view", (el) => ({ ...el.dataset }));
  };
  const first = await tab.evaluate(() => auth.anonymous());
  assert.deepEqual(await shows(first), { apiKey: "pk_test_from_vite_env", agent: "ag_test", uid: first, hmac: expectedHMAC(first) });
  const second = await tab.evaluate((email) => auth.create(email), `react-${Date.now()}@example.com`);
  assert.notEqual(second, first);
  const view = await shows(second);
  assert.equal(view.hmac, expectedHMAC(second), "after the switch the view holds the new user's HMAC, not the last one's");
  await tab.evaluate(() => auth.signOut());
  await tab.waitForFunction(() => !document.getElementById("view"), { timeout: 15000 });
  assert.deepEqual(failures, []);
});
