// docs/nextjs.md, run as written: its three Next.js blocks (lib/firebase.js, the client
// component, next.config.mjs) and the server-side caller, taken from that file, built
// into a minimal App Router app in a new directory and served by a fresh `next dev` (Turbopack),
// so a failure of server rendering on first load would show. Chromium signs in as one user, then
// another; a route handler of the app calls the function with a forwarded ID token and with a
// session cookie.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import crypto from "node:crypto";
import fs from "node:fs/promises";
import http from "node:http";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { launchChromium } from "./chromium.mjs";
import { readmeBlock } from "./readme.mjs";
import { interactionViewSource } from "./proficient-react.mjs";
import { freePort, startFunction, demoSecret } from "./function.mjs";
import { emulatorHost, project, signUpAnonymously, createSessionCookie } from "./emulator.mjs";

const here = import.meta.dirname;
const guide = "docs/nextjs.md"; // the blocks run here, as written
const nextDir = path.join(here, "nextjs"); // its own package: next, react, firebase (make installs it)
const expectedHMAC = (uid) => crypto.createHmac("sha256", demoSecret).update(uid).digest("base64");

// The app around the guide's files: a layout, a page that renders the component, sign-in
// controls for the test, and a route handler that calls the function from the server with what
// it is given: a session cookie, or the ID token the browser sent.
const appFiles = {
  "app/layout.jsx": `export default function RootLayout({ children }) {
  return <html lang="en"><body>{children}</body></html>;
}
`,
  "app/page.jsx": `import ProficientAgent from "./proficient-agent";
import TestControls from "./test-controls";
export default function Page() {
  return <main><ProficientAgent agentId="ag_test" /><TestControls /></main>;
}
`,
  "app/test-controls.jsx": `"use client";
import { useEffect } from "react";
import { signInAnonymously, createUserWithEmailAndPassword, signOut } from "firebase/auth";
import { firebaseAuth } from "../lib/firebase";
export default function TestControls() {
  useEffect(() => {
    window.auth = {
      anonymous: async () => (await signInAnonymously(firebaseAuth())).user.uid,
      create: async (email) => (await createUserWithEmailAndPassword(firebaseAuth(), email, "correct-horse")).user.uid,
      signOut: () => signOut(firebaseAuth()),
    };
    document.body.dataset.ready = "true";
  }, []);
  return null;
}
`,
  "app/api/hmac/route.js": `import { cookies } from "next/headers";
import { proficientHmacFor } from "../../../lib/proficient-hmac-server";
export async function POST(request) {
  const token = (await cookies()).get("session")?.value ?? request.headers.get("authorization")?.replace(/^Bearer /i, "");
  try {
    return Response.json({ hmac: await proficientHmacFor(token) });
  } catch (err) {
    return Response.json({ error: err.message }, { status: 502 });
  }
}
`,
  "node_modules/@proficient/react/package.json": JSON.stringify({ name: "@proficient/react", type: "module", main: "index.js" }),
  "node_modules/@proficient/react/index.js": interactionViewSource,
};

