// The README's code blocks, for the tests that run them as written.
import fs from "node:fs/promises";
import path from "node:path";
import assert from "node:assert/strict";

// readmeBlock is the code block of the given language that follows marker in the README.
export async function readmeBlock(marker, lang) {
  const readme = await fs.readFile(path.join(import.meta.dirname, "..", "README.md"), "utf8");
  const from = readme.indexOf(marker);
  assert.ok(from >= 0, `README.md has no ${marker}`);
  const block = readme.slice(from).match(new RegExp("```" + lang + "\\n([\\s\\S]*?)```"));
  assert.ok(block, `no ${lang} block after ${marker}`);
  return block[1];
}
