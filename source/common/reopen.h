#pragma once

#include <functional>
#include <string>
#include <vector>

namespace pounce {

// Files a process appends to that log rotation renames away (access logs). On SIGUSR1 and
// the admin API's POST /reopen_logs each is opened again by its path, as nginx does on
// USR1 and Envoy on /reopen_logs; until then lines go on into the renamed file.

// Reopens some files; returns a line per file that could not be reopened (it keeps the
// old one).
using ReopenHook = std::function<std::vector<std::string>()>;

// Called once per kind of file (at static initialisation is fine).
void addReopenHook(ReopenHook hook);

// Runs every hook; returns their problems. Any thread.
std::vector<std::string> reopenFiles();

} // namespace pounce
