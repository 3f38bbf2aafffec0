// Generic netlink encoding/decoding and the handshake family's ACCEPT attributes, on bytes laid out as
// the kernel sends them (little-endian attributes, 4-byte alignment, nested x509 certificates).
import test from 'ava';

import { AcceptAttr, AuthMode, HandshakeCmd, MsgType, X509Attr, parseAccept } from '../../src/agent/handshake-netlink.js';
import { Attrs, NetlinkError, NlmsgType, decodeDatagram, encodeAttrs, encodeGenl } from '../../src/agent/netlink.js';

const FAMILY = 0x1d;

function acceptMessage(attrs: Parameters<typeof encodeAttrs>[0]): Buffer {
  return encodeGenl(FAMILY, 0, 7, HandshakeCmd.ACCEPT, 1, attrs);
}

test('attributes round-trip: u32, strings (NUL, padded), repeated and nested', (t) => {
  const bytes = encodeAttrs([
    { type: 1, value: { u32: 0xfeedbeef } },
    { type: 8, value: { string: 'nfs.test' } },
    { type: 6, value: { u32: 11 } },
    { type: 6, value: { u32: 12 } },
    { type: 7, value: { nested: [{ type: 1, value: { u32: 100 } }, { type: 2, value: { u32: 200 } }] } },
  ]);
  t.is(bytes.length % 4, 0);
  const a = Attrs.decode(bytes);
  t.is(a.u32(1), 0xfeedbeef);
  t.is(a.string(8), 'nfs.test');
  t.deepEqual(a.all(6).map((b) => b.readUInt32LE(0)), [11, 12]);
  const [nested] = a.nested(7);
  t.is(nested?.u32(1), 100);
  t.is(nested?.u32(2), 200);
  t.is(bytes.readUInt16LE(4 + 4 + 4 + 12 + 8 + 8 + 2) & 0x8000, 0x8000, 'NLA_F_NESTED set on the nest');
});

test('an ACCEPT reply becomes a request: ServerHello and ClientHello, timeout, peername, keyring certificates', (t) => {
  const [server] = decodeDatagram(acceptMessage([
    { type: AcceptAttr.SOCKFD, value: { u32: 19 } },
    { type: AcceptAttr.HANDLER_CLASS, value: { u32: 1 } },
    { type: AcceptAttr.MESSAGE_TYPE, value: { u32: MsgType.SERVERHELLO } },
    { type: AcceptAttr.AUTH_MODE, value: { u32: AuthMode.X509 } },
  ]));
  t.like(parseAccept(server as never), { sockfd: 19, role: 'server', authMode: 'x509', timeoutMs: undefined, peername: undefined });

  const [client] = decodeDatagram(acceptMessage([
    { type: AcceptAttr.SOCKFD, value: { u32: 21 } },
    { type: AcceptAttr.MESSAGE_TYPE, value: { u32: MsgType.CLIENTHELLO } },
    { type: AcceptAttr.TIMEOUT, value: { u32: 10_000 } },
    { type: AcceptAttr.AUTH_MODE, value: { u32: AuthMode.UNAUTH } },
    { type: AcceptAttr.PEER_IDENTITY, value: { u32: 5 } },
    { type: AcceptAttr.CERTIFICATE, value: { nested: [{ type: X509Attr.CERT, value: { u32: 31 } }, { type: X509Attr.PRIVKEY, value: { u32: 32 } }] } },
    { type: AcceptAttr.PEERNAME, value: { string: 'nfs.test' } },
    { type: AcceptAttr.KEYRING, value: { u32: 77 } },
  ]));
  t.deepEqual(parseAccept(client as never), {
    sockfd: 21, role: 'client', authMode: 'unauth', timeoutMs: 10_000, peername: 'nfs.test',
    peerIdentities: [5], certificates: [{ cert: 31, privkey: 32 }], keyring: 77,
  });
});

test('errors and acks; malformed lengths and ACCEPT replies are coded errors', (t) => {
  const error = Buffer.alloc(36);
  error.writeUInt32LE(36, 0);
  error.writeUInt16LE(NlmsgType.ERROR, 4);
  error.writeUInt32LE(42, 8);
  error.writeInt32LE(-11, 16); // -EAGAIN, then the request's header
  t.deepEqual(decodeDatagram(error), [{ seq: 42, error: -11 }]);

  const short = Buffer.alloc(16);
  short.writeUInt32LE(8, 0);
  t.throws(() => decodeDatagram(short), { instanceOf: NetlinkError, message: /claims 8 bytes/ });
  const long = acceptMessage([{ type: AcceptAttr.SOCKFD, value: { u32: 1 } }]);
  long.writeUInt32LE(long.length + 4, 0);
  t.throws(() => decodeDatagram(long), { instanceOf: NetlinkError });
  const lyingAttr = Buffer.from([200, 0, 1, 0, 0, 0, 0, 0]);
  t.throws(() => Attrs.decode(lyingAttr), { message: /attribute 1 claims 200 bytes/ });

  const [noFd] = decodeDatagram(acceptMessage([{ type: AcceptAttr.MESSAGE_TYPE, value: { u32: MsgType.CLIENTHELLO } }]));
  t.throws(() => parseAccept(noFd as never), { message: /without sockfd/ });
  const [badType] = decodeDatagram(acceptMessage([{ type: AcceptAttr.SOCKFD, value: { u32: 3 } }, { type: AcceptAttr.MESSAGE_TYPE, value: { u32: 9 } }]));
  t.throws(() => parseAccept(badType as never), { message: /unknown message-type 9/ });
});
