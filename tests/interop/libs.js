// libs.js - the real Standard Webhooks clients under test, loaded from the npm prefix
// the test installed them into (HR_INTEROP_NODE_DIR: <build>/interop, from the committed
// package-lock.json), and the command line both scripts share.
"use strict";

const fs = require("fs");
const path = require("path");
const { createRequire } = require("module");

const prefix = process.env.HR_INTEROP_NODE_DIR;
if (!prefix) {
  process.stderr.write("HR_INTEROP_NODE_DIR: the npm prefix holding node_modules\n");
  process.exit(2);
}
// Resolves as a file in the prefix would: <prefix>/node_modules, and each package's own
// nested dependencies (svix 1.x brings standardwebhooks 1.0.0 of its own).
const requireFromPrefix = createRequire(path.join(path.resolve(prefix), "package.json"));

function version(name) {
  return requireFromPrefix(name + "/package.json").version;
}

// Each library, with the header families its verify() reads: standardwebhooks only
// webhook-*; svix svix-* and webhook-* (svix-* first when both are present).
const LIBRARIES = {
  standardwebhooks: {
    Webhook: requireFromPrefix("standardwebhooks").Webhook,
    version: version("standardwebhooks"),
    families: ["webhook"],
  },
  svix: {
    Webhook: requireFromPrefix("svix").Webhook,
    version: version("svix"),
    families: ["svix", "webhook"],
  },
};

// --name value pairs; a repeated name gives a list (--secret A --secret B).
function parseArgs(argv, repeatable) {
  const out = {};
  for (let i = 0; i < argv.length; i += 2) {
    const name = argv[i];
    if (!name.startsWith("--") || i + 1 >= argv.length) {
      throw new Error("usage: --name value ...; got " + JSON.stringify(argv.slice(i)));
    }
    const key = name.slice(2);
    if (repeatable.includes(key)) {
      (out[key] = out[key] || []).push(argv[i + 1]);
    } else {
      out[key] = argv[i + 1];
    }
  }
  return out;
}

// The body as bytes: --body-file PATH (any size), or --body-b64 BASE64 (a short one).
function bodyOf(args) {
  if (args["body-file"] !== undefined) {
    return fs.readFileSync(args["body-file"]);
  }
  if (args["body-b64"] !== undefined) {
    return Buffer.from(args["body-b64"], "base64");
  }
  throw new Error("no body: --body-file PATH or --body-b64 BASE64");
}

module.exports = { LIBRARIES, bodyOf, parseArgs };
