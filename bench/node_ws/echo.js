// A Node `ws` echo server: a comparison point for spaced in bench/run.sh.
//
//   node echo.js [PORT [ADDRESS]]     (defaults: 0, 127.0.0.1)
//
// Prints `listening on http://ADDRESS:PORT` (the real port when PORT is 0) and
// echoes every message back with the same opcode. permessage-deflate is off,
// as in the other servers compared. SIGINT or SIGTERM stops it.
'use strict';

const { WebSocketServer } = require('ws');

const port = Number(process.argv[2] || 0);
const host = process.argv[3] || '127.0.0.1';
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error(`echo.js: bad port '${process.argv[2]}'`);
  process.exit(2);
}

const wss = new WebSocketServer({ port, host, perMessageDeflate: false, backlog: 4096 });

wss.on('listening', () => {
  console.log(`listening on http://${host}:${wss.address().port}`);
});

wss.on('connection', (ws) => {
  ws.on('message', (data, isBinary) => {
    ws.send(data, { binary: isBinary });
  });
  ws.on('error', () => {});
});

wss.on('error', (err) => {
  console.error(`echo.js: ${err.message}`);
  process.exit(1);
});

function stop() {
  for (const ws of wss.clients) ws.terminate();
  wss.close(() => process.exit(0));
}
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
