// The real Firebase JS SDK (12.19.0) against the function binary and the Auth emulator: what a
// web or Node client does, checked against Node's own HMAC.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import crypto from "node:crypto";
import http from "node:http";
import { initializeApp, deleteApp } from "firebase/app";
import { getAuth, connectAuthEmulator, signInAnonymously, signInWithEmailAndPassword } from "firebase/auth";
import { getFunctions, httpsCallableFromURL } from "firebase/functions";
import { startFunction, demoSecret } from "./function.mjs";
import { emulatorHost, project, createUser, disableUser } from "./emulator.mjs";

const issued = new Set(); // every HMAC the tests expected, to check none reached the logs
function expectedHMAC(uid) {
  const hmac = crypto.createHmac("sha256", demoSecret).update(uid).digest("base64");
  issued.add(hmac);
  return hmac;
}

let fn;
before(async () => (fn = await startFunction()));
after(() => fn?.stop());

let apps = 0;
// client is a fresh Firebase app with its own (signed-out) auth state, and the callable.
async function client(t) {
  const app = initializeApp({ apiKey: "demo-api-key", projectId: project }, `client-${++apps}`);
  t.after(() => deleteApp(app));
  const auth = getAuth(app);
  connectAuthEmulator(auth, `http://${emulatorHost}`, { disableWarnings: true });
  return { auth, getHmac: httpsCallableFromURL(getFunctions(app), fn.url) };
}

test("callable without userExternalId gives the signed-in user's HMAC", async (t) => {
  const { auth, getHmac } = await client(t);
  const { user } = await signInAnonymously(auth);
  const { data } = await getHmac();
  assert.deepEqual(data, { hmac: expectedHMAC(user.uid), userExternalId: user.uid });
});

test("callable with the user's own userExternalId", async (t) => {
  const { auth, getHmac } = await client(t);
  const { user } = await signInAnonymously(auth);
  const { data } = await getHmac({ userExternalId: user.uid });
  assert.deepEqual(data, { hmac: expectedHMAC(user.uid), userExternalId: user.uid });
});

test("callable with another user's ID is functions/permission-denied", async (t) => {
  const { auth, getHmac } = await client(t);
  await signInAnonymously(auth);
  await assert.rejects(getHmac({ userExternalId: "someone-else" }), (err) => {
    assert.equal(err.code, "functions/permission-denied");
    assert.match(err.message, /signed-in user's UID/);
    return true;
  });
});

test("callable signed out is functions/unauthenticated", async (t) => {
  const { getHmac } = await client(t);
  await assert.rejects(getHmac(), { code: "functions/unauthenticated" });
});

// .stream() sends Accept: text/event-stream and reads only "data: " lines: the answer must be
// one event, or the stream ends empty and its data promise never settles.
test(".stream() settles with the signed-in user's HMAC", async (t) => {
  const { auth, getHmac } = await client(t);
  const { user } = await signInAnonymously(auth);
  const { stream, data } = await getHmac.stream();
  const chunks = [];
  for await (const chunk of stream) chunks.push(chunk);
  assert.deepEqual(chunks, []); // no partial messages: the result comes whole
  assert.deepEqual(await data, { hmac: expectedHMAC(user.uid), userExternalId: user.uid });
});

test(".stream() with another user's ID rejects as functions/permission-denied", async (t) => {
  const { auth, getHmac } = await client(t);
  await signInAnonymously(auth);
  const { data } = await getHmac.stream({ userExternalId: "someone-else" });
  await assert.rejects(data, { code: "functions/permission-denied", message: /signed-in user's UID/ });
});

test(".stream() signed out rejects as functions/unauthenticated", async (t) => {
  const { getHmac } = await client(t);
  const { data } = await getHmac.stream();
  await assert.rejects(data, { code: "functions/unauthenticated" });
});

test("a disabled user is refused", async (t) => {
  const { auth, getHmac } = await client(t);
  const email = `disabled-${Date.now()}@example.com`;
  await createUser({ uid: `disabled-${Date.now()}`, email, password: "correct-horse" });
  const { user } = await signInWithEmailAndPassword(auth, email, "correct-horse");
  assert.equal((await getHmac()).data.userExternalId, user.uid);
  await disableUser(user.uid);
  await assert.rejects(getHmac(), { code: "functions/permission-denied", message: /^This user account is disabled\./ });
});

test("a UTF-8 custom UID gets the HMAC of its UTF-8 bytes", async (t) => {
  const { auth, getHmac } = await client(t);
  const uid = `ユーザー🔑-ñ-${Date.now()}`;
  const email = `utf8-${Date.now()}@example.com`;
  await createUser({ uid, email, password: "correct-horse" });
  const { user } = await signInWithEmailAndPassword(auth, email, "correct-horse");
  assert.equal(user.uid, uid);
  const { data } = await getHmac(null);
  assert.deepEqual(data, { hmac: expectedHMAC(uid), userExternalId: uid });
});

test("plain fetch, shaped like Proficient's example client (POST)", async (t) => {
  const { auth } = await client(t);
  const { user } = await signInAnonymously(auth);
  const res = await fetch(fn.url + "hmac", {
    method: "POST",
    headers: { "Content-Type": "application/json", Authorization: `Bearer ${await user.getIdToken()}` },
    body: JSON.stringify({ userExternalId: user.uid }),
  });
  assert.equal(res.status, 200);
  assert.equal(res.headers.get("cache-control"), "no-store");
  assert.deepEqual(await res.json(), { hmac: expectedHMAC(user.uid), userExternalId: user.uid });
});

test("GET with a JSON body, as axios sends Proficient's example request", async (t) => {
  const { auth } = await client(t);
  const { user } = await signInAnonymously(auth);
  const body = JSON.stringify({ userExternalId: user.uid });
  const token = await user.getIdToken();
  // fetch() refuses a GET body; Node's http does what axios does.
  const answer = await new Promise((resolve, reject) => {
    const req = http.request(fn.url + "hmac", {
      method: "GET",
      headers: { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(body), Authorization: `Bearer ${token}` },
    }, (res) => {
      let text = "";
      res.setEncoding("utf8").on("data", (c) => (text += c)).on("end", () => resolve({ status: res.statusCode, json: JSON.parse(text) }));
    });
    req.on("error", reject);
    req.end(body);
  });
  assert.deepEqual(answer, { status: 200, json: { hmac: expectedHMAC(user.uid), userExternalId: user.uid } });
});

test("plain fetch without a token is a 401 in the error shape", async () => {
  const res = await fetch(fn.url, { method: "POST", headers: { Origin: "https://app.example.com" } });
  assert.equal(res.status, 401);
  assert.equal(res.headers.get("access-control-allow-origin"), "https://app.example.com");
  assert.equal(res.headers.get("www-authenticate"), "Bearer");
  assert.equal((await res.json()).error.status, "UNAUTHENTICATED");
});

test("the function logged every request without tokens or HMACs", async () => {
  await fn.stop(); // SIGTERM flushes the batched log lines
  const lines = fn.logs().split("\n").filter((l) => l.startsWith("{"));
  assert.ok(lines.length >= 9, `got ${lines.length} log lines`);
  for (const line of lines) {
    const entry = JSON.parse(line);
    assert.ok(entry.severity && entry.message, line);
    assert.doesNotMatch(line, /eyJ|hsec_/, "a token or the secret in the log");
    for (const hmac of issued) assert.ok(!line.includes(hmac), "an HMAC in the log");
  }
});
