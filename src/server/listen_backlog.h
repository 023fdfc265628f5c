#pragma once
// Debian's compiled cpp-httplib listens with a backlog of 5 (a compile-time
// constant of the shared library), so a burst of connections on a busy
// machine overflows the accept queue and clients see "connection reset".
// Linux lets a second listen() on the same socket raise the backlog; the
// socket is found among the process's descriptors by its bound port.
namespace nucleus::server {

// Raises the backlog of this process's listening TCP socket(s) on `port`.
// Returns how many sockets were changed (0 when none was found).
int raise_listen_backlog(int port, int backlog = 1024);

}  // namespace nucleus::server
