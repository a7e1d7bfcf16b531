// Conformance with the reference implementation of the callable protocol: every request below
// goes to the Go function and to firebase-functions' own onCall with the same logic
// (e2e/reference), served by the Functions emulator against the same Auth emulator, and the
// answers are compared: HTTP status, canonical error status, the result's values, streaming
// framing and CORS decisions (messages may differ). A difference is allowed only where
// `deliberate` below lists it with its reason (docs/conformance.md's list), and there the function's
// answer must be the one the row records (`ours`); any other fails the suite.
import { test, before, after } from "node:test";
import crypto from "node:crypto";
import fs from "node:fs";
import http from "node:http";
import net from "node:net";
import zlib from "node:zlib";
import assert from "node:assert/strict";
import { isDeepStrictEqual } from "node:util";
import { initializeApp, deleteApp } from "firebase/app";
import { getAuth, connectAuthEmulator, signInAnonymously } from "firebase/auth";
import { getFunctions, httpsCallableFromURL } from "firebase/functions";
import { demoSecret, startFunction } from "./function.mjs";
import { emulatorHost, project, signUpAnonymously, userWithToken } from "./emulator.mjs";

const referenceURL = `http://127.0.0.1:5001/${project}/us-central1/proficientHmac`;
const origin = "https://app.example.com";

// deliberate are the differences from onCall that the function makes on purpose, by key, as
// docs/conformance.md lists them: one list, for people and for this suite.
export const deliberate = Object.fromEntries(
  fs.readFileSync(new URL("../docs/conformance.md", import.meta.url), "utf8")
    .split("\n").map((line) => line.match(/^\| `(\w+)` \| (.+) \|$/)).filter(Boolean)
    .map(([, key, reason]) => [key, reason]),
);

let fn;
const tokens = {};
let same = 0;
let differ = 0;
before(async () => {
  fn = await startFunction();
  for (const name of ["a", "b"]) {
    const { idToken, localId } = await signUpAnonymously();
    tokens[name] = { idToken, uid: localId };
  }
  // Real users' data, in real tokens from the Auth emulator: a display name cut inside an emoji
  // (JSON.stringify keeps the lone surrogate, escaped), and custom claims as apps set them.
  tokens.cutName = await userWithToken({ displayName: "Ann \ud83d" });
  tokens.cutClaim = await userWithToken({ claims: { nickname: "\ud83d", role: "editor" } });
  tokens.numericUid = await userWithToken({ claims: { uid: 12345 } });
  tokens.stringUid = await userWithToken({ claims: { uid: "legacy-12345" } });
  await waitForReference();
});
after(async () => {
  await fn?.stop();
  console.log(`${same} same, ${differ} differ (deliberate)`);
});

