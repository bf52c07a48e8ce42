/** Vocabulary shared by every subsystem: where a socket is, and ranges of ports. Leaf module. */

/** One end of a TCP connection: an IP address (or host name, before resolution) and a port. */
export interface Endpoint {
  host: string;
  port: number;
}

/** Ports first..last, both included. */
export interface PortRange {
  first: number;
  last: number;
}
