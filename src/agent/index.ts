// Handshake agent (the tlshd role): owns the kernel's `handshake` netlink exchange (ACCEPT/DONE), the
// tlshd-format configuration, and the handshakes on sockets the kernel created, run by the native TLS
// engine of src/tls with kernel TLS required. It never touches the RPC layer: those sockets stay the
// kernel's.
export { HandshakeAgent, DoneStatus, PEER_ID_PLACEHOLDER } from './agent.js';
export type { AgentOptions, HandshakeOutcome, HandshakeTransport, LogEntry } from './agent.js';
export { capabilitiesLine, probeKernel } from './capabilities.js';
export type { KernelCapabilities, ProbeSources } from './capabilities.js';
export { AgentConfigError, DEFAULT_CONFIG_PATHS, loadAgentConfig, parseAgentConfig, resolveConfigPath } from './config.js';
export type { AgentConfig, SideCredentials } from './config.js';
export type { HandshakeRequest } from './handshake-netlink.js';
export { NetlinkError } from './netlink.js';
