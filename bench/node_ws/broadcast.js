// A Node `ws` broadcast server: the comparison point for a room's fan-out in
// bench/run.sh (as raw-lws-echo --broadcast is for libwebsockets).
//
//   node broadcast.js [PORT [ADDRESS]]     (defaults: 0, 127.0.0.1)
//
// Prints `listening on http://ADDRESS:PORT` (the real port when PORT is 0) and
// sends every message it receives to every connected client, the sender
// included, with the same opcode: `ws`'s usual broadcast, one client.send()
// per recipient. permessage-deflate is off. SIGINT or SIGTERM stops it.
'use strict';

const { serve } = require('./serve.js');

serve('broadcast.js', (ws, wss) => {
  ws.on('message', (data, isBinary) => {
    for (const client of wss.clients) client.send(data, { binary: isBinary });
  });
});
