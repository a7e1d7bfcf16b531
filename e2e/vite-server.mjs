// A real Vite dev server (e2e/vite, its own lock file) for an app whose vite.config.js is the
// README's block as written, with only the function's address put in place of the README's
// http://127.0.0.1:8080. The app lives in a fresh folder under e2e/vite, so the config's
// `import "vite"` finds e2e/vite's Vite and the app's `firebase` and `react` imports find e2e's.
import fs from "node:fs/promises";
import path from "node:path";
import { pathToFileURL } from "node:url";
import assert from "node:assert/strict";
import { readmeBlock } from "./readme.mjs";

const here = import.meta.dirname;
const { createServer } = await import(pathToFileURL(path.join(here, "vite", "node_modules", "vite", "dist", "node", "index.js")));

const readmeFunction = "http://127.0.0.1:8080";

// startViteDevServer writes files (path → text) into a new app folder with the README's
// vite.config.js, serves it, and resolves to { url, ssrLoadModule(url), close() }. alias maps import names to files
// of the app (a stand-in for a package the app would install).
export async function startViteDevServer({ functionURL, files, alias = {} }) {
  const config = await readmeBlock("## Use it from your app", "js");
  assert.ok(config.includes(readmeFunction), `the README's vite.config.js does not proxy to ${readmeFunction}`);
  const root = await fs.mkdtemp(path.join(here, "vite", "app-"));
  const all = { "vite.config.js": config.replaceAll(readmeFunction, new URL(functionURL).origin), ...files };
  for (const [name, text] of Object.entries(all)) {
    await fs.mkdir(path.dirname(path.join(root, name)), { recursive: true });
    await fs.writeFile(path.join(root, name), text);
  }
  const server = await createServer({
    root,
    configFile: path.join(root, "vite.config.js"),
    cacheDir: path.join(root, ".vite"),
    logLevel: "silent",
    clearScreen: false,
    // JSX without @vitejs/plugin-react (no Fast Refresh needed here); no reloads mid-test.
    esbuild: { jsx: "automatic" },
    // The import the JSX transform adds, which Vite's scan of the pages cannot see, bundled from
    // the start as plugin-react has it: found on a page's first load, it changed the bundled deps,
    // and with no HMR to reload the page, the open page waited on 504s (a flaky first run).
    optimizeDeps: { include: ["react/jsx-dev-runtime"] },
    resolve: { alias: Object.fromEntries(Object.entries(alias).map(([name, file]) => [name, path.join(root, file)])) },
    server: { host: "127.0.0.1", port: 0, hmr: false, watch: null, fs: { allow: [here] } },
  });
  // A reload Vite asks for (the bundled deps changed) never happens here: a page open then waits
  // on 504s, timing-dependent. Recorded, so close() fails whenever one was asked for.
  const reloads = [];
  const hot = server.environments.client.hot;
  const send = hot.send.bind(hot);
  hot.send = (payload, ...rest) => {
    if (payload?.type === "full-reload") reloads.push(payload);
    return send(payload, ...rest);
  };
  try {
    await server.listen();
  } catch (err) {
    await fs.rm(root, { recursive: true, force: true });
    throw err;
  }
  const { port } = server.httpServer.address();
  return {
    url: `http://127.0.0.1:${port}/`,
    // Loads an app module as server rendering would (in this process).
    ssrLoadModule: (url) => server.ssrLoadModule(url),
    close: async () => {
      await server.close();
      await fs.rm(root, { recursive: true, force: true });
      assert.deepEqual(reloads, [], "Vite asked the pages to reload (its bundled deps changed while they were open): bundle the late-found dependency from the start (optimizeDeps.include)");
    },
  };
}
