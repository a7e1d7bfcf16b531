// Debian's Chromium, headless, for the browser tests: a fresh profile each launch, removed on
// close.
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import puppeteer from "puppeteer-core";

// launchChromium resolves to { browser, close() }.
export async function launchChromium() {
  const profile = await fs.mkdtemp(path.join(os.tmpdir(), "chromium-"));
  const browser = await puppeteer.launch({
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    headless: true,
    userDataDir: profile,
    // Every name resolves to nothing: the pages and the function are IP literals on loopback, and
    // Chromium's own lookups (accounts.google.com, clients2.google.com) must not leave the machine.
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
      "--disable-component-update", "--disable-sync", "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"],
  });
  return {
    browser,
    close: async () => {
      await browser.close();
      await fs.rm(profile, { recursive: true, force: true });
    },
  };
}
