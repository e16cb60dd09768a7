#pragma once

#include <cstdint>

#include "absl/status/statusor.h"
#include "source/network/address.h"

namespace pounce::network {

// A bound, listening, non-blocking socket. TCP sockets use SO_REUSEPORT so each I/O thread
// can own one for the same address (the kernel spreads connections across them).
// For a Unix socket, a stale socket file (nothing listening) is removed first; a live one
// is an error.
absl::StatusOr<int> createListenSocket(const Address& address, int backlog, uint32_t pipe_mode);

// Removes a Unix socket file if it is still the one this process created.
void removeSocketFile(const Address& address, uint64_t inode);
uint64_t socketFileInode(const Address& address);

} // namespace pounce::network
