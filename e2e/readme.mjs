// The documentation's code blocks, for the tests that run them as written.
import fs from "node:fs/promises";
import path from "node:path";
import assert from "node:assert/strict";

// readmeBlock is the code block of the given language that follows marker in file (a path from
// the repository's root).
export async function readmeBlock(marker, lang, file = "README.md") {
  const text = await fs.readFile(path.join(import.meta.dirname, "..", file), "utf8");
  const from = text.indexOf(marker);
  assert.ok(from >= 0, `${file} has no ${marker}`);
  const block = text.slice(from).match(new RegExp("```" + lang + "\\n([\\s\\S]*?)```"));
  assert.ok(block, `no ${lang} block after ${marker} in ${file}`);
  return block[1];
}
