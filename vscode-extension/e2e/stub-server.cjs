#!/usr/bin/env node
// A stand-in for `codeswift lsp` used only by the e2e "stub" scenario: it speaks just enough of
// docs/protocol.md (initialize, inline completion, codeswift/status) to check the extension's UI
// without Python or a model. Every message it receives is appended to $CODESWIFT_STUB_LOG.
'use strict';
const fs = require('node:fs');

const logFile = process.env.CODESWIFT_STUB_LOG;
const record = (msg) => { if (logFile) fs.appendFileSync(logFile, JSON.stringify(msg) + '\n'); };
const send = (msg) => {
  const body = Buffer.from(JSON.stringify({ jsonrpc: '2.0', ...msg }), 'utf8');
  process.stdout.write(`Content-Length: ${body.length}\r\n\r\n`);
  process.stdout.write(body);
};
const COMPLETION = 'urn self.items.pop()';
let completions = 0;
const status = (state) => ({
  state, message: '', model: 'stub', device: 'cpu', dtype: 'float32', backend: 'stub', indexProgress: null,
  stats: completions === 0 ? {} : { completions, p50Ms: 42, p95Ms: 42, lastMs: 42, lastTokens: 6,
    acceptedPerStep: 3, speedup: 2.5, cacheHitRate: 0 },
});

function handle(msg) {
  record(msg);
  switch (msg.method) {
    case 'initialize':
      console.error(`stub: initialize with ${JSON.stringify(msg.params.initializationOptions)}`);
      return send({ id: msg.id, result: { capabilities: { textDocumentSync: 2, inlineCompletionProvider: true } } });
    case 'initialized':
      send({ method: 'codeswift/status', params: status('loading') });
      return setTimeout(() => send({ method: 'codeswift/status', params: status('ready') }), 500);
    case 'textDocument/inlineCompletion': {
      const { textDocument, position } = msg.params;
      completions += 1;
      send({ id: msg.id, result: { items: [{
        insertText: COMPLETION,
        range: { start: position, end: position },
        command: { title: 'codeswift accepted', command: 'codeswift.accepted', arguments: [textDocument.uri, `stub-${completions}`] },
      }] } });
      return send({ method: 'codeswift/status', params: status('ready') });
    }
    case 'codeswift/status': return send({ id: msg.id, result: status('ready') });
    case 'codeswift/reindex': return send({ id: msg.id, result: { ok: true } });
    case 'shutdown': return send({ id: msg.id, result: null });
    case 'exit': return process.exit(0);
    default:
      if (msg.id !== undefined && msg.method !== undefined) send({ id: msg.id, result: null });
  }
}

let buffer = Buffer.alloc(0);
process.stdin.on('data', (chunk) => {
  buffer = Buffer.concat([buffer, chunk]);
  for (;;) {
    const headerEnd = buffer.indexOf('\r\n\r\n');
    if (headerEnd < 0) return;
    const length = Number(/Content-Length: (\d+)/i.exec(buffer.subarray(0, headerEnd).toString())[1]);
    if (buffer.length < headerEnd + 4 + length) return;
    handle(JSON.parse(buffer.subarray(headerEnd + 4, headerEnd + 4 + length).toString('utf8')));
    buffer = buffer.subarray(headerEnd + 4 + length);
  }
});
