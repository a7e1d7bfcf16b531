// Preloaded (NODE_OPTIONS=--require) into both Node peers by bench/load: their HTTPS connections
// go through the CONNECT proxy in HTTPS_PROXY, as the Go binaries' do, so firebase-admin fetches
// Google's keys from the stand-in unmodified. Node 20's https ignores HTTPS_PROXY, and
// firebase-admin's key fetch uses https.globalAgent; NODE_EXTRA_CA_CERTS trusts the stand-in.
'use strict';
const http = require('node:http');
const https = require('node:https');
const tls = require('node:tls');

const proxy = new URL(process.env.HTTPS_PROXY);

class ProxyAgent extends https.Agent {
  createConnection(options, done) {
    const target = `${options.host}:${options.port}`;
    const connect = http.request({ host: proxy.hostname, port: proxy.port, method: 'CONNECT', path: target });
    connect.once('connect', (res, socket) => {
      if (res.statusCode !== 200) {
        socket.destroy();
        done(new Error(`the proxy refused ${target}: ${res.statusCode}`));
        return;
      }
      done(null, tls.connect({ ...options, socket }));
    });
    connect.once('error', done);
    connect.end();
  }
}

https.globalAgent = new ProxyAgent({ keepAlive: true });
