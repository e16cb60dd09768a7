#include "source/common/server_context.h"

namespace pounce {

namespace {
thread_local int t_io_thread = -1;
} // namespace

int currentIoThread() { return t_io_thread; }
void setCurrentIoThread(int index) { t_io_thread = index; }

} // namespace pounce
