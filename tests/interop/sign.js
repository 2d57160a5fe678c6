#!/usr/bin/env node
// sign.js - sign a body with each real library's Webhook.sign() and print the headers a
// sender using it would send, as JSON on stdout:
//   {"standardwebhooks": {"version": "1.3.0", "families": {"webhook": {"webhook-id": ...,
//     "webhook-timestamp": ..., "webhook-signature": ...}}}, "svix": {...}}
// Usage: sign.js --secret whsec_... [--secret whsec_...] --id msg_... --timestamp UNIX
//                (--body-file PATH | --body-b64 BASE64) [--library NAME]
// Several --secret: one v1 entry each, space-separated, in that order (a sender
// rotating its secret). The body is bytes, signed as a Buffer, as a server holding the
// raw body would.
"use strict";

const { LIBRARIES, bodyOf, parseArgs } = require("./libs.js");

// The headers as JSON, one line; serve.js calls it for each request of a test.
function run(argv) {
  const args = parseArgs(argv, ["secret"]);
  if (!args.secret || !args.id || !args.timestamp) {
    throw new Error("sign.js needs --secret, --id and --timestamp");
  }
  const body = bodyOf(args);
  const when = new Date(Number(args.timestamp) * 1000);
  const out = {};
  for (const [name, lib] of Object.entries(LIBRARIES)) {
    if (args.library && args.library !== name) {
      continue;
    }
    const signature = args.secret.map((s) => new lib.Webhook(s).sign(args.id, when, body)).join(" ");
    const families = {};
    for (const family of lib.families) {
      families[family] = {
        [family + "-id"]: args.id,
        [family + "-timestamp"]: String(Math.floor(when.getTime() / 1000)),
        [family + "-signature"]: signature,
      };
    }
    out[name] = { version: lib.version, families };
  }
  return { status: 0, stdout: JSON.stringify(out) + "\n" };
}

module.exports = { run };

if (require.main === module) {
  try {
    process.stdout.write(run(process.argv.slice(2)).stdout);
  } catch (e) {
    process.stderr.write("sign.js: " + (e && e.stack ? e.stack : e) + "\n");
    process.exit(2);
  }
}