// The reference function loads after the emulator says it is ready: wait until it answers.
async function waitForReference() {
  for (let attempt = 0; attempt < 300; attempt++) {
    try {
      const res = await fetch(referenceURL, { method: "POST", headers: { "Content-Type": "application/json" }, body: '{"data":null}' });
      if (res.status === 401) return;
    } catch {
      // not up yet
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`the reference onCall at ${referenceURL} never answered`);
}

// An unsigned token with chosen claims: both Admin SDKs skip the signature against the emulator
// and check the claims.
function craftedToken(claims) {
  const enc = (o) => Buffer.from(JSON.stringify(o)).toString("base64url");
  const now = Math.floor(Date.now() / 1000);
  return `${enc({ alg: "none", typ: "JWT" })}.${enc({
    iss: `https://securetoken.google.com/${project}`, aud: project, sub: tokens.a.uid, user_id: tokens.a.uid,
    iat: now - 10, exp: now + 3600, auth_time: now - 10, firebase: { sign_in_provider: "anonymous", identities: {} },
    ...claims,
  })}.`;
}

// hmacOf is the answer for uid, computed with Node's crypto and the secret both sides use.
const hmacOf = (uid) => ({ hmac: crypto.createHmac("sha256", demoSecret).update(uid).digest("base64"), userExternalId: uid });

// uidOf is the UID in the ID token a case sends ("" without one); the token is not verified.
function uidOf(c) {
  const [scheme, token] = (c.auth?.() ?? "").split(" ");
  if (scheme.toLowerCase() !== "bearer" || !token) return "";
  return JSON.parse(Buffer.from(token.split(".")[1], "base64url")).user_id;
}

const json = "application/json";
const bigPadding = "x".repeat(70 * 1024);

// The mobile SDKs' wrapper for a 64-bit integer, which JSON numbers cannot hold exactly.
const int64 = (value, type = "Int64Value") => JSON.stringify({ "@type": `type.googleapis.com/google.protobuf.${type}`, value });
// Headers the Android SDK's OkHttp and the iOS SDK's fetcher add beside the token; the
// instance ID is the app's FCM registration token.
const android = {
  "Firebase-Instance-ID-Token": "dQw4w9WgXcQ:APA91bHPRgkF3JUikC4ENAHEeMrd41Zxv3hVZjC9KtT8OvPVGJ-hQMRKRrZuJAEcl7B338qju59zJMjw2DELjzEvxwYv7hH5Ynpc1ODQ0aT4U4OFEeBHR6nRYNZvDZoDkdiJFpXCcN3E",
  "X-Firebase-AppCheck": "not-a-real-app-check-token",
  "User-Agent": "okhttp/3.12.13",
  "Accept-Encoding": "gzip",
  Connection: "Keep-Alive",
};
const ios = {
  "Firebase-Instance-ID-Token": "fGz1e2Tg0kR4mY7pQm9sHn:APA91bF0example",
  "X-Firebase-AppCheck": "not-a-real-app-check-token",
  "User-Agent": "Proficient%20Demo/42 CFNetwork/1568.200.51 Darwin/24.1.0",
  Accept: "*/*",
  "Accept-Language": "en-GB,en;q=0.9",
  "Accept-Encoding": "gzip, deflate, br",
};

// cases: name, the deliberate difference it shows (or none), and the request.
function cases() {
  const a = () => `Bearer ${tokens.a.idToken}`;
  const call = (name, body, extra = {}) => ({ name, method: "POST", contentType: json, body, auth: a, ...extra });
  // What the function answers where onCall answers otherwise: a deliberate row's `ours`.
  const refused = (status, error) => ({ status, cors: true, shape: "error", error });
  const invalid = refused(400, "INVALID_ARGUMENT");
  const streamed = (error) => ({ status: 200, cors: true, events: 1, shape: "error", error });
  const result = (user = tokens.a) => ({ status: 200, cors: true, shape: "result", result: hmacOf(user.uid) });
  const rest = (user = tokens.a) => ({ status: 200, cors: true, shape: "rest", ...hmacOf(user.uid) });
  // The Functions Framework's ServeMux answers an unclean path itself: 307, empty, no CORS.
  const redirected = { status: 307, cors: false, shape: "not JSON" };
  const list = [
    // The callable shapes, as the SDKs send them.
    call("callable, null data", '{"data":null}'),
    call("callable, empty data", '{"data":{}}'),
    call("callable, own ID", () => JSON.stringify({ data: { userExternalId: tokens.a.uid } })),
    call("callable, own ID and other members", () => JSON.stringify({ data: { userExternalId: tokens.a.uid, agentId: "ag_1", n: [1, 2] } })),
    call("callable, null ID", '{"data":{"userExternalId":null}}'),
    call("callable, another user's ID", () => JSON.stringify({ data: { userExternalId: tokens.b.uid } })),
    call("callable, empty-string ID", '{"data":{"userExternalId":""}}'),
    call("callable, number ID", '{"data":{"userExternalId":42}}'),
    call("callable, boolean ID", '{"data":{"userExternalId":true}}'),
    call("callable, object ID", '{"data":{"userExternalId":{"uid":"x"}}}'),
    call("callable, string data", '{"data":"x"}'),
    call("callable, number data", '{"data":7}'),
    call("callable, array data", '{"data":[1]}'),
    call("callable, extra top-level member", '{"data":null,"x":1}'),
    call("callable, extra userExternalId beside data", () => JSON.stringify({ data: null, userExternalId: tokens.a.uid })),
    // JSON edge cases.
    call("escaped key", '{"d\\u0061ta":{"userExternal\\u0049d":null}}'),
    call("escaped key, another user's ID", () => `{"d\\u0061ta":{"userExternal\\u0049d":"${tokens.b.uid}"}}`),
    call("case variant Data", '{"Data":null}', { differs: "rest", ours: rest() }),
    call("case variant of the ID is just another member", () => JSON.stringify({ data: { UserExternalId: tokens.b.uid } })),
    call("white space around", ' \n\t{ "data" : null } \n'),
    call("duplicate data", '{"data":null,"data":{}}', { differs: "strict", ours: invalid }),
    call("duplicate ID, own last", () => `{"data":{"userExternalId":"${tokens.b.uid}","userExternalId":"${tokens.a.uid}"}}`, { differs: "strict", ours: invalid }),
    call("duplicate ID, own first", () => `{"data":{"userExternalId":"${tokens.a.uid}","userExternalId":"${tokens.b.uid}"}}`, { differs: "strict", ours: invalid }),
    call("duplicate deeper down", '{"data":{"x":{"a":1,"a":2}}}', { differs: "strict", ours: invalid }),
    call("invalid UTF-8", () => Buffer.concat([Buffer.from('{"data":{"x":"'), Buffer.from([0xff]), Buffer.from('"}}')]), { differs: "strict", ours: invalid }),
    call("malformed JSON", '{"data":', { differs: "bodyparser", ours: invalid }),
    call("trailing garbage", '{"data":null} x', { differs: "bodyparser", ours: invalid }),
    call("JSON array", '[{"data":null}]'),
    call("JSON null", "null", { differs: "bodyparser", ours: invalid }),
    call("JSON string", '"data"', { differs: "bodyparser", ours: invalid }),
    call("empty object", "{}", { differs: "rest", ours: rest() }),
    call("REST body, own ID", () => JSON.stringify({ userExternalId: tokens.a.uid }), { differs: "rest", ours: rest() }),
    call("no body", undefined, { contentType: undefined, differs: "rest", ours: rest() }),
    // Content types.
    call("charset in the content type", '{"data":null}', { contentType: "application/json; charset=utf-8" }),
    call("upper-case content type", '{"data":null}', { contentType: "Application/JSON" }),
    call("text/plain", '{"data":null}', { contentType: "text/plain" }),
    call("form content type", '{"data":null}', { contentType: "application/x-www-form-urlencoded" }),
    call("no content type", '{"data":null}', { contentType: undefined }),
    // Sizes.
    call("body of 70 KiB", () => JSON.stringify({ data: { padding: bigPadding } }), { differs: "size", ours: refused(413, "INVALID_ARGUMENT") }),
    call("body of 60 KiB", () => JSON.stringify({ data: { padding: bigPadding.slice(0, 60 * 1024) } })),
    // Tokens.
    call("signed out", '{"data":null}', { auth: undefined }),
    call("garbage token", '{"data":null}', { auth: () => "Bearer not.a.jwt" }),
    call("another user's token", '{"data":null}', { auth: () => `Bearer ${tokens.b.idToken}` }),
    call("lower-case scheme", '{"data":null}', { auth: () => `bearer ${tokens.a.idToken}` }),
    call("Basic scheme", '{"data":null}', { auth: () => `Basic ${tokens.a.idToken}` }),
    call("expired token", '{"data":null}', { auth: () => `Bearer ${craftedToken({ iat: Math.floor(Date.now() / 1000) - 7200, exp: Math.floor(Date.now() / 1000) - 3600 })}` }),
    // Within the Go Admin SDK's 300 s of clock skew, which onCall does not allow.
    call("token expired 10 s ago", '{"data":null}', { auth: () => `Bearer ${craftedToken({ iat: Math.floor(Date.now() / 1000) - 3610, exp: Math.floor(Date.now() / 1000) - 10 })}` }),
    call("stream, token expired 10 s ago", '{"data":null}', { accept: "text/event-stream", auth: () => `Bearer ${craftedToken({ iat: Math.floor(Date.now() / 1000) - 3610, exp: Math.floor(Date.now() / 1000) - 10 })}` }),
    call("token for another project", '{"data":null}', { auth: () => `Bearer ${craftedToken({ aud: "other-project", iss: "https://securetoken.google.com/other-project" })}` }),
    call("token without a subject", '{"data":null}', { auth: () => `Bearer ${craftedToken({ sub: "" })}` }),
    // A session cookie (createSessionCookie's issuer) sent as the ID token: onCall refuses it too.
    call("session cookie", '{"data":null}', { auth: () => `Bearer ${craftedToken({ iss: `https://session.firebase.google.com/${project}` })}` }),
    // Real users' tokens (see before()): a display name or custom claim cut inside an emoji is
    // the user's, served; a custom claim uid holding a number is one the Go Admin SDK cannot
    // decode into its own uid claim (named in the 401).
    call("a display name cut inside an emoji", '{"data":null}', { auth: () => `Bearer ${tokens.cutName.idToken}` }),
    call("a custom claim cut inside an emoji", '{"data":null}', { auth: () => `Bearer ${tokens.cutClaim.idToken}` }),
    call("a custom claim uid holding a string", '{"data":null}', { auth: () => `Bearer ${tokens.stringUid.idToken}` }),
    call("a custom claim uid holding a number", '{"data":null}', { auth: () => `Bearer ${tokens.numericUid.idToken}`, differs: "claims", ours: refused(401, "UNAUTHENTICATED") }),
    call("two custom claims equal but for case", '{"data":null}', { auth: () => `Bearer ${craftedToken({ role: "admin", Role: "viewer" })}`, differs: "claims", ours: refused(401, "UNAUTHENTICATED") }),
    // Methods.
    { name: "GET, no body", method: "GET", auth: a, differs: "get", ours: rest() },
    { name: "GET with a callable body", method: "GET", contentType: json, body: '{"data":null}', auth: a },
    { name: "PUT", method: "PUT", contentType: json, body: '{"data":null}', auth: a, differs: "method", ours: refused(405, "UNIMPLEMENTED") },
    { name: "DELETE", method: "DELETE", auth: a, differs: "method", ours: refused(405, "UNIMPLEMENTED") },
    { name: "PATCH", method: "PATCH", contentType: json, body: '{"data":null}', auth: a, differs: "method", ours: refused(405, "UNIMPLEMENTED") },
    // Streaming, as .stream() asks for it.
    call("stream, result", '{"data":null}', { accept: "text/event-stream" }),
    call("stream, another user's ID", () => JSON.stringify({ data: { userExternalId: tokens.b.uid } }), { accept: "text/event-stream" }),
    call("stream, signed out", '{"data":null}', { accept: "text/event-stream", auth: undefined }),
    call("stream, garbage token", '{"data":null}', { accept: "text/event-stream", auth: () => "Bearer not.a.jwt" }),
    call("stream, malformed JSON", '{"data":', { accept: "text/event-stream", differs: "bodyparser", ours: streamed("INVALID_ARGUMENT") }),
    call("stream, string data", '{"data":"x"}', { accept: "text/event-stream" }),
    call("stream, extra member", '{"data":null,"x":1}', { accept: "text/event-stream" }),
    call("stream, text/plain", '{"data":null}', { accept: "text/event-stream", contentType: "text/plain" }),
    call("stream Accept among others is not a stream", '{"data":null}', { accept: "text/event-stream, application/json" }),
    call("stream Accept in capitals is not a stream", '{"data":null}', { accept: "Text/Event-Stream" }),
    // Unclean paths (a base URL ending in "/" joined with "/x"): the Functions Framework's
    // ServeMux answers them itself on Cloud Run, with a 307 to the clean path.
    call("a path with //", '{"data":null}', { path: "/api//proficient-hmac", differs: "path", ours: redirected }),
    call("a path with /./", '{"data":null}', { path: "/api/./proficient-hmac", differs: "path", ours: redirected }),
    call("stream at //", '{"data":null}', { path: "//", accept: "text/event-stream", differs: "path", ours: { status: 307, cors: false, events: 0 } }),
    { name: "preflight at //", method: "OPTIONS", origin, path: "//", preflight: { method: "POST", headers: "authorization,content-type" }, differs: "path", ours: { status: 307, cors: false, headersAllowed: false, vary: "" } },
    call("a clean path of its own", '{"data":null}', { path: "/api/proficient-hmac" }),
    // CORS.
    call("no Origin", '{"data":null}', { origin: undefined }),
    call("refusal carries CORS", '{"data":null}', { auth: undefined, origin: "http://localhost:5173" }),
    // Strings as JSON.stringify writes them: a string cut inside an emoji keeps a lone surrogate.
    call("lone surrogate in data (a cut emoji)", '{"data":{"note":"hi \\ud83d"}}'),
    call("lone surrogate as the ID", '{"data":{"userExternalId":"\\ud83d"}}'),
    call("another user's ID cut inside an emoji", () => JSON.stringify({ data: { userExternalId: tokens.b.uid + "\ud83d" } })),
    call("surrogate pair in data", '{"data":{"note":"\\ud83d\\ude00"}}'),
    call("names apart only by lone surrogates", '{"data":{"a\\ud800":1,"a\\udbff":2}}', { differs: "strict", ours: invalid }),
    // Repeated headers, as proxies add them: Node joins them with ", " before onCall reads them.
    call("Accept twice is not a stream", '{"data":null}', { headers: { Accept: ["text/event-stream", "text/event-stream"] } }),
    call("a proxy's second Accept is not a stream", '{"data":null}', { headers: { Accept: ["text/event-stream", "application/json"] } }),
    call("a second Content-Type is not read", '{"data":null}', { headers: { "Content-Type": [json, "text/plain"] }, contentType: undefined }),
    // Content-Type parameters, malformed and not.
    call("content type with an empty parameter list", '{"data":null}', { contentType: "application/json;", differs: "contenttype", ours: result() }),
    call("content type with an empty parameter", '{"data":null}', { contentType: "application/json;;charset=utf-8" }),
    call("content type with a tab before the parameters", '{"data":null}', { contentType: "application/json\t;charset=utf-8", differs: "contenttype", ours: result() }),
    call("content type with a space before the parameters", '{"data":null}', { contentType: "application/json ; charset=utf-8" }),
    call("charset without a value", '{"data":null}', { contentType: "application/json; charset" }),
    call("charset with an empty value", '{"data":null}', { contentType: "application/json; charset=" }),
    call("parameter without a name", '{"data":null}', { contentType: "application/json; =utf-8" }),
    call("quoted charset", '{"data":null}', { contentType: 'application/json; charset="utf-8"' }),
    call("unknown parameter", '{"data":null}', { contentType: "application/json; foo=bar" }),
    call("charset given twice", '{"data":null}', { contentType: "application/json; charset=utf-8; charset=utf-8" }),
    call("charset latin1", '{"data":null}', { contentType: "application/json; charset=latin1", differs: "contenttype", ours: invalid }),
    // An Identity Platform tenant's token for a user of the project. (The Auth emulator makes
    // tenant users, but both Admin SDKs look every token's user up at project level there.)
    call("a tenant's token", '{"data":null}', { auth: () => `Bearer ${craftedToken({ firebase: { sign_in_provider: "anonymous", identities: {}, tenant: "tenant-1" } })}`, differs: "tenant", ours: refused(401, "UNAUTHENTICATED") }),
    // Where onCall misbehaves: its decoder recurses, and it reads __proto__ as the prototype.
    call("data nested 6,000 levels", '{"data":{"x":' + "[".repeat(6000) + "]".repeat(6000) + "}}", { differs: "deep", ours: result() }),
    call("data nested 12,000 levels", '{"data":{"x":' + "[".repeat(12000) + "]".repeat(12000) + "}}", { differs: "deep", ours: invalid }),
    call("data nested 1,000 levels", '{"data":{"x":' + "[".repeat(1000) + "]".repeat(1000) + "}}"),
    call("__proto__ holding another user's ID", () => `{"data":{"__proto__":{"userExternalId":"${tokens.b.uid}"}}}`, { differs: "proto", ours: result() }),
    call("__proto__ holding a number ID", '{"data":{"__proto__":{"userExternalId":1}}}', { differs: "proto", ours: result() }),
    call("__proto__ holding the user's own ID", () => `{"data":{"__proto__":{"userExternalId":"${tokens.a.uid}"}}}`),
    // As the Android SDK builds a call (OkHttp; org.json escapes "/"; a Long is an Int64Value).
    call("Android, a call", () => `{"data":{"userExternalId":"${tokens.a.uid}","page":"a\\/b"}}`, { contentType: "application/json; charset=utf-8", headers: android }),
    call("Android, no argument", '{"data":null}', { contentType: "application/json; charset=utf-8", headers: android }),
    call("Android, a Long in data", () => `{"data":{"userExternalId":"${tokens.a.uid}","n":${int64("9007199254740993")}}}`, { contentType: "application/json; charset=utf-8", headers: android }),
    call("Android, a Long as the argument", `{"data":${int64("5")}}`, { contentType: "application/json; charset=utf-8", headers: android }),
    call("Android, an unsigned Long as the argument", `{"data":${int64("5", "UInt64Value")}}`, { contentType: "application/json; charset=utf-8", headers: android }),
    call("Android, a Long as the ID", `{"data":{"userExternalId":${int64("1")}}}`, { contentType: "application/json; charset=utf-8", headers: android }),
    call("Android, another user's ID", () => `{"data":{"userExternalId":"${tokens.b.uid}"}}`, { contentType: "application/json; charset=utf-8", headers: android }),
    // As the iOS SDK builds a call (GTMSessionFetcher, CFNetwork; JSONSerialization escapes "/").
    call("iOS, a call", () => `{"data":{"userExternalId":"${tokens.a.uid}","page":"a\\/b"}}`, { headers: ios }),
    call("iOS, no argument", '{"data":null}', { headers: ios }),
    call("iOS, an Int64 in data", `{"data":{"n":${int64("-9007199254740993")}}}`, { headers: ios }),
    call("iOS, .stream()", '{"data":null}', { accept: "text/event-stream", headers: ios }),
    call("iOS, signed out", '{"data":null}', { auth: undefined, headers: { ...ios, Authorization: undefined } }),
    // Flutter calls through those SDKs on Android and iOS (the JS SDK on the web): a Dart int
    // over 32 bits crosses the platform channel as a Long.
    call("Flutter on Android, a large Dart int", `{"data":{"count":${int64("4294967296")}}}`, { contentType: "application/json; charset=utf-8", headers: android }),
    // What else apps, proxies and old clients put on a request.
    call("web SDK headers besides the token", '{"data":null}', { headers: { "X-Firebase-GMPID": "1:123:web:abc", "X-Client-Version": "Chrome/JsCore/12.19.0/FirebaseCore-web", "X-Firebase-AppCheck": "not-a-real-app-check-token" } }),
    // As Google's front end and a CDN forward a call; against the emulator, refused (emulator mode
    // answers only this machine: TestEmulatorModeServesLoopbackOnly shows them read only there).
    call("behind proxies", '{"data":null}', { headers: { "X-Forwarded-For": "203.0.113.7, 10.0.0.1", "X-Forwarded-Proto": "https", "X-Forwarded-Host": "app.example.com", Via: "1.1 google, 1.1 varnish", Forwarded: "for=203.0.113.7;proto=https" }, differs: "emulator", ours: refused(403, "PERMISSION_DENIED") }),
    call("behind a local proxy", '{"data":null}', { headers: { "X-Forwarded-For": "127.0.0.1", "X-Forwarded-Proto": "http", "X-Forwarded-Host": "localhost:5173", Via: "1.1 vite" } }),
    call("with cookies", '{"data":null}', { headers: { Cookie: "__session=not-a-token; theme=dark" } }),
    call("Connection: close", '{"data":null}', { headers: { Connection: "close" } }),
    call("chunked body", '{"data":null}', { chunked: true }),
    call("HTTP/1.0", '{"data":null}', { http10: true }),
    call("Content-Encoding identity", '{"data":null}', { headers: { "Content-Encoding": "identity" } }),
    call("gzip body", () => zlib.gzipSync('{"data":null}'), { headers: { "Content-Encoding": "gzip" }, differs: "encoding", ours: invalid }),
    call("plain body labelled gzip", '{"data":null}', { headers: { "Content-Encoding": "gzip" }, differs: "encoding", ours: invalid }),
  ];
  const preflight = (name, requestHeaders, extra = {}) =>
    ({ name, method: "OPTIONS", origin, preflight: { method: "POST", headers: requestHeaders }, ...extra });
  list.push(
    preflight("preflight, what the web SDK sends", "authorization,content-type"),
    preflight("preflight, with App Check", "authorization,content-type,x-firebase-appcheck"),
    preflight("preflight, with the instance ID token", "authorization,content-type,firebase-instance-id-token"),
    preflight("preflight, W3C trace context", "authorization,content-type,traceparent,tracestate"),
    preflight("preflight, Sentry", "authorization,content-type,sentry-trace,baggage"),
    preflight("preflight, streaming", "accept,authorization,content-type"),
    preflight("preflight, no headers asked for", undefined),
    preflight("preflight, Datadog RUM", "authorization,content-type,x-datadog-origin,x-datadog-parent-id,x-datadog-sampling-priority,x-datadog-trace-id"),
    preflight("preflight, New Relic", "authorization,content-type,newrelic,traceparent,tracestate"),
    preflight("preflight, X-Requested-With", "authorization,content-type,x-requested-with"),
    preflight("preflight, names in capitals with spaces", "Authorization, Content-Type, X-Custom-Header"),
    preflight("preflight, empty header list", ""),
    preflight("preflight, repeated request-headers lines", ["authorization,content-type", "x-datadog-trace-id"]),
  );
  return list;
}

// send makes one request and reduces the answer to what is compared.
async function send(url, c) {
  const headers = {};
  if (c.contentType) headers["Content-Type"] = c.contentType;
  if (c.auth) headers.Authorization = c.auth();
  if (c.accept) headers.Accept = c.accept;
  const from = "origin" in c ? c.origin : origin;
  if (from) headers.Origin = from;
  if (c.preflight) {
    headers["Access-Control-Request-Method"] = c.preflight.method;
    if (c.preflight.headers !== undefined) headers["Access-Control-Request-Headers"] = c.preflight.headers;
  }
  for (const [name, value] of Object.entries(c.headers ?? {})) {
    if (value === undefined) delete headers[name];
    else headers[name] = value; // an array: one header line each
  }
  const body = typeof c.body === "function" ? c.body() : c.body;
  // The path as written, after the URL's own (a URL would resolve "./" before it is sent).
  const path = c.path && new URL(url).pathname.replace(/\/$/, "") + c.path;
  const res = await (c.http10 ? requestHTTP10 : request)(url, c.method, headers, body, c.chunked, path);
  const text = res.text;
  const answer = { status: res.status, cors: res.headers["access-control-allow-origin"] !== undefined };
  if (c.preflight) {
    // What a browser checks: every header asked for is allowed; and what a cache keys on.
    const allowed = (res.headers["access-control-allow-headers"] ?? "").toLowerCase().split(/\s*,\s*/);
    const asked = [c.preflight.headers ?? ""].flat().join(",").toLowerCase().split(",").map((h) => h.trim()).filter(Boolean);
    answer.headersAllowed = asked.every((h) => allowed.includes(h));
    answer.vary = (res.headers.vary ?? "").toLowerCase().split(/\s*,\s*/).sort().join(",");
    return answer;
  }
  if (c.accept === "text/event-stream") {
    // The SDK reads only "data: " lines; there must be exactly one, holding the answer.
    const events = text.split("\n").filter((line) => line.startsWith("data: "));
    answer.events = events.length;
    if (events.length === 1) Object.assign(answer, shape(events[0].slice("data: ".length)));
    return answer;
  }
  return Object.assign(answer, shape(text));
}

// request sends one request as given (fetch refuses a GET with a body, which axios sends).
function request(url, method, headers, body, chunked = false, path = undefined) {
  return new Promise((resolve, reject) => {
    const length = body === undefined ? {} : chunked ? { "Transfer-Encoding": "chunked" } : { "Content-Length": Buffer.byteLength(body) };
    const { hostname, port, pathname, search } = new URL(url);
    const options = { hostname, port, path: path ?? pathname + search, method, headers: { ...headers, ...length } };
    const req = http.request(options, (res) => {
      const chunks = [];
      res.on("data", (chunk) => chunks.push(chunk));
      res.on("end", () => resolve({ status: res.statusCode, headers: res.headers, text: Buffer.concat(chunks).toString() }));
    });
    req.on("error", reject);
    req.end(body);
  });
}

// requestHTTP10 sends one HTTP/1.0 request on its own connection and reads the answer until the
// server closes it, as an old client or proxy does.
function requestHTTP10(url, method, headers, body) {
  const { hostname, port, pathname } = new URL(url);
  const lines = [`${method} ${pathname} HTTP/1.0`, `Host: ${hostname}:${port}`,
    ...Object.entries(headers).map(([name, value]) => `${name}: ${value}`),
    ...(body === undefined ? [] : [`Content-Length: ${Buffer.byteLength(body)}`])];
  return new Promise((resolve, reject) => {
    const chunks = [];
    // Written, not ended: the server closes the connection once it has answered, as HTTP/1.0 has it.
    const socket = net.connect(Number(port), hostname, () => socket.write(lines.join("\r\n") + "\r\n\r\n" + (body ?? "")));
    socket.on("data", (chunk) => chunks.push(chunk));
    socket.on("error", reject);
    socket.on("close", () => {
      const raw = Buffer.concat(chunks).toString();
      const [head, ...rest] = raw.split("\r\n\r\n");
      const [statusLine, ...headerLines] = head.split("\r\n");
      const responseHeaders = Object.fromEntries(headerLines.map((line) => {
        const at = line.indexOf(":");
        return [line.slice(0, at).toLowerCase(), line.slice(at + 1).trim()];
      }));
      resolve({ status: Number(statusLine.split(" ")[1]), headers: responseHeaders, text: rest.join("\r\n\r\n") });
    });
  });
}

// shape is what a client takes from a body: a result (its values), an error's canonical status
// (messages may differ), or the REST form's hmac and userExternalId.
function shape(text) {
  let body;
  try {
    body = JSON.parse(text);
  } catch {
    return { shape: "not JSON" };
  }
  if (body?.error) return { shape: "error", error: body.error.status };
  if (body?.result !== undefined) return { shape: "result", result: body.result };
  const keys = Object.keys(body ?? {}).sort().join(",");
  if (keys === "hmac,userExternalId") return { shape: "rest", ...body };
  return { shape: "other", keys };
}

// checkHMAC asserts that an answer holding an HMAC holds the one for the UID of the token sent,
// as Node's crypto computes it.
function checkHMAC(answer, c) {
  const served = { rest: answer, result: answer.result }[answer.shape];
  if (served === undefined) return;
  const { hmac, userExternalId } = served;
  assert.deepEqual({ hmac, userExternalId }, hmacOf(uidOf(c)), "the HMAC is not the signed-in user's");
}

test("conformance with firebase-functions' onCall", async (t) => {
  const cs = cases();
  assert.ok(cs.length >= 120, `${cs.length} cases: want at least 120`);
  for (const c of cs) {
    await t.test(c.name, async () => {
      const [ours, theirs] = [await send(fn.url, c), await send(referenceURL, c)];
      checkHMAC(ours, c);
      if (c.differs) {
        assert.ok(deliberate[c.differs], `unknown deliberate difference ${c.differs}`);
        assert.deepEqual(ours, c.ours, `the function's answer (actual) is not the one this deliberate difference (${c.differs}) records (expected)`);
        assert.ok(!isDeepStrictEqual(ours, theirs), `listed as a deliberate difference (${c.differs}), but both answered ${JSON.stringify(ours)}`);
        differ++;
        return;
      }
      assert.equal(c.ours, undefined, "a row not listed as a difference is compared with onCall, not with an answer of its own");
      assert.deepEqual(ours, theirs, "the function (actual) and onCall (expected) differ, and the difference is not listed");
      same++;
    });
  }
  for (const key of Object.keys(deliberate)) {
    assert.ok(cs.some((c) => c.differs === key), `docs/conformance.md lists the difference ${key}, and no case shows it`);
  }
});

