#pragma once
// httplib (0.11) does not tell a handler whether its client is still there.
// The request does carry both ends' addresses, and while the handler runs
// its connection's socket stays open on this thread, so the socket can be
// found by those addresses and polled: a peer that closed its end (EOF or
// reset) means the client went away and its request should be cancelled.
#include <httplib.h>

namespace nucleus::server {

// The file descriptor of the connection `req` arrived on; -1 when not found.
int find_request_socket(const httplib::Request& req);

// True when the peer has closed or reset the connection (never blocks).
// Pipelined bytes waiting to be read do not count as closed.
bool peer_closed(int fd);

}  // namespace nucleus::server
