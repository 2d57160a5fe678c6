#!/usr/bin/env node
// serve.js - sign.js and verify.js for a whole test file in one node process: a node
// start with both libraries loaded costs ~200 ms of processor time (4,000 page faults),
// and the test asked 35 times a run, in each of the two builds. One request a line on
// stdin, {"script": "sign" | "verify", "args": [the script's command line]}; one answer
// a line on stdout, {"status": exit status, "stdout": what the script prints, "stderr"}:
// the same as running the script (status 2 and the error on stderr for bad usage).
"use strict";

const readline = require("readline");
const SCRIPTS = { sign: require("./sign.js"), verify: require("./verify.js") };

readline.createInterface({ input: process.stdin }).on("line", (line) => {
  let answer;
  try {
    const req = JSON.parse(line);
    const script = SCRIPTS[req.script];
    if (!script) {
      throw new Error("no script " + JSON.stringify(req.script));
    }
    answer = { ...script.run(req.args), stderr: "" };
  } catch (e) {
    answer = { status: 2, stdout: "", stderr: "serve.js: " + (e && e.stack ? e.stack : e) + "\n" };
  }
  process.stdout.write(JSON.stringify(answer) + "\n");
});