// The same through the Firebase JS SDK, as an app calls it: what each call settles to (the data's
// keys and whether it is the signed-in user's HMAC, or the functions/… error code) must be the
// same from both. A failure to set the call up (signing in) fails the test: it is no answer.
test("conformance through the Firebase JS SDK", async (t) => {
  let apps = 0;
  // outcome runs one scenario against url in a fresh app and reduces what the SDK gave.
  async function outcome(url, scenario) {
    const app = initializeApp({ apiKey: "demo-api-key", projectId: project }, `conformance-${++apps}`);
    try {
      const auth = getAuth(app);
      connectAuthEmulator(auth, `http://${emulatorHost}`, { disableWarnings: true });
      const user = scenario.signedIn ? (await signInAnonymously(auth)).user : null;
      const callable = httpsCallableFromURL(getFunctions(app), url, scenario.options);
      const arg = scenario.arg?.(user);
      return await settle(callable, arg, user, scenario);
    } finally {
      await deleteApp(app);
    }
  }
  // settle makes the call and reduces what it settled to; only the call's own error is an answer.
  async function settle(callable, arg, user, scenario) {
    try {
      let data;
      if (scenario.stream) {
        const { stream, data: settled } = await callable.stream(arg);
        const result = settled.then((value) => ({ value }), (error) => ({ error })); // handled at once
        const chunks = [];
        try {
          for await (const chunk of stream) chunks.push(chunk);
        } catch {
          // the same error settles the data promise
        }
        const { value, error } = await result;
        if (error) throw error;
        if (chunks.length) return { chunks: chunks.length };
        data = value;
      } else {
        ({ data } = await callable(arg));
      }
      const forTheUser = user !== null && isDeepStrictEqual(data, hmacOf(user.uid));
      return { keys: Object.keys(data ?? {}).sort().join(","), forTheUser };
    } catch (err) {
      if (!String(err.code).startsWith("functions/")) throw err;
      return { code: err.code };
    }
  }
  const scenarios = [
    { name: "call, signed in", signedIn: true },
    { name: "call, own ID", signedIn: true, arg: (u) => ({ userExternalId: u.uid }) },
    { name: "call, another user's ID", signedIn: true, arg: () => ({ userExternalId: "someone-else" }) },
    { name: "call, signed out" },
    { name: "call, limitedUseAppCheckTokens", signedIn: true, options: { limitedUseAppCheckTokens: true } },
    { name: ".stream(), signed in", signedIn: true, stream: true },
    { name: ".stream(), another user's ID", signedIn: true, stream: true, arg: () => ({ userExternalId: "someone-else" }) },
    { name: ".stream(), signed out", stream: true },
  ];
  for (const scenario of scenarios) {
    await t.test(scenario.name, async () => {
      const [ours, theirs] = [await outcome(fn.url, scenario), await outcome(referenceURL, scenario)];
      assert.deepEqual(ours, theirs, "the function (actual) and onCall (expected) settle differently");
      assert.ok(ours.code !== undefined || ours.chunks !== undefined || ours.forTheUser, `settled to data that is not the user's HMAC: ${JSON.stringify(ours)}`);
      same++;
    });
  }
});
