// make dev: under `firebase emulators:exec --only auth`, start the function against the emulator
// and the demo page on another origin, print where they are and a curl to try, and stop them all
// on Ctrl-C (the emulator stops when this script ends).
import { readFile, watch } from "node:fs/promises";
import path from "node:path";
import { startFunction, demoSecret, runnerBinary } from "./function.mjs";
import { startStaticServer } from "./static-server.mjs";
import { emulatorHost, project, signUpAnonymously } from "./emulator.mjs";

// make dev builds the function beside the npm install and the emulator's start, and writes the
// build's exit status to FUNCTION_BUILD_STATUS when it ends: wait for it.
const buildStatus = process.env.FUNCTION_BUILD_STATUS;
if (buildStatus) {
  const stop = new AbortController();
  const changes = watch(path.dirname(buildStatus), { signal: stop.signal });
  let status = null;
  for (let first = true; ; first = false) {
    const change = changes.next().catch(() => {}); // watching from here, before the read below
    status = await readFile(buildStatus, "utf8").catch(() => null);
    if (status !== null) break;
    if (first) console.error("proficient-hmac: waiting for the Go build of the function…");
    await change;
  }
  stop.abort();
  if (status.trim() !== "0") {
    console.error("proficient-hmac: the Go build of the function failed (its errors are above); make dev stops.");
    process.exit(1);
  }
}

// Emulator mode's own default for CORS: pages served from this machine only (the demo page,
// a local dev server), not any site the developer happens to visit.
// The local runner: it answers as the deployed function does, and listens on loopback only.
const fn = await startFunction({ port: Number(process.env.PORT ?? 8080), env: { CORS_ALLOWED_ORIGINS: "" }, output: process.stderr, binary: runnerBinary });
// The page calls /api/proficient-hmac on its own origin, forwarded to the function as the
// Hosting rewrite does, so it follows PORT.
const site = await startStaticServer({ port: Number(process.env.PAGE_PORT ?? 5002), functionURL: fn.url });
const { idToken } = await signUpAnonymously();
const curl = `curl -s -X POST ${fn.url} -H 'Authorization: Bearer ${idToken}'`;
const answer = await (await fetch(fn.url, { method: "POST", headers: { Authorization: `Bearer ${idToken}` } })).text();

console.log(`
proficient-hmac is running against the Firebase Auth emulator (project ${project}, secret ${demoSecret}).

  Demo page       ${site.url}
  Function        ${fn.url}
  Auth emulator   http://${emulatorHost}/

Try it with a fresh anonymous user's ID token (valid for an hour):

  ${curl}

which just answered:

  ${answer.trim()}

Request logs follow. Ctrl-C stops everything.
`);

let stopping = false;
async function stop() {
  if (stopping) return;
  stopping = true;
  await Promise.all([fn.stop(), site.close()]);
  process.exit(0);
}
process.on("SIGINT", stop);
process.on("SIGTERM", stop);
// The function gone while the page and the emulator stay up would look healthy: say so, and stop.
fn.exited.then(async (code) => {
  if (stopping) return;
  stopping = true;
  console.error(`proficient-hmac: the function stopped (exit ${code ?? "by a signal"}); make dev stops too. Run make dev again.`);
  await site.close();
  process.exit(1);
});
