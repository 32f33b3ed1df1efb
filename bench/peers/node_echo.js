// SPDX-License-Identifier: MIT
// A Node.js echo server with the standard library only (`net`, `dgram`): a peer for
// bench/run.sh, not part of secho. TCP: each socket piped into itself (Node's own
// back-pressure); UDP: each datagram sent back to its sender.
//
// Usage: node node_echo.js tcp|udp PORT   (binds 127.0.0.1; PORT 0 picks a free one;
// prints "listening on 127.0.0.1:PORT" once ready, like secho server).
'use strict';
const net = require('net');
const dgram = require('dgram');

const [transport, portArg] = process.argv.slice(2);
const port = Number(portArg);
if (!['tcp', 'udp'].includes(transport) || !Number.isInteger(port)) {
  console.error('usage: node node_echo.js tcp|udp PORT');
  process.exit(2);
}
const ready = (p) => process.stdout.write(`listening on 127.0.0.1:${p}\n`);

if (transport === 'tcp') {
  const server = net.createServer({ noDelay: true }, (sock) => {
    sock.on('error', () => sock.destroy());
    sock.pipe(sock);
  });
  server.listen({ host: '127.0.0.1', port, backlog: 1024 }, () => ready(server.address().port));
} else {
  const sock = dgram.createSocket('udp4');
  sock.on('message', (msg, rinfo) => sock.send(msg, rinfo.port, rinfo.address));
  sock.on('error', (e) => { console.error(e.message); });
  sock.bind(port, '127.0.0.1', () => ready(sock.address().port));
}
