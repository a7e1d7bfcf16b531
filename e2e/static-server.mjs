// A static server for public/ on its own origin, as Firebase Hosting would serve it, plus the
// firebase package's browser modules. Given the function's URL, it also forwards
// /api/proficient-hmac to it, as the Hosting rewrite does in production (the Hosting emulator
// cannot forward a "run" rewrite to a local service), so the page's relative URL works locally. The page imports the SDK from its CDN URLs; an import map
// injected into index.html points those URLs at the locally installed copy, so it runs offline
// with no bundler and the deployed page needs no change.
import http from "node:http";
import fs from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const publicDir = path.join(here, "..", "public");
const firebaseDir = path.join(here, "node_modules", "firebase");
const { version } = JSON.parse(await fs.readFile(path.join(firebaseDir, "package.json"), "utf8"));
export const localSDK = `/__firebasejs/${version}/`;
export const sdkVersion = version;
const importMap = `<script type="importmap">${JSON.stringify({
  imports: { [`https://www.gstatic.com/firebasejs/${version}/`]: localSDK },
})}</script>`;

const types = { ".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8", ".map": "application/json", ".css": "text/css", ".png": "image/png", ".svg": "image/svg+xml", ".ico": "image/x-icon" };

// fileFor maps a URL path to a file, or null: only public/ and the SDK's own browser modules.
function fileFor(urlPath) {
  if (urlPath.startsWith(localSDK)) {
    const name = urlPath.slice(localSDK.length);
    return /^firebase-[a-z-]+\.js(\.map)?$/.test(name) ? path.join(firebaseDir, name) : null;
  }
  const file = path.join(publicDir, urlPath.endsWith("/") ? urlPath + "index.html" : urlPath);
  return file.startsWith(publicDir + path.sep) ? file : null;
}

// The rewrite's path, as firebase.json names it.
const apiPath = "/api/proficient-hmac";

// forward sends the request on to the function unchanged (method, path, query, headers, body)
// and its answer back unchanged (status, headers, body).
function forward(req, res, functionURL) {
  const target = new URL(req.url, functionURL);
  const headers = { ...req.headers, host: target.host };
  const upstream = http.request(target, { method: req.method, headers }, (answer) => {
    res.writeHead(answer.statusCode, answer.headers);
    answer.pipe(res);
  });
  upstream.on("error", () => res.writeHead(502, { "Content-Type": "text/plain" }).end("the function is not answering\n"));
  req.pipe(upstream);
}

async function serve(req, res, functionURL, files) {
  const urlPath = decodeURIComponent(new URL(req.url, "http://x").pathname);
  if (functionURL && urlPath === apiPath) {
    forward(req, res, functionURL);
    return;
  }
  if (files[urlPath]) {
    res.writeHead(200, { "Content-Type": types[path.extname(urlPath)], "Cache-Control": "no-store" }).end(files[urlPath]);
    return;
  }
  const file = fileFor(urlPath);
  let body;
  try {
    body = file && (await fs.readFile(file));
  } catch {
    body = null;
  }
  if (!body) {
    res.writeHead(404, { "Content-Type": "text/plain" }).end("not found\n");
    return;
  }
  if (file.endsWith("index.html")) {
    body = body.toString("utf8").replace("<head>", "<head>\n" + importMap);
  }
  res.writeHead(200, { "Content-Type": types[path.extname(file)] ?? "application/octet-stream", "Cache-Control": "no-store" });
  res.end(body);
}

// startStaticServer listens on host:port (port 0: any free port) and resolves to its URL; with
// functionURL it forwards /api/proficient-hmac there; files are extra pages by path (for tests).
export function startStaticServer({ port = 0, host = "127.0.0.1", functionURL, files = {} } = {}) {
  const server = http.createServer((req, res) => serve(req, res, functionURL, files).catch(() => res.destroy()));
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      resolve({ url: `http://${host}:${server.address().port}/`, close: () => new Promise((done) => server.close(done)) });
    });
  });
}
