/** `host[:port]` arguments, including bracketed IPv6 (`[::1]:2049`) and bare IPv6 without a port. */
import net from 'node:net';
import { UsageError } from './args.js';

export interface Target {
  host: string;
  port: number;
}

export function parseTarget(command: string, text: string | undefined, defaultPort: number): Target {
  if (text === undefined || text === '') throw new UsageError(`rpctls ${command}: missing <host>[:<port>]`);
  let host: string;
  let portText: string | undefined;
  const bracketed = /^\[([^\]]+)\](?::(.*))?$/.exec(text);
  if (bracketed) {
    host = bracketed[1] as string;
    portText = bracketed[2];
    if (!net.isIPv6(host)) throw new UsageError(`rpctls ${command}: ${JSON.stringify(host)} in brackets is not an IPv6 address`);
  } else if (net.isIPv6(text)) {
    // Two or more colons and a valid address: IPv6 without a port.
    host = text;
  } else {
    const colon = text.lastIndexOf(':');
    if (colon !== -1 && text.indexOf(':') !== colon) {
      throw new UsageError(`rpctls ${command}: ${JSON.stringify(text)}: write IPv6 addresses with a port as [addr]:port`);
    }
    host = colon === -1 ? text : text.slice(0, colon);
    portText = colon === -1 ? undefined : text.slice(colon + 1);
  }
  if (host === '') throw new UsageError(`rpctls ${command}: missing host in ${JSON.stringify(text)}`);
  let port = defaultPort;
  if (portText !== undefined) {
    if (!/^\d+$/.test(portText) || Number(portText) < 1 || Number(portText) > 65535) {
      throw new UsageError(`rpctls ${command}: port must be an integer from 1 to 65535; got ${JSON.stringify(portText)}`);
    }
    port = Number(portText);
  }
  return { host, port };
}

/** host:port with IPv6 in brackets. */
export function formatHostPort(host: string, port: number): string {
  return net.isIPv6(host) ? `[${host}]:${port}` : `${host}:${port}`;
}
