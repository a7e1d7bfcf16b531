// Starts the function against the Auth emulator on a free port, and waits until it answers. The
// tests run it as Cloud Run runs it: the main the Go buildpack generates (bench/function, built
// as bin/function: funcframework.Start with FUNCTION_TARGET set, on every interface). make dev
// runs the local runner (./cmd, bin/proficient-hmac), which answers the same on loopback only.
import { spawn } from "node:child_process";
import net from "node:net";
import path from "node:path";
import { fileURLToPath } from "node:url";

const repo = path.join(path.dirname(fileURLToPath(import.meta.url)), "..");
export const deployedBinary = process.env.FUNCTION_BINARY ?? path.join(repo, "bin", "function");
export const runnerBinary = path.join(repo, "bin", "proficient-hmac");
export const demoSecret = "hsec_local_demo_secret";

// freePorts resolves to n distinct loopback ports that nothing listens on now: all n are held
// open together before any is closed, so no two of them can be the same.
export async function freePorts(n) {
  const servers = await Promise.all(Array.from({ length: n }, () => new Promise((resolve, reject) => {
    const server = net.createServer().listen(0, "127.0.0.1", () => resolve(server));
    server.once("error", reject);
  })));
  const ports = servers.map((server) => server.address().port);
  await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))));
  return ports;
}

// freePort is one such port.
export const freePort = async () => (await freePorts(1))[0];

// startFunction resolves to { url, logs(), exited, stop() } once the function answers a preflight.
export async function startFunction({ port, env = {}, output, binary = deployedBinary } = {}) {
  port ??= await freePort();
  const child = spawn(binary, [], {
    env: {
      PATH: process.env.PATH,
      FUNCTION_TARGET: "ProficientHMAC", // as Cloud Run sets it
      FIREBASE_AUTH_EMULATOR_HOST: process.env.FIREBASE_AUTH_EMULATOR_HOST,
      GOOGLE_CLOUD_PROJECT: process.env.GCLOUD_PROJECT,
      PROFICIENT_HMAC_SECRET: demoSecret,
      // The suites call from pages such as https://app.example.com; against the emulator only
      // loopback pages are allowed unless this is set.
      CORS_ALLOWED_ORIGINS: "*",
      PORT: String(port),
      ...env,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let logs = "";
  for (const stream of [child.stdout, child.stderr]) {
    stream.setEncoding("utf8");
    stream.on("data", (chunk) => {
      logs += chunk;
      output?.write(chunk);
    });
  }
  const exited = new Promise((resolve) => child.once("exit", resolve));
  const url = `http://127.0.0.1:${port}/`;
  await waitUntilServing(url, exited, () => logs);
  return {
    url,
    logs: () => logs,
    exited, // resolves to the exit code (null after a signal) when the process ends
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
      await exited;
    },
  };
}

// waitUntilServing polls until the function answers, for at most 20 s, or fails at once if it exits.
async function waitUntilServing(url, exited, logs) {
  let gone = false;
  exited.then(() => (gone = true));
  for (let attempt = 0; attempt < 400 && !gone; attempt++) {
    try {
      const res = await fetch(url, { method: "OPTIONS" });
      if (res.status === 204) return;
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`the function at ${url} did not start:\n${logs()}`);
}
