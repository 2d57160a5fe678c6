#!/usr/bin/env node
// verify.js - verify a request (headers and body) with each real library's
// Webhook.verify(), as a receiver would. Prints, as JSON on stdout, each library's
// verdict: {"standardwebhooks": {"version": "1.3.0", "ok": true, "error": null}, ...}
// and exits 0 when every library verified it, 1 when one refused it (2: bad usage).
// Usage: verify.js --secret whsec_... --headers JSON
//                  (--body-file PATH | --body-b64 BASE64) [--library NAME]
// The body is verified twice per library: as the raw bytes (a Buffer, e.g. from
// express.raw()) and as the string they decode to (UTF-8), the two ways receivers pass it.
"use strict";

const { LIBRARIES, bodyOf, parseArgs } = require("./libs.js");

function verifyOne(lib, secret, headers, body) {
  try {
    const wh = new lib.Webhook(secret);
    wh.verify(body, headers);
    wh.verify(body.toString("utf8"), headers);
    return { version: lib.version, ok: true, error: null };
  } catch (e) {
    return { version: lib.version, ok: false, error: String((e && e.message) || e) };
  }
}

// The verdicts as JSON, one line, and the exit status; serve.js calls it for each
// request of a test.
function run(argv) {
  const args = parseArgs(argv, []);
  if (!args.secret || !args.headers) {
    throw new Error("verify.js needs --secret and --headers");
  }
  const headers = JSON.parse(args.headers);
  const body = bodyOf(args);
  const out = {};
  for (const [name, lib] of Object.entries(LIBRARIES)) {
    if (!args.library || args.library === name) {
      out[name] = verifyOne(lib, args.secret, headers, body);
    }
  }
  return {
    status: Object.values(out).every((v) => v.ok) ? 0 : 1,
    stdout: JSON.stringify(out) + "\n",
  };
}

module.exports = { run };

if (require.main === module) {
  try {
    const r = run(process.argv.slice(2));
    process.stdout.write(r.stdout);
    process.exitCode = r.status;
  } catch (e) {
    process.stderr.write("verify.js: " + (e && e.stack ? e.stack : e) + "\n");
    process.exitCode = 2;
  }
}
