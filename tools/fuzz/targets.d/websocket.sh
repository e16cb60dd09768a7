# Sourced by tools/fuzz/run: the WebSocket frame parser (through a server Session).
# Seeds: tools/fuzz/corpus/websocket/.
TARGETS[websocket_frames]="tools/fuzz/websocket_fuzz.cc source/http/websocket/decoder.cc source/http/websocket/deflate.cc source/http/websocket/encoder.cc source/http/websocket/frame.cc source/http/websocket/session.cc source/http/websocket/utf8.cc|-lz"
