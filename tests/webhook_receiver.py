"""A webhook receiver on loopback that checks every delivery with the Standard Webhooks
reference library (`standardwebhooks` from PyPI), an implementation independent of
upgate's. Run by tests/webhooks.rs: `python webhook_receiver.py PORT LOG SECRET...`.

Each request is appended to LOG as one JSON line: the webhook-id, the event, and whether
the signature verified with each given secret. It answers 204 when one secret verifies,
400 when none does."""
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks.webhooks import Webhook

port, log, secrets = int(sys.argv[1]), sys.argv[2], sys.argv[3:]


class Hook(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        headers = {k.lower(): v for k, v in self.headers.items()}
        verified = []
        payload = None
        for secret in secrets:
            try:
                payload = Webhook(secret).verify(body, headers)
                verified.append(True)
            except Exception:  # noqa: BLE001 - any failure is "not verified"
                verified.append(False)
        with open(log, "a") as f:
            f.write(json.dumps({
                "id": headers.get("webhook-id"),
                "verified": verified,
                "payload": payload,
                "path": self.path,
            }) + "\n")
        self.send_response(204 if any(verified) else 400)
        self.end_headers()

    def log_message(self, *args):
        pass


ThreadingHTTPServer(("127.0.0.1", port), Hook).serve_forever()
