#pragma once

#include <chrono>
#include <cstdint>
#include <functional>

#include "absl/status/statusor.h"
#include "source/common/event/dispatcher.h"
#include "source/network/address.h"

namespace pounce::network {

// A bound, listening, non-blocking socket. TCP sockets use SO_REUSEPORT (with `reuse_port`,
// the default) so each I/O thread can own one for the same address (the kernel spreads
// connections across them); without it (the admin API) no other socket may share the port.
// For a Unix socket, a stale socket file (nothing listening) is removed first; a live one
// is an error.
absl::StatusOr<int> createListenSocket(const Address& address, int backlog, uint32_t pipe_mode,
                                       bool reuse_port = true);

// Fails if some socket already listens on this TCP address: another process, or another
// listener (or the admin API) of the same config. SO_REUSEPORT would let the new sockets
// share the port silently and split its connections. Called once per address at start-up,
// before its sockets are made. (Unix sockets are checked by createListenSocket itself.)
absl::Status checkAddressFree(const Address& address);

// Removes a Unix socket file if it is still the one this process created.
void removeSocketFile(const Address& address, uint64_t inode);
uint64_t socketFileInode(const Address& address);

// Did accept() fail for want of descriptors or memory (EMFILE, ENFILE, ENOBUFS, ENOMEM)?
// The connection then stays in the backlog and a level-triggered listen socket stays
// readable: watched, it would wake its loop (and log) at full speed.
bool acceptOutOfResources(int error);

// Stops watching a listen socket for `delay`, as nginx does after such a failure:
// `accept_event` is released once the callback running now returns, and `retry_timer`
// (made on first use) calls `restart`, which watches it again, after `delay`.
void pauseAccepting(event::Dispatcher& dispatcher, event::FileEventPtr& accept_event,
                    event::TimerPtr& retry_timer, std::function<void()> restart,
                    std::chrono::milliseconds delay);

} // namespace pounce::network
