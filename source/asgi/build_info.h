#pragma once

#include <string>

namespace pounce::asgi {

// "CPython 3.11.2 (GIL)" or "CPython 3.13.0 (free-threaded)", from the headers pounce was
// built against; does not start the interpreter.
std::string pythonBuildInfo();
bool pythonFreeThreaded();

} // namespace pounce::asgi
