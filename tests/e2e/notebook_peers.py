#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""The course notebook's lab programs, as interop peers for secho's e2e tests.

Servers are the notebook's own code (Lab 8: DH threaded server, Fernet UDP server, Fernet
selectors server) with only these changes: host/port are parameters (port 0 picks a free
one), a readiness line `listening on HOST:PORT` is printed and flushed, DH parameters are
loaded instead of generated (generation takes ~20 s; --generate does it anyway), and the
process exits after --lifetime seconds so a test can never hang.

The notebook has no clients for these protocols; the clients here are written in its style:
one recv(1024) per part. The DH client has two read modes: `strict` (exactly the notebook's
recv(1024) per part, to check that a server paces its parts) and `robust` (reads PEMs up to
their END line and the IV as 16 bytes, for servers that send parts back to back, like the
notebook's). Clients send each part with sendall() and a short pause after it, so that the
notebook server's recv(1024) sees it alone. Each stdin line is a message; each echo is
printed as a line on stdout; `exit` ends the session.

Run with Debian's /usr/bin/python3 (python3-cryptography 38).
"""
import argparse
import logging
import os
import selectors
import socket
import sys
import threading
import time

from cryptography.fernet import Fernet
from cryptography.hazmat.backends import default_backend
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dh
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from os import urandom

# Made once by the notebook's own call (cryptography 38):
#   dh.generate_parameters(generator=2, key_size=2048).parameter_bytes(PEM, PKCS3)
NOTEBOOK_PARAMS = b"""-----BEGIN DH PARAMETERS-----
MIIBCAKCAQEAqnKkeeXueZFPaTYndt1LtOGWCL5MdiA7I8tlU3cFadfiQLgWK9ui
2Mih2VhZEFD3aCEBWVlZ/LyfEBXKmoDhAzxqdWwT1FO5xGd2M2IaDJGMUGeUtmCI
NvmnU+NigzRjvw2lrDmDBvb7ebRRuZlpOU9OEdh/qA8+WSy9CW/rlIsfhSAIL6Ii
5S2xgXBYBEfoho1fdYYaPU1dQG//ZtWbjR1n0C9BsROvAb44Qc/pWpl8uTSNioUw
cNpO5syBCxY7fNNWJSFY3O53KgumikcJ1qoxxTJHK502mMXaXuSvWCIm8+KpMnm+
RcaRSuW7FhtuFFfjpWpiZNksOrO5GAigXwIBAg==
-----END DH PARAMETERS-----
"""

PAUSE = 0.05  # seconds between parts a client sends (the notebook reads each with recv)


def ready(sock):
    host, port = sock.getsockname()[:2]
    print(f"listening on {host}:{port}", flush=True)


def watchdog(seconds):
    """Ends the process after `seconds`, whatever it is blocked in."""
    t = threading.Timer(seconds, lambda: os._exit(3))
    t.daemon = True
    t.start()


def family(host):
    return socket.AF_INET6 if ":" in host else socket.AF_INET


# ---------------------------------------------------------------------------------------
# Lab 8: Diffie-Hellman threaded server (notebook code, parameterised)

def dh_server(args):
    server_running = True
    lock = threading.Lock()

    def create_shared_secret(client_socket, private_key, params_bytes, public_key_b):
        client_socket.sendall(params_bytes)
        client_socket.sendall(public_key_b)

        client_public_key_b = client_socket.recv(1024)
        client_public_key = serialization.load_pem_public_key(client_public_key_b)

        shared_secret = private_key.exchange(client_public_key)
        derived_key = HKDF(
            algorithm=hashes.SHA256(),
            length=32,
            salt=None,
            info='handshake data'.encode(),
            backend=default_backend()
        ).derive(shared_secret)

        return derived_key

    def handle_client(client_socket, server_socket, derived_key):
        nonlocal server_running
        try:
            while True:
                iv = client_socket.recv(1024)
                ciphertext = client_socket.recv(1024)

                cipher = Cipher(algorithms.AES(derived_key), modes.CFB(iv), backend=default_backend())
                decryptor = cipher.decryptor()
                data = decryptor.update(ciphertext) + decryptor.finalize()

                iv = urandom(16)
                cipher = Cipher(algorithms.AES(derived_key), modes.CFB(iv), backend=default_backend())
                encryptor = cipher.encryptor()
                ciphertext = encryptor.update(data) + encryptor.finalize()

                client_socket.sendall(iv)
                client_socket.sendall(ciphertext)

                if data.decode('utf-8') in ('exit', None):
                    break

                if data.decode('utf-8') == 'shutdown':
                    with lock:
                        server_running = False
                    break

        finally:
            print("Соединение с клиентом закрыто", file=sys.stderr)
            client_socket.close()
            if not server_running:
                with lock:
                    server_socket.close()
                print("Сервер закрыт", file=sys.stderr)
                os._exit(0)  # the notebook's accept() would block on; end the process

    server_socket = socket.socket(family(args.host), socket.SOCK_STREAM)
    server_socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server_socket.bind((args.host, args.port))
    server_socket.listen()

    if args.generate:
        parameters = dh.generate_parameters(generator=2, key_size=2048, backend=default_backend())
    else:
        pem = open(args.dh_params, 'rb').read() if args.dh_params else NOTEBOOK_PARAMS
        parameters = serialization.load_pem_parameters(pem)
    private_key = parameters.generate_private_key()
    public_key = private_key.public_key()

    public_key_b = public_key.public_bytes(
        encoding=serialization.Encoding.PEM,
        format=serialization.PublicFormat.SubjectPublicKeyInfo
    )
    params_bytes = parameters.parameter_bytes(
        encoding=serialization.Encoding.PEM,
        format=serialization.ParameterFormat.PKCS3
    )
    ready(server_socket)

    server_running = True
    while server_running:
        try:
            client_socket, address = server_socket.accept()
        except socket.error:
            break
        derived_key = create_shared_secret(client_socket, private_key, params_bytes, public_key_b)
        print(f"Принято соединение от {address}", file=sys.stderr)
        client_thread = threading.Thread(target=handle_client, args=(client_socket, server_socket, derived_key))
        client_thread.start()


# ---------------------------------------------------------------------------------------
# DH client in the notebook's style

def recv_until(sock, buf, marker):
    """Robust mode: bytes up to and including the line holding `marker`, plus leftovers."""
    while marker not in buf or not buf[buf.index(marker):].count(b"\n"):
        chunk = sock.recv(1024)
        if not chunk:
            raise ConnectionError("server closed the connection")
        buf += chunk
    end = buf.index(b"\n", buf.index(marker)) + 1
    return buf[:end], buf[end:]


def recv_exact(sock, buf, n):
    while len(buf) < n:
        chunk = sock.recv(1024)
        if not chunk:
            raise ConnectionError("server closed the connection")
        buf += chunk
    return buf[:n], buf[n:]


def dh_client(args):
    sock = socket.create_connection((args.host, args.port), timeout=args.timeout)
    rest = b""
    if args.mode == "strict":
        params_bytes = sock.recv(1024)
        server_public_key_b = sock.recv(1024)
    else:
        params_bytes, rest = recv_until(sock, rest, b"-----END DH PARAMETERS-----")
        server_public_key_b, rest = recv_until(sock, rest, b"-----END PUBLIC KEY-----")
    parameters = serialization.load_pem_parameters(params_bytes)
    server_public_key = serialization.load_pem_public_key(server_public_key_b)

    private_key = parameters.generate_private_key()
    public_key_b = private_key.public_key().public_bytes(
        encoding=serialization.Encoding.PEM,
        format=serialization.PublicFormat.SubjectPublicKeyInfo
    )
    sock.sendall(public_key_b)
    time.sleep(PAUSE)

    shared_secret = private_key.exchange(server_public_key)
    derived_key = HKDF(
        algorithm=hashes.SHA256(),
        length=32,
        salt=None,
        info='handshake data'.encode(),
        backend=default_backend()
    ).derive(shared_secret)

    for line in sys.stdin:
        message = line.rstrip("\n")
        iv = urandom(16)
        cipher = Cipher(algorithms.AES(derived_key), modes.CFB(iv), backend=default_backend())
        encryptor = cipher.encryptor()
        ciphertext = encryptor.update(message.encode()) + encryptor.finalize()
        sock.sendall(iv)
        time.sleep(PAUSE)
        sock.sendall(ciphertext)

        if args.mode == "strict":
            iv = sock.recv(1024)
            ciphertext = sock.recv(1024)
        else:
            iv, rest = recv_exact(sock, rest, 16)
            ciphertext = rest or sock.recv(1024)
            rest = b""
        cipher = Cipher(algorithms.AES(derived_key), modes.CFB(iv), backend=default_backend())
        decryptor = cipher.decryptor()
        data = decryptor.update(ciphertext) + decryptor.finalize()
        print(data.decode('utf-8'), flush=True)
        if message in ('exit', 'shutdown'):
            break
        time.sleep(PAUSE)
    sock.close()


# ---------------------------------------------------------------------------------------
# Lab 8: Fernet UDP server (notebook code, parameterised)

def fernet_udp_server(args):
    server_socket = socket.socket(family(args.host), socket.SOCK_DGRAM)
    server_socket.bind((args.host, args.port))

    key = Fernet.generate_key()
    cipher = Fernet(key)
    ready(server_socket)

    _, client_address = server_socket.recvfrom(1024)
    server_socket.sendto(key, client_address)

    while True:
        data, client_address = server_socket.recvfrom(1024)
        data = cipher.decrypt(data)

        ciphertext = cipher.encrypt(data)
        server_socket.sendto(ciphertext, client_address)

        if data.decode() == 'exit':
            print("Сервер закрыт", file=sys.stderr)
            server_socket.close()
            break

        print(f'Отправлен эхо-ответ "{data.decode()}" на адрес {client_address}', file=sys.stderr)


# ---------------------------------------------------------------------------------------
# Lab 8: Fernet selectors server (notebook code, parameterised)

def fernet_server(args):
    selector = selectors.DefaultSelector()
    server_running = True

    logging.basicConfig(level=logging.INFO, format='%(asctime)s - %(message)s', stream=sys.stderr)
    logger = logging.getLogger()

    ciphers = {}

    def accept_connection(server_socket):
        try:
            client_socket, client_address = server_socket.accept()

            key = Fernet.generate_key()
            cipher = Fernet(key)
            ciphers[client_socket] = cipher
            client_socket.sendall(key)

            logger.info(f"Подключение от {client_address}")
            client_socket.setblocking(False)
            selector.register(client_socket, selectors.EVENT_READ, send_echo)
        except Exception as e:
            logger.error(f"Ошибка при подключении клиента: {e}")

    def send_echo(client_socket):
        try:
            cipher = ciphers[client_socket]

            ciphertext = client_socket.recv(1024)
            data = cipher.decrypt(ciphertext)
            if data:
                ciphertext = cipher.encrypt(data)
                client_socket.sendall(ciphertext)

                if data.decode('utf-8') == 'shutdown':
                    shutdown_server()
                    return

                if data.decode('utf-8') == 'exit':
                    close_connection(client_socket)
                    return
            else:
                close_connection(client_socket, 1)
        except Exception as e:
            logger.error(f"Ошибка при обработке данных от клиента: {e}")
            close_connection(client_socket)

    def close_connection(client_socket, break_=0):
        try:
            ciphers.pop(client_socket)
            selector.unregister(client_socket)
            client_socket.close()

            if not break_:
                logger.info("Соединение с клиентом закрыто")
            else:
                logger.info("Соединение с клиентом разорвано")

        except Exception as e:
            logger.error(f"Ошибка при закрытии соединения: {e}")

    def shutdown_server():
        nonlocal server_running
        server_running = False
        # The notebook waits here for one more event (select(timeout=None)); a bounded wait
        # keeps the same behaviour without hanging when no other client is active.
        events = selector.select(timeout=0.5)
        for key, _ in events:
            if key.data == send_echo:
                close_connection(key.fileobj)

    server_socket = socket.socket(family(args.host), socket.SOCK_STREAM)
    server_socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server_socket.bind((args.host, args.port))
    server_socket.listen()
    server_socket.setblocking(False)
    selector.register(server_socket, selectors.EVENT_READ, accept_connection)

    logger.info("Сервер запущен и ожидает подключений...")
    ready(server_socket)
    while server_running:
        try:
            events = selector.select(timeout=None)
            for key, _ in events:
                callback = key.data
                callback(key.fileobj)
        except Exception as e:
            logger.error(f"Ошибка в основном цикле сервера: {e}")

    logger.info("Сервер закрыт")
    server_socket.close()


# ---------------------------------------------------------------------------------------
# Fernet clients in the notebook's style

def fernet_client(args):
    sock = socket.create_connection((args.host, args.port), timeout=args.timeout)
    key = sock.recv(1024)
    cipher = Fernet(key)
    for line in sys.stdin:
        message = line.rstrip("\n")
        sock.sendall(cipher.encrypt(message.encode()))
        data = cipher.decrypt(sock.recv(1024))
        print(data.decode('utf-8'), flush=True)
        if message in ('exit', 'shutdown'):
            break
        time.sleep(PAUSE)
    sock.close()


def fernet_udp_client(args):
    sock = socket.socket(family(args.host), socket.SOCK_DGRAM)
    sock.settimeout(args.timeout)
    server = (args.host, args.port)
    sock.sendto(b"key", server)
    key, _ = sock.recvfrom(1024)
    cipher = Fernet(key)
    for line in sys.stdin:
        message = line.rstrip("\n")
        sock.sendto(cipher.encrypt(message.encode()), server)
        data, _ = sock.recvfrom(1024)
        print(cipher.decrypt(data).decode('utf-8'), flush=True)
        if message in ('exit', 'shutdown'):
            break
    sock.close()


PROGRAMS = {
    "dh-server": dh_server,
    "dh-client": dh_client,
    "fernet-server": fernet_server,
    "fernet-client": fernet_client,
    "fernet-udp-server": fernet_udp_server,
    "fernet-udp-client": fernet_udp_client,
}


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("program", choices=sorted(PROGRAMS))
    p.add_argument("-H", "--host", default="127.0.0.1")
    p.add_argument("-p", "--port", type=int, default=9090)
    p.add_argument("--lifetime", type=float, default=60.0, help="exit after this many seconds")
    p.add_argument("--timeout", type=float, default=10.0, help="client socket timeout")
    p.add_argument("--dh-params", help="dh-server: PKCS#3 PEM (default: a notebook-made group)")
    p.add_argument("--generate", action="store_true",
                   help="dh-server: generate parameters as the notebook does (~20 s)")
    p.add_argument("--mode", choices=("strict", "robust"), default="strict",
                   help="dh-client: one recv(1024) per part, or read to PEM ends / 16-byte IV")
    args = p.parse_args()
    watchdog(args.lifetime)
    try:
        PROGRAMS[args.program](args)
    except (OSError, ValueError) as e:
        print(f"notebook_peers {args.program}: {e!r}", file=sys.stderr)
        sys.exit(1)
    except Exception as e:  # e.g. cryptography.fernet.InvalidToken
        print(f"notebook_peers {args.program}: {type(e).__name__}: {e}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
