"""An SMTP server with STARTTLS for tests/it/query_response.rs: Debian's
aiosmtpd (python3-aiosmtpd) on 127.0.0.1, a port the system picks.

Usage: smtp_server.py CERT KEY. Prints "port N" once listening; exits when
its stdin closes (when the test process does)."""

import asyncio
import logging
import ssl
import sys

from aiosmtpd.smtp import SMTP


class Sink:
    async def handle_DATA(self, server, session, envelope):
        return "250 OK"


async def main():
    # aiosmtpd logs every failed handshake the tests provoke.
    logging.getLogger("mail.log").setLevel(logging.CRITICAL)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(sys.argv[1], sys.argv[2])
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(
            Sink(),
            tls_context=context,
            hostname="mail.lookout.test",
            ident="lookout-test",
        ),
        host="127.0.0.1",
        port=0,
    )
    print("port", server.sockets[0].getsockname()[1], flush=True)
    await loop.run_in_executor(None, sys.stdin.read)


asyncio.run(main())
