// front.js: a Node.js http front service for the e2e concurrency tests.
// GET /front/{id} calls WEFT_E2E_BACK/items/{id}.1 and then /items/{id}.2
// (two sequential awaits) over a keep-alive agent and answers 200 "ok"
// when both answered 200. Prints its port alone on the first stdout line.
'use strict';
const http = require('http');

const back = new URL(process.env.WEFT_E2E_BACK);
const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });

function get(path) {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: back.hostname, port: back.port, path, agent }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode));
    });
    req.on('error', reject);
  });
}

const server = http.createServer(async (req, res) => {
  const m = /^\/front\/([^/?]+)/.exec(req.url);
  if (!m) {
    res.writeHead(404).end();
    return;
  }
  try {
    const a = await get(`/items/${m[1]}.1`);
    const b = await get(`/items/${m[1]}.2`);
    const ok = a === 200 && b === 200;
    res.writeHead(ok ? 200 : 502, { 'Content-Type': 'text/plain' }).end(ok ? 'ok\n' : 'bad gateway\n');
  } catch (e) {
    res.writeHead(502).end(String(e));
  }
});
server.keepAliveTimeout = 60000;
server.listen(0, '127.0.0.1', () => console.log(server.address().port));
