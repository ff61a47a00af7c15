// Uploads one file with tus-js-client (the reference tus client), as a caller's app would,
// retrying after network errors. Prints a JSON summary: the offset of every PATCH it sent
// and how often it retried. Run by tests/tus_clients.rs, which puts a TCP relay that cuts
// the connection between this client and upgate.
import { readFileSync } from "node:fs";
import * as tus from "tus-js-client";

const file = readFileSync(process.env.TUS_FILE);
const patches = [];
let retries = 0;

await new Promise((resolve, reject) => {
  const upload = new tus.Upload(file, {
    endpoint: process.env.TUS_ENDPOINT,
    chunkSize: Number(process.env.TUS_CHUNK),
    retryDelays: [100, 300, 1000, 2000],
    metadata: { filename: process.env.TUS_NAME, filetype: "application/pdf" },
    onBeforeRequest(req) {
      if (req.getMethod() === "PATCH") patches.push(Number(req.getHeader("Upload-Offset")));
    },
    onShouldRetry(err, attempt, options) {
      retries += 1;
      return true;
    },
    onError: reject,
    onSuccess: resolve,
  });
  upload.start();
});
console.log(JSON.stringify({ patches, retries }));
