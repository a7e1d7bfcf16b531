// The README's callable and fetch snippets are TypeScript too: each, saved as a .ts file as
// written, compiles with tsc --strict under the options an Angular app (ng new) uses, the
// strictest a Firebase web app is likely to have, against the pinned firebase package's types.
// The TypeScript and firebase are e2e/angular's, as an app's own would be.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import fs from "node:fs/promises";
import path from "node:path";
import { readmeBlock } from "./readme.mjs";

const angularDir = path.join(import.meta.dirname, "angular");
const tsc = path.join(angularDir, "node_modules", "typescript", "bin", "tsc");

// compile runs tsc --strict over files (name → text) in a new folder inside e2e/angular, and
// resolves to { code, output }.
async function compile(files) {
  const dir = await fs.mkdtemp(path.join(angularDir, ".tsc-"));
  try {
    for (const [name, text] of Object.entries(files)) await fs.writeFile(path.join(dir, name), text);
    const args = [tsc, "--strict", "--noEmit", "--target", "ES2022", "--module", "preserve", "--moduleResolution", "bundler",
      "--noImplicitReturns", "--noImplicitOverride", "--noPropertyAccessFromIndexSignature", "--noFallthroughCasesInSwitch",
      "--isolatedModules", "--skipLibCheck", ...Object.keys(files)];
    const child = spawn(process.execPath, args, { cwd: dir, stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    child.stdout.on("data", (chunk) => (output += chunk));
    child.stderr.on("data", (chunk) => (output += chunk));
    const code = await new Promise((resolve) => child.once("exit", resolve));
    return { code, output };
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
}

test("the README's snippets, saved as .ts, compile with tsc --strict; their result is a string", async () => {
  const files = {
    "callable.ts": await readmeBlock("**Firebase web SDK, callable protocol**", "js"),
    "fetch.ts": await readmeBlock("**Plain `fetch`**", "js"),
    // A caller that needs a string: it compiles only if each snippet resolves to one.
    "use.ts": `import { proficientHmac as viaCallable } from "./callable";
import { proficientHmac as viaFetch } from "./fetch";
export const hmacs: Promise<string>[] = [viaCallable(), viaFetch()];
`,
  };
  const { code, output } = await compile(files);
  assert.equal(code, 0, output);
});

test("tsc --strict fails on what it should: a callable result read without narrowing", async () => {
  // The shape the README's callable snippet used to have: data is unknown, err is unknown.
  const { code, output } = await compile({
    "old.ts": `import { getFunctions, httpsCallableFromURL } from "firebase/functions";
export async function proficientHmac() {
  try {
    const { data } = await httpsCallableFromURL(getFunctions(), "/api/proficient-hmac")();
    return data.hmac;
  } catch (err) {
    throw new Error(err.message);
  }
}
`,
  });
  assert.notEqual(code, 0);
  assert.match(output, /'data' is of type 'unknown'/);
  assert.match(output, /'err' is of type 'unknown'/);
});
