// Whether a host name is this machine: decides what may be spoken to without TLS (a local SMTP relay) and what doctor
// may connect to (nothing off this machine).
const LOOPBACK = new Set(['localhost', '127.0.0.1', '::1', '[::1]']);

export function isLoopbackHost(host: string): boolean {
  return LOOPBACK.has(host) || host.startsWith('127.');
}
