#!/usr/bin/env python3
"""A registry stand-in for test_oci_pull.sh: forwards /v2/ requests to a
real registry (docker-registry on loopback) and can misbehave on the way.

  oci_proxy.py UPSTREAM_URL PORT_FILE LOG_FILE MODE_FILE [--bearer]

--bearer: every /v2/ request without "Authorization: Bearer tok-123" gets
401 with a Bearer challenge whose realm is this server's /token, which
hands out that token.  The mode file (read at each request) says what
happens to GETs of blobs over 4 KiB (layers, not configs): "normal",
"corrupt" (a byte flipped), "toolong" (bytes appended beyond the
descriptor's size) or "slow" (the first 64 KiB, then a stall) or "redirect" (a 307 to this server under another host
name, localhost, at /redirected/..., served without auth: the log shows
whether the client still sent its Authorization); and to every /v2/NAME/ request: "flaky" (the first request
of each path answered 503, then 429, then served) or "down" (always 503).  Each request is logged as one line:
"METHOD PATH range=... auth=...".
"""
import http.server
import socketserver
import sys
import time
import urllib.error
import urllib.request

UPSTREAM, PORT_FILE, LOG, MODE_FILE = sys.argv[1:5]
BEARER = "--bearer" in sys.argv[5:]
TOKEN = "tok-123"
SEEN = {}


def mode():
    try:
        with open(MODE_FILE) as f:
            return f.read().strip() or "normal"
    except OSError:
        return "normal"


class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def log(self):
        with open(LOG, "a") as f:
            f.write("%s %s range=%s auth=%s\n" % (self.command, self.path,
                    self.headers.get("Range", "-"),
                    (self.headers.get("Authorization") or "-").split(" ")[0]))

    def reply(self, code, body=b"", headers=()):
        self.send_response(code)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_HEAD(self):
        self.do_GET()

    def do_GET(self):
        self.log()
        port = self.server.server_address[1]
        if self.path.startswith("/token"):
            return self.reply(200, b'{"token":"%s","expires_in":300}' % TOKEN.encode(),
                              [("Content-Type", "application/json")])
        path = self.path
        if path.startswith("/redirected/"):
            path = path[len("/redirected"):]
        elif BEARER and self.headers.get("Authorization") != "Bearer " + TOKEN:
            ch = 'Bearer realm="http://127.0.0.1:%d/token",service="fake-registry"' % port
            return self.reply(401, b'{"errors":[{"code":"UNAUTHORIZED","message":"token needed"}]}',
                              [("WWW-Authenticate", ch), ("Content-Type", "application/json")])
        m = mode()
        if m == "redirect" and "/blobs/" in path and path == self.path:
            return self.reply(307, b"", [("Location", "http://localhost:%d/redirected%s" % (port, path))])
        if self.path.startswith("/v2/") and self.path != "/v2/":
            n = SEEN.get(self.path, 0)
            SEEN[self.path] = n + 1
            if m == "down" or (m == "flaky" and n == 0):
                return self.reply(503, b'{"errors":[{"code":"UNAVAILABLE","message":"try later"}]}')
            if m == "flaky" and n == 1:
                return self.reply(429, b"", [("Retry-After", "0")])
        req = urllib.request.Request(UPSTREAM + path, method=self.command)
        for k in ("Accept", "Range"):
            if self.headers.get(k):
                req.add_header(k, self.headers[k])
        try:
            r = urllib.request.urlopen(req)
            code, body, hdrs = r.status, r.read(), r.headers
        except urllib.error.HTTPError as e:
            code, body, hdrs = e.code, e.read(), e.headers
        keep = [(k, hdrs[k]) for k in ("Content-Type", "Docker-Content-Digest", "Content-Range")
                if hdrs.get(k)]
        blob = ("/blobs/" in path and code in (200, 206) and self.command == "GET"
                and len(body) > 4096)
        if blob and m == "corrupt" and body:
            body = bytes([body[0] ^ 0xFF]) + body[1:]
        elif blob and m == "toolong":
            body = body + b"extra bytes the descriptor never declared"
        elif blob and m == "slow" and len(body) > 65536:
            self.send_response(code)
            for k, v in keep:
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body[:65536])
            self.wfile.flush()
            time.sleep(120)
            return
        self.reply(code, body, keep)


class S(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True


srv = S(("127.0.0.1", 0), H)
with open(PORT_FILE + ".tmp", "w") as f:
    f.write(str(srv.server_address[1]))
import os
os.rename(PORT_FILE + ".tmp", PORT_FILE)
srv.serve_forever()
