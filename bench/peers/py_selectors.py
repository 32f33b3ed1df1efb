# SPDX-License-Identifier: MIT
"""The course notebook's selectors echo server (Exercise 6), as a bench peer.

The notebook's code, changed only so that it can be driven: the port is an argument
(0 picks a free one) and a readiness line `listening on 127.0.0.1:PORT` is printed and
flushed. One thread, one `selectors.DefaultSelector` (epoll on Linux), recv(1024) and a
blocking-style sendall on a non-blocking socket, as in the notebook.

Usage: python3 py_selectors.py PORT [py:N|sha:KIB]
(drive with `secho bench --payload text`: it decodes every read as UTF-8)

For docs/CONCURRENCY.md only, an optional second argument adds work to every read before it
is echoed, so that the same server can be measured with CPU-bound messages:
`py:N` runs a pure-Python loop of N additions (it holds the GIL), `sha:K` hashes K KiB
with hashlib.sha256 (which releases the GIL while it hashes more than 2 KiB). Without it
the server is the notebook's, unchanged.
"""
import hashlib
import logging
import selectors
import socket
import sys


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

selector = selectors.DefaultSelector()
server_running = True

logging.basicConfig(level=logging.INFO, format='%(asctime)s - %(message)s')
logger = logging.getLogger()


def accept_connection(server_socket):
    try:
        client_socket, client_address = server_socket.accept()
        logger.info(f"Подключение от {client_address}")
        client_socket.setblocking(False)
        selector.register(client_socket, selectors.EVENT_READ, send_echo)
    except Exception as e:
        logger.error(f"Ошибка при подключении клиента: {e}")


def send_echo(client_socket):
    try:
        data = client_socket.recv(1024)
        if work:
            work()

        if data:
            client_socket.sendall(data)

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
        selector.unregister(client_socket)
        client_socket.close()

        if not break_:
            logger.info("Соединение с клиентом закрыто")
        else:
            logger.info("Соединение с клиентом разорвано")

    except Exception as e:
        logger.error(f"Ошибка при закрытии соединения: {e}")


def shutdown_server():
    global server_running
    server_running = False
    events = selector.select(timeout=None)
    for key, _ in events:
        if key.data == send_echo:
            close_connection(key.fileobj)


def start_server(port):
    global server_running
    server_socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server_socket.bind(('localhost', port))
    server_socket.listen()
    server_socket.setblocking(False)
    selector.register(server_socket, selectors.EVENT_READ, accept_connection)

    logger.info("Сервер запущен и ожидает подключений...")
    print(f"listening on 127.0.0.1:{server_socket.getsockname()[1]}", flush=True)
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


if __name__ == '__main__':
    start_server(int(sys.argv[1]))
