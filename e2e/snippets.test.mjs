// The README's "Call it from your app" snippets, run as written: taken from README.md itself (so
// the text and the test cannot drift apart), the callable and fetch snippets in a page of their
// own in Chromium, the React snippet bundled with esbuild into a real React app. The pages are
// served with /api/proficient-hmac forwarded to the function, as the Hosting rewrite does.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import crypto from "node:crypto";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import * as esbuild from "esbuild";
import { launchChromium } from "./chromium.mjs";
import { startFunction, demoSecret } from "./function.mjs";
import { startStaticServer, localSDK, sdkVersion } from "./static-server.mjs";
import { emulatorHost, project } from "./emulator.mjs";

const here = import.meta.dirname;
const expectedHMAC = (uid) => crypto.createHmac("sha256", demoSecret).update(uid).digest("base64");

// snippet is the code block of the given language that follows marker in the README.
async function snippet(marker, lang) {
  const readme = await fs.readFile(path.join(here, "..", "README.md"), "utf8");
  const from = readme.indexOf(marker);
  assert.ok(from >= 0, `README.md has no ${marker}`);
  const block = readme.slice(from).match(new RegExp("```" + lang + "\\n([\\s\\S]*?)```"));
  assert.ok(block, `no ${lang} block after ${marker}`);
  return block[1];
}

const importMap = `<script type="importmap">${JSON.stringify({
  imports: {
    "firebase/app": `${localSDK}firebase-app.js`,
    "firebase/auth": `${localSDK}firebase-auth.js`,
    "firebase/functions": `${localSDK}firebase-functions.js`,
    [`https://www.gstatic.com/firebasejs/${sdkVersion}/`]: localSDK,
  },
})}</script>`;

// The page for the callable and fetch snippets: the app initialised as an app would, once, then
// each snippet imported as a module of its own.
const snippetsPage = `<!doctype html><html><head>${importMap}</head><body><script type="module">
import { initializeApp } from "firebase/app";
import { getAuth, connectAuthEmulator, signInAnonymously, signOut } from "firebase/auth";
const params = new URLSearchParams(location.search);
initializeApp({ apiKey: "demo-api-key", projectId: params.get("project") });
connectAuthEmulator(getAuth(), params.get("authEmulator"), { disableWarnings: true });
const attempt = (f) => f().then((hmac) => ({ hmac }), (err) => ({ code: err.code, message: err.message }));
const callable = await import("/snippets/callable.js");
const rest = await import("/snippets/fetch.js");
window.snippets = {
  callable: () => attempt(callable.proficientHmac),
  fetch: () => attempt(rest.proficientHmac),
  signIn: async () => (await signInAnonymously(getAuth())).user.uid,
};
document.body.dataset.ready = "true";
</script></body></html>`;

// A stand-in for @proficient/react's InteractionView that keeps the HMAC the way its useApi hook
// does: userHmac is asked once, when the view mounts, and kept even if userExternalId changes.
const proficientStandIn = `import { useEffect, useState } from "react";
export function InteractionView({ apiKey, agentId, userExternalId, userHmac }) {
  const [hmac, setHmac] = useState("");
  useEffect(() => { userHmac().then(setHmac, (err) => setHmac("error: " + err.message)); }, []);
  return <output id="view" data-api-key={String(apiKey)} data-agent={agentId} data-uid={userExternalId} data-hmac={hmac} />;
}
`;

// The React app around the README's component: Firebase initialised first, as an app's entry
// module does, then the component rendered, and sign-in controls for the test.
const reactInit = `import { initializeApp } from "firebase/app";
import { getAuth, connectAuthEmulator } from "firebase/auth";
const params = new URLSearchParams(location.search);
initializeApp({ apiKey: "demo-api-key", projectId: params.get("project") });
connectAuthEmulator(getAuth(), params.get("authEmulator"), { disableWarnings: true });
`;
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

async function bundleReactApp() {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), "snippet-react-"));
  try {
    await fs.writeFile(path.join(dir, "Agent.jsx"), await snippet("**Proficient's React SDK**", "jsx"));
    await fs.writeFile(path.join(dir, "proficientHmac.js"), await snippet("**Firebase web SDK, callable protocol**", "js"));
    await fs.writeFile(path.join(dir, "proficient-react.jsx"), proficientStandIn);
    await fs.writeFile(path.join(dir, "init.js"), reactInit);
    await fs.writeFile(path.join(dir, "main.jsx"), reactMain);
    const result = await esbuild.build({
      entryPoints: [path.join(dir, "main.jsx")], bundle: true, format: "esm", write: false, jsx: "automatic",
      nodePaths: [path.join(here, "node_modules")], alias: { "@proficient/react": path.join(dir, "proficient-react.jsx") },
      define: { "import.meta.env.VITE_PROFICIENT_API_KEY": JSON.stringify("pk_test_from_vite_env"), "process.env.NODE_ENV": '"production"' },
      logLevel: "silent",
    });
    return result.outputFiles[0].text;
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
}

let fn, site, chromium, browser;
before(async () => {
  fn = await startFunction();
  site = await startStaticServer({
    functionURL: fn.url,
    files: {
      "/snippets/index.html": snippetsPage,
      "/snippets/callable.js": await snippet("**Firebase web SDK, callable protocol**", "js"),
      "/snippets/fetch.js": await snippet("**Plain `fetch`**", "js"),
      "/snippets/react.html": `<!doctype html><html><body><div id="root"></div><script type="module" src="/snippets/react.js"></script></body></html>`,
      "/snippets/react.js": await bundleReactApp(),
    },
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
  await tab.goto(`${site.url}snippets/${page}?${new URLSearchParams({ authEmulator: `http://${emulatorHost}`, project })}`);
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
