// The part the Node `ws` comparison servers share (echo.js, broadcast.js):
// the command line, the listening socket and the stop on SIGINT or SIGTERM.
//
//   serve(name, onConnection)
//
// reads `[PORT [ADDRESS]]` (defaults: 0, 127.0.0.1), listens with
// permessage-deflate off (as in the other servers compared), prints
// `listening on http://ADDRESS:PORT` (the real port when PORT is 0) and
// calls onConnection(ws, wss) for every new connection.
'use strict';

const { WebSocketServer } = require('ws');

function serve(name, onConnection) {
  const port = Number(process.argv[2] || 0);
  const host = process.argv[3] || '127.0.0.1';
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    console.error(`${name}: bad port '${process.argv[2]}'`);
    process.exit(2);
  }

  const wss = new WebSocketServer({ port, host, perMessageDeflate: false, backlog: 4096 });

  wss.on('listening', () => {
    console.log(`listening on http://${host}:${wss.address().port}`);
  });

  wss.on('connection', (ws) => {
    ws.on('error', () => {});
    onConnection(ws, wss);
  });

  wss.on('error', (err) => {
    console.error(`${name}: ${err.message}`);
    process.exit(1);
  });

  function stop() {
    for (const ws of wss.clients) ws.terminate();
    wss.close(() => process.exit(0));
  }
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  return wss;
}

module.exports = { serve };
