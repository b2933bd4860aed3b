"""relay.py is the Python hop of the e2e call chains: an HTTP/1.1 server,
one thread per request (ThreadingHTTPServer), whose

    GET /relay/<tok>

fetches $WEFT_E2E_DOWNSTREAM/leaf-<tok>.txt with urllib (a downstream call
made while serving, on the serving thread) and answers with its status and
body. It listens on 127.0.0.1 on a free port and prints the port alone on
the first line of stdout.
"""

import http.server
import os
import sys
import urllib.error
import urllib.request

DOWNSTREAM = os.environ["WEFT_E2E_DOWNSTREAM"]
# No proxy, whatever the environment says: the call must go straight to
# the downstream server on loopback.
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class Relay(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        if not self.path.startswith("/relay/"):
            self.send_error(404)
            return
        tok = self.path[len("/relay/"):]
        try:
            with OPENER.open(f"{DOWNSTREAM}/leaf-{tok}.txt", timeout=10) as r:
                status, body = r.status, r.read()
        except urllib.error.HTTPError as e:
            status, body = e.code, e.read()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, fmt, *args):
        sys.stderr.write("relay: " + fmt % args + "\n")


def main():
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Relay)
    print(srv.server_address[1], flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    main()
