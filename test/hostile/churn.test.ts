// H73: short TLS connections (and failed handshakes) leave nothing behind: every RpcConnection and
// TlsStream of both ends is collectable after close. `npm run hardening` runs 10,000 of them.
import test from 'ava';

import { expectKtls } from '../native/helpers.js';
import { describeChurn, runChurn } from './churn.js';

test('H73 TLS connection churn (probe, handshake, NULL, close; every 10th handshake fails): no RpcConnection or TlsStream left alive after GC', async (t) => {
  const r = await runChurn(expectKtls ? 100 : 400);
  t.log(describeChurn(r));
  t.is(r.succeeded + r.failedHandshakes, r.connections);
  t.is(r.failedHandshakes, r.connections / 10);
  if (expectKtls) t.true(r.offload, 'kernel mode: offload installed');
  t.true(r.liveConnections <= 5, `${r.liveConnections} RpcConnection alive`);
  t.true(r.liveStreams <= 5, `${r.liveStreams} TlsStream alive`);
});
