# Sourced by tools/fuzz/run: the HTTP/2 session input (source/http/http2) target. Seeds are
# in tools/fuzz/corpus/http2/.
TARGETS[http2_session]="tools/fuzz/http2_session_fuzz.cc source/http/http2/codec.cc|-lnghttp2"
