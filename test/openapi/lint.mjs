// Lints OpenAPI documents with @seriousme/openapi-schema-validator (the
// official OpenAPI 3.1 JSON Schema, shipped in the npm package; nothing is
// downloaded). Prints one JSON line per file: {"file","version","valid","errors"}.
import { Validator } from "@seriousme/openapi-schema-validator";

for (const file of process.argv.slice(2)) {
  const v = new Validator();
  const res = await v.validate(file);
  console.log(JSON.stringify({ file, version: v.version ?? null, valid: res.valid, errors: res.errors ?? null }));
}
