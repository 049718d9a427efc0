// Noticing that an HTTP client has hung up while its reply is still being generated, without
// writing to it. cpp-httplib 0.11 (Debian 12's) neither hands a handler its socket nor tells it
// that the connection closed, so a non-streamed reply used to run to max_tokens for nobody, and
// a stream noticed only once a write failed (after the socket buffers filled).
#pragma once

#include <string>

namespace lowbit {

// The connected TCP socket of this process whose local port is local_port and whose peer is
// remote_addr:remote_port (a request's addresses as cpp-httplib reports them: numeric host, e.g.
// "127.0.0.1" or "::1"); -1 if there is none. Looks at every open descriptor (/proc/self/fd),
// so call it once per request, not per token. The descriptor stays the connection's while its
// handler runs: cpp-httplib closes it after the handler returns.
int connection_socket(const std::string& remote_addr, int remote_port, int local_port);

// True once the peer of connected socket fd has closed the connection or it failed (EOF or an
// error pending); false while it is open, whether or not unread bytes wait (a pipelined next
// request). A client that half-closes (shutdown of its sending side) and still waits for the
// reply counts as gone: HTTP/1.1 clients do not do that. Never blocks, never reads data.
bool peer_hung_up(int fd);

}  // namespace lowbit
