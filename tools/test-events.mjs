// A reporter for Node's test runner, which ships none that writes JSON: one line of JSON for each
// test that passed or failed, for tools/testcount to count (make test runs node --test with
// --test-reporter=tools/test-events.mjs beside its TAP).
export default async function* testEvents(source) {
  for await (const { type, data } of source) {
    if (type !== "test:pass" && type !== "test:fail") continue;
    const error = data.details?.error;
    yield JSON.stringify({
      type,
      name: data.name,
      nesting: data.nesting,
      file: data.file,
      skip: Boolean(data.skip),
      todo: Boolean(data.todo),
      ...(error && { failure: error.failureType, error: String(error.cause?.message ?? error.message) }),
    }) + "\n";
  }
}
