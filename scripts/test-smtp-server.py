#!/usr/bin/env python3
"""A real SMTP server for Keywarden's tests (aiosmtpd): STARTTLS required, AUTH PLAIN over TLS only.

    test-smtp-server.py CERT KEY OUTDIR USER PASSWORD

Prints "smtp 127.0.0.1 PORT" when ready; writes each accepted message to OUTDIR/N.json with the
envelope, the raw message, and whether the session was encrypted and authenticated.
"""
import asyncio
import json
import os
import signal
import socket
import ssl
import sys
import time

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

cert, key, outdir, user, password = sys.argv[1:6]
# A parent that ignores SIGTERM passes that on to its children: restore the default, stopping cleanly.
signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
os.makedirs(outdir, exist_ok=True)


class Handler:
    def __init__(self):
        self.count = 0

    async def handle_DATA(self, server, session, envelope):
        self.count += 1
        record = {
            "from": envelope.mail_from,
            "to": envelope.rcpt_tos,
            "data": envelope.content.decode("utf-8", "replace"),
            "tls": session.ssl is not None,
            "authenticated": bool(session.authenticated),
        }
        path = os.path.join(outdir, f"{self.count}.json")
        with open(path + ".tmp", "w") as f:
            json.dump(record, f)
        os.rename(path + ".tmp", path)
        return "250 Message accepted for delivery"


def authenticator(server, session, envelope, mechanism, auth_data):
    if isinstance(auth_data, LoginPassword) and auth_data.login == user.encode() and auth_data.password == password.encode():
        return AuthResult(success=True)
    return AuthResult(success=False, handled=False)


context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
context.load_cert_chain(cert, key)
probe = socket.socket()
probe.bind(("127.0.0.1", 0))
port = probe.getsockname()[1]
probe.close()
controller = Controller(
    Handler(), hostname="127.0.0.1", port=port, tls_context=context, require_starttls=True,
    authenticator=authenticator, auth_require_tls=True, server_hostname="localhost",
)
controller.start()
print(f"smtp 127.0.0.1 {port}", flush=True)
try:
    while True:
        time.sleep(3600)
except KeyboardInterrupt:
    controller.stop()
