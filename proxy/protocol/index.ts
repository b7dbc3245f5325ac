/**
 * The MySQL wire codec, socket-free: framing (packet-reader), building packets (encode,
 * packet-writer), reading them (decode, command, handshake), password proofs (auth) and response
 * boundaries (response-tracker). Nothing under this folder does I/O or keeps a clock; the proxy
 * owns sockets and timers and drives these pieces with bytes.
 */
export * from './constants';
export * from './errors';
export * from './encode';
export * from './decode';
export * from './packet-reader';
export * from './copy-range';
export * from './packet-writer';
export * from './command';
export * from './handshake';
export * from './auth';
export * from './response-tracker';
