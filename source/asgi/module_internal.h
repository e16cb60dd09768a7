#pragma once

// What the _pounce module's HTTP objects (module.cc) share with its WebSocket objects
// (websocket_module.cc). Python thread only, GIL held.

#include "source/asgi/bridge.h"
#include "source/http/headers.h"

namespace pounce::asgi {

class LoopThread;

namespace py {

// The object behind receive() and send(): the stream it serves and the stream's loop.
struct ChannelObject {
  PyObject_HEAD AsgiStream* stream;
  LoopThread* loop;
};

// A new channel of `type` holding a reference to the stream (counted in py_holders).
PyObject* newChannelObject(PyTypeObject* type, LoopThread& loop, const StreamRef& stream);
// tp_dealloc of channel types: releases the stream's Python side with its last holder.
void channelObjectDealloc(PyObject* self);
// An awaitable that completes at once with `value` (stolen).
PyObject* readyAwaitable(PyObject* value);
// An awaitable that completes at once with None.
PyObject* doneAwaitable();
// Response headers from an ASGI message's `headers` (None, or [name, value] pairs).
bool headersFromPython(PyObject* list, http::HeaderMap& out);
// What send() returns after queueing output: done, or a future resolved when the client
// side has room again (queued_out_bytes / downstream_blocked / send_waiter).
PyObject* sendBackpressure(ChannelObject* channel);
// send()'s argument: stores the message dict in `message` and returns its `type` (both
// borrowed), or nullptr with a Python error set (not one dict, or no 'type' key).
PyObject* sendMessageType(PyObject* args, PyObject*& message);
// The HTTP send() applied to `message` (an http.response.* message) on `channel`'s stream.
PyObject* httpSend(PyObject* channel, PyObject* message);

// websocket_module.cc: readies the WebSocket types and names (once, from initTypes and
// initNames).
bool initWebSocketTypes();
bool initWebSocketNames();

} // namespace py
} // namespace pounce::asgi
