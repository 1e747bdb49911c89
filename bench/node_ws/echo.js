// A Node `ws` echo server: a comparison point for spaced in bench/run.sh.
//
//   node echo.js [PORT [ADDRESS]]     (defaults: 0, 127.0.0.1)
//
// Prints `listening on http://ADDRESS:PORT` (the real port when PORT is 0) and
// echoes every message back with the same opcode. permessage-deflate is off,
// as in the other servers compared. SIGINT or SIGTERM stops it.
'use strict';

const { serve } = require('./serve.js');

serve('echo.js', (ws) => {
  ws.on('message', (data, isBinary) => {
    ws.send(data, { binary: isBinary });
  });
});