// startNextDev runs `next dev -H 127.0.0.1`, as the guide says, in dir and resolves to { url, output(), stop() } once it says it is
// ready, or rejects if it exits first.
async function startNextDev(dir, env) {
  const port = await freePort();
  const child = spawn(process.execPath, [path.join(nextDir, "node_modules", "next", "dist", "bin", "next"), "dev", "--hostname", "127.0.0.1", "--port", String(port)], {
    cwd: dir,
    env: { ...process.env, NEXT_TELEMETRY_DISABLED: "1", ...env },
    stdio: ["ignore", "pipe", "pipe"],
    detached: true, // its own process group: next dev starts a worker, and stop() ends both
  });
  let output = "";
  const ready = new Promise((resolve, reject) => {
    for (const stream of [child.stdout, child.stderr]) {
      stream.setEncoding("utf8");
      stream.on("data", (chunk) => {
        output += chunk;
        if (/Ready in/.test(output)) resolve();
      });
    }
    child.once("exit", (code) => reject(new Error(`next dev exited (${code}):\n${output}`)));
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

let fn, app, dir, chromium;
before(async () => {
  fn = await startFunction();
  // Inside e2e/nextjs, so that next, react and firebase resolve from its node_modules.
  dir = await fs.mkdtemp(path.join(nextDir, ".run-"));
  const files = {
    ...appFiles,
    "lib/firebase.js": await readmeBlock("**`lib/firebase.js`**", "js", guide),
    "app/proficient-agent.jsx": await readmeBlock("**`app/proficient-agent.jsx`**", "jsx", guide),
    "next.config.mjs": await readmeBlock("**`next.config.mjs`**", "js", guide),
    "lib/proficient-hmac-server.js": await readmeBlock("## Calling from a server", "js", guide),
  };
  for (const [name, text] of Object.entries(files)) {
    await fs.mkdir(path.dirname(path.join(dir, name)), { recursive: true });
    await fs.writeFile(path.join(dir, name), text);
  }
  // Only the values the guide says to set.
  app = await startNextDev(dir, {
    NEXT_PUBLIC_FIREBASE_API_KEY: "demo-api-key",
    NEXT_PUBLIC_FIREBASE_PROJECT_ID: project,
    NEXT_PUBLIC_AUTH_EMULATOR_URL: `http://${emulatorHost}`,
    NEXT_PUBLIC_PROFICIENT_API_KEY: "pk_test_from_next_env",
    PROFICIENT_HMAC_DEV_URL: fn.url,
    PROFICIENT_HMAC_URL: fn.url,
  });
  chromium = await launchChromium();
});
after(async () => {
  await chromium?.close();
  await app?.stop();
  await fn?.stop();
  if (dir) await fs.rm(dir, { recursive: true, force: true });
});

// requestsFor counts the function's log lines for a user's requests.
const requestsFor = (uid) => fn.logs().split("\n").filter((line) => line.includes(`"uid":${JSON.stringify(uid)}`)).length;

test("Next.js: a fresh next dev renders the component on the server, and the browser shows each user's HMAC", async (t) => {
  // The first request of a fresh server is a server rendering: it must not fail for lack of an app.
  const first = await fetch(app.url);
  const html = await first.text();
  assert.equal(first.status, 200, `GET / on a fresh next dev: ${html.slice(0, 2000)}\n${app.output()}`);
  assert.doesNotMatch(app.output(), /No Firebase App/);

  const context = await chromium.browser.createBrowserContext();
  t.after(() => context.close());
  const tab = await context.newPage();
  const failures = [];
  tab.on("pageerror", (err) => failures.push(err.message));
  // Console errors too (React reports rendering failures there), but not the favicon this app lacks.
  tab.on("console", (msg) => msg.type() === "error" && !msg.location()?.url?.endsWith("/favicon.ico") && failures.push(`${msg.text()} (${msg.location()?.url})`));
  await tab.goto(app.url);
  await tab.waitForSelector("body[data-ready=true]", { timeout: 60000 });
  assert.equal(await tab.$("#view"), null, "signed out: no view");

  const shows = async (uid) => {
    await tab.waitForSelector(`#view[data-uid="${uid}"]:not([data-interactions-hmac=""])`, { timeout: 30000 });
    return tab.$eval("#view", (el) => ({ ...el.dataset }));
  };
  const firstUser = await tab.evaluate(() => auth.anonymous());
  assert.deepEqual(await shows(firstUser), {
    apiKey: "pk_test_from_next_env", agent: "ag_test", uid: firstUser, hmac: expectedHMAC(firstUser), interactionsHmac: expectedHMAC(firstUser),
  });
  const secondUser = await tab.evaluate((email) => auth.create(email), `next-${Date.now()}@example.com`);
  assert.notEqual(secondUser, firstUser);
  assert.equal((await shows(secondUser)).hmac, expectedHMAC(secondUser), "after the switch the view holds the new user's HMAC");
  // The view asked twice for each user (and React's development mode doubles effects): one request each.
  assert.deepEqual([requestsFor(firstUser), requestsFor(secondUser)], [1, 1]);
  await tab.evaluate(() => auth.signOut());
  await tab.waitForFunction(() => !document.getElementById("view"), { timeout: 15000 });
  assert.deepEqual(failures, []);
  assert.doesNotMatch(app.output(), /No Firebase App|⨯/);
});

test("Next.js route handler: a forwarded ID token gets the user's HMAC; a session cookie gets a 401 that names it", async () => {
  const user = await signUpAnonymously();
  const withToken = await fetch(new URL("api/hmac", app.url), { method: "POST", headers: { Authorization: `Bearer ${user.idToken}` } });
  assert.deepEqual(await withToken.json(), { hmac: expectedHMAC(user.localId) });
  assert.equal(withToken.status, 200);

  const cookie = await createSessionCookie(user.idToken);
  assert.equal(JSON.parse(Buffer.from(cookie.split(".")[1], "base64url")).iss, `https://session.firebase.google.com/${project}`);
  const withCookie = await fetch(new URL("api/hmac", app.url), { method: "POST", headers: { Cookie: `session=${cookie}` } });
  assert.equal(withCookie.status, 502);
  const { error } = await withCookie.json();
  assert.match(error, /^HTTP 401: This is a Firebase session cookie, not an ID token: send the signed-in user's ID token/);
});

// A network address of this machine, as a peer on the network would reach a dev server that
// listens on every interface (in a network namespace of your own, add one: ip addr add
// 10.99.0.1/32 dev lo).
function networkAddress() {
  const addr = Object.values(os.networkInterfaces()).flat().find((a) => a.family === "IPv4" && !/^(127\.|169\.254\.)/.test(a.address));
  assert.ok(addr, "this machine has no non-loopback IPv4 address; add one (ip addr add 10.99.0.1/32 dev lo)");
  return addr.address;
}

// post sends a callable POST to url with a chosen Host header (fetch would not send one).
const postWithHost = (url, host, idToken) => new Promise((resolve, reject) => {
  const { hostname, port, pathname } = new URL(url);
  const body = '{"data":null}';
  http.request({ hostname, port, path: pathname, method: "POST", headers: { Host: host, "Content-Type": "application/json", "Content-Length": body.length, Authorization: `Bearer ${idToken}` } }, (res) => {
    let text = "";
    res.setEncoding("utf8").on("data", (chunk) => (text += chunk)).on("end", () => resolve({ status: res.statusCode, text }));
  }).on("error", reject).end(body);
});

test("Next.js rewrite against the emulator: only this machine gets an HMAC through it", async () => {
  const { idToken, localId } = await signUpAnonymously();
  const api = new URL("api/proficient-hmac", app.url).href;
  const port = new URL(app.url).port;
  const local = await postWithHost(api, `localhost:${port}`, idToken);
  assert.equal(local.status, 200, local.text);
  assert.equal(JSON.parse(local.text).result.hmac, expectedHMAC(localId));
  // What the rewrite forwards for a page that rebinds its name to 127.0.0.1, and for a browser
  // on the network (its Host is this machine's network address): Next.js puts that Host in
  // X-Forwarded-Host, which the function refuses.
  for (const host of [`attacker.example:${port}`, `${networkAddress()}:${port}`]) {
    const refused = await postWithHost(api, host, idToken);
    assert.equal(refused.status, 403, `Host ${host}: ${refused.text}`);
    assert.match(refused.text, /"PERMISSION_DENIED".*X-Forwarded-Host/);
    assert.doesNotMatch(refused.text, /hmac/);
  }
  // Bound to loopback as the guide says, next dev takes no connection from the network at all.
  await assert.rejects(new Promise((resolve, reject) => {
    const socket = net.connect(Number(port), networkAddress(), () => { socket.destroy(); resolve(); }).on("error", reject);
  }), /ECONNREFUSED/);
});
