# SPDX-License-Identifier: MIT
"""The course notebook's thread-per-connection echo server (Exercise 2), as a bench peer.

The notebook's code, changed only so that it can be driven: the port is an argument
(0 picks a free one) and a readiness line `listening on 127.0.0.1:PORT` is printed and
flushed. Everything else is the notebook's, including what it does wrong (after a client
closes, its thread keeps calling recv, which returns b'' at once: bench/run.sh samples
CPU time before the load closes its connections, and stops the server after each run).

Usage: python3 py_threaded.py PORT [py:N|sha:KIB]
(drive with `secho bench --payload text`: it decodes every read as UTF-8)

For docs/CONCURRENCY.md only, an optional second argument adds work to every read before it
is echoed, so that the same server can be measured with CPU-bound messages:
`py:N` runs a pure-Python loop of N additions (it holds the GIL), `sha:K` hashes K KiB
with hashlib.sha256 (which releases the GIL while it hashes more than 2 KiB). Without it
the server is the notebook's, unchanged.
"""
import hashlib
import socket
import sys
import threading


def make_work(spec):
    """The optional extra work per read (see the module's docstring); None: none."""
    if not spec:
        return None
    kind, n = spec.split(':')
    n = int(n)
    if kind == 'py':
        def work():
            x = 0
            for i in range(n):
                x += i
            return x
    elif kind == 'sha':
        block = bytes(n * 1024)

        def work():
            return hashlib.sha256(block).digest()
    else:
        raise SystemExit(f'unknown work {spec!r}: py:N or sha:KIB')
    return work


work = make_work(sys.argv[2] if len(sys.argv) > 2 else None)


def handle_client(client_socket, server_socket):
    """Обрабатывает соединение с клиентом в отдельном потоке."""
    try:
        while True:
            message = client_socket.recv(1024)
            if work:
                work()
            client_socket.sendall(message)
            if message.decode('utf-8') in ('exit', None):
                break  # Клиент закрыл соединение
    finally:
        client_socket.close()
        if message.decode('utf-8') == 'shutdown':
            server_socket.close()


def start_server(port):
    """Запускает сервер и обрабатывает множество соединений."""
    server_socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server_socket.bind(('localhost', port))
    server_socket.listen()
    print("Сервер запущен и ожидает подключений...")
    print(f"listening on 127.0.0.1:{server_socket.getsockname()[1]}", flush=True)

    while True:
        client_sock, address = server_socket.accept()
        print(f"Принято соединение от {address}")
        client_thread = threading.Thread(target=handle_client, args=(client_sock, server_socket))
        client_thread.start()


if __name__ == '__main__':
    start_server(int(sys.argv[1]))
