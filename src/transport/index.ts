/**
 * Transport: turns byte streams into records and back (record marking). It knows nothing about what a
 * record means; the TLS upgrade swaps the stream under this layer.
 */
export * from './record-marking.js';
export * from './errors.js';
export * from './channel.js';
