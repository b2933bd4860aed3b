"""checkout: the demo shop's order service, Python standard library only.

POST /orders with a JSON body {product_id, quantity, price_cents, email}
charges the order through the payments service (urllib, a new HTTP/1.1
connection per call) and answers 201 with the order. Three orders in a
hundred fail on purpose with 500 after the payment was taken (a bug in
the confirmation step), so errors show up in the traces.

Configuration (environment): CHECKOUT_ADDR (host:port to listen on),
PAYMENTS_URL (base URL of payments), CHECKOUT_FAIL_RATE (0.03).
"""
import json
import os
import random
import signal
import sys
import threading
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PAYMENTS = os.environ.get("PAYMENTS_URL", "http://127.0.0.1:8082")
FAIL_RATE = float(os.environ.get("CHECKOUT_FAIL_RATE", "0.03"))


class Handler(BaseHTTPRequestHandler):
    server_version = "checkout/1"

    def do_POST(self):
        if self.path != "/orders":
            self.answer(404, {"error": "not found"})
            return
        try:
            n = int(self.headers.get("Content-Length", "0"))
            order = json.loads(self.rfile.read(n) or b"{}")
            qty = int(order["quantity"])
            amount = qty * int(order["price_cents"])
        except (ValueError, KeyError, TypeError):
            self.answer(400, {"error": "bad order"})
            return
        body = json.dumps({"product_id": int(order["product_id"]), "quantity": qty,
                           "amount_cents": amount, "email": order.get("email", "")}).encode()
        req = urllib.request.Request(PAYMENTS + "/charge", data=body, method="POST",
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=5) as resp:
                payment = json.loads(resp.read())
        except (urllib.error.URLError, OSError, ValueError) as e:
            self.answer(502, {"error": "payment failed: %s" % e})
            return
        if random.random() < FAIL_RATE:
            self.answer(500, {"error": "confirmation step failed"})
            return
        self.answer(201, {"status": "confirmed", "amount_cents": amount,
                          "payment_id": payment.get("payment_id")})

    def answer(self, code, obj):
        data = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, fmt, *args):
        pass


def main():
    host, _, port = os.environ.get("CHECKOUT_ADDR", "127.0.0.1:8081").rpartition(":")
    srv = ThreadingHTTPServer((host, int(port)), Handler)
    srv.daemon_threads = True
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=srv.shutdown).start())
    print("checkout: http on %s:%s" % (host, port), file=sys.stderr, flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    main()
