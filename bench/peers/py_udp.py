# SPDX-License-Identifier: MIT
"""The course notebook's UDP echo server (Exercise 5), as a bench peer.

The notebook's code, changed only so that it can be driven: the port is an argument
(0 picks a free one) and a readiness line `listening on 127.0.0.1:PORT` is printed and
flushed. It still prints a line for every datagram it echoes, as the notebook does
(bench/run.sh sends its stdout to a file).

Usage: python3 py_udp.py PORT   (drive with `secho bench -t udp --payload text`: it
decodes every datagram as UTF-8)
"""
import socket
import sys


def start_udp_server(port):
    server_socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    server_socket.bind(('localhost', port))
    print("Сервер запущен и ожидает сообщений...")
    print(f"listening on 127.0.0.1:{server_socket.getsockname()[1]}", flush=True)

    while True:
        data, client_address = server_socket.recvfrom(1024)
        server_socket.sendto(data, client_address)

        if data.decode() == 'exit':
            print("Сервер закрыт")
            server_socket.close()
            break

        print(f'Отправлен эхо-ответ "{data.decode()}" на адрес {client_address}')


if __name__ == '__main__':
    start_udp_server(int(sys.argv[1]))
