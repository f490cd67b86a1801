"""A gRPC health server for the grpc prober's tests (tests/it/grpc.rs).

Debian's python3-grpcio serves grpc.health.v1.Health/Check through a generic
handler, its two messages encoded by hand (no generated code, no protobuf
package). Run with Debian's interpreter:

    /usr/bin/python3 grpc_health_server.py CERT_PEM KEY_PEM

It listens on 127.0.0.1 without and with TLS, and on [::1] without TLS, on
ports of its own choosing, and prints them as `ports PLAIN TLS PLAIN6` (0 when
::1 cannot be bound). Then it prints one JSON line per call: the service
asked for and the request metadata (binary values in hex). It exits when its
standard input closes, so it never outlives the test process.

Services: "" and "serving" are SERVING, "notserving" NOT_SERVING, "unknown"
UNKNOWN, "seven" the number 7 (no such ServingStatus), "denied" fails with
PERMISSION_DENIED; any other is NOT_FOUND, as the standard health service
answers for a service it does not know.
"""

import json
import os
import sys
import threading
from concurrent import futures

import grpc

ANSWERS = {"": 1, "serving": 1, "notserving": 2, "unknown": 0, "seven": 7}

# Calls run on a pool of threads: one line at a time on stdout.
OUTPUT = threading.Lock()


def read_request(data):
    """HealthCheckRequest { string service = 1; } -> service."""
    service, i = "", 0
    while i < len(data):
        tag = data[i]
        i += 1
        if tag != 0x0A:
            raise ValueError("unexpected field tag %d" % tag)
        length, shift = 0, 0
        while True:
            byte = data[i]
            i += 1
            length |= (byte & 0x7F) << shift
            shift += 7
            if byte < 0x80:
                break
        service = data[i : i + length].decode()
        i += length
    return service


def write_response(status):
    """HealthCheckResponse { ServingStatus status = 1; }; proto3 omits 0."""
    return b"" if status == 0 else bytes([0x08, status])


def check(service, context):
    metadata = [
        [key, value.hex() if isinstance(value, bytes) else value]
        for key, value in context.invocation_metadata()
    ]
    line = json.dumps({"service": service, "metadata": metadata}) + "\n"
    with OUTPUT:
        sys.stdout.write(line)
        sys.stdout.flush()
    if service == "denied":
        context.abort(grpc.StatusCode.PERMISSION_DENIED, "not for you")
    if service not in ANSWERS:
        context.abort(grpc.StatusCode.NOT_FOUND, "unknown service")
    return ANSWERS[service]


def main():
    cert_file, key_file = sys.argv[1], sys.argv[2]
    handler = grpc.method_handlers_generic_handler(
        "grpc.health.v1.Health",
        {
            "Check": grpc.unary_unary_rpc_method_handler(
                check,
                request_deserializer=read_request,
                response_serializer=write_response,
            )
        },
    )
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    server.add_generic_rpc_handlers((handler,))
    plain = server.add_insecure_port("127.0.0.1:0")
    with open(cert_file, "rb") as cert, open(key_file, "rb") as key:
        credentials = grpc.ssl_server_credentials([(key.read(), cert.read())])
    tls = server.add_secure_port("127.0.0.1:0", credentials)
    try:
        plain6 = server.add_insecure_port("[::1]:0")
    except RuntimeError:
        plain6 = 0
    server.start()
    print("ports %d %d %d" % (plain, tls, plain6), flush=True)
    # The test process holds our stdin: when it ends, so do we.
    threading.Thread(target=lambda: (sys.stdin.read(), os._exit(0)), daemon=True).start()
    server.wait_for_termination()


if __name__ == "__main__":
    main()
