"""Common flags and the system libraries pounce links against."""

POUNCE_COPTS = ["-Werror=return-type", "-Werror=switch"]

# System libraries, one list per Debian -dev package, so a target names what it uses.
LIBEVENT = ["-levent_core", "-levent_pthreads"]
NGHTTP2 = ["-lnghttp2"]
OPENSSL = ["-lssl", "-lcrypto"]
ZLIB = ["-lz"]
BROTLI = ["-lbrotlienc", "-lbrotlidec"]
ZSTD = ["-lzstd"]
LIBDEFLATE = ["-ldeflate"]
ISAL = ["-lisal"]
PROTOBUF = ["-lprotobuf"]
YAML_CPP = ["-lyaml-cpp"]
ABSL = [
    "-labsl_statusor",
    "-labsl_status",
    "-labsl_str_format_internal",
    "-labsl_strings",
    "-labsl_strings_internal",
    "-labsl_cord",
    "-labsl_cordz_info",
    "-labsl_cord_internal",
    "-labsl_cordz_functions",
    "-labsl_cordz_handle",
    "-labsl_exponential_biased",
    "-labsl_synchronization",
    "-labsl_graphcycles_internal",
    "-labsl_stacktrace",
    "-labsl_symbolize",
    "-labsl_debugging_internal",
    "-labsl_demangle_internal",
    "-labsl_malloc_internal",
    "-labsl_time",
    "-labsl_civil_time",
    "-labsl_time_zone",
    "-labsl_int128",
    "-labsl_strerror",
    "-labsl_base",
    "-labsl_spinlock_wait",
    "-labsl_throw_delegate",
    "-labsl_raw_logging_internal",
    "-labsl_log_severity",
]
PYTHON = ["-lpython3.11", "-ldl", "-lm"]
PYTHON_COPTS = ["-I/usr/include/python3.11"]
GTEST = ["-lgtest", "-lgmock", "-pthread"]
GTEST_MAIN = ["-lgtest_main"]

def pounce_cc_library(name, copts = [], **kwargs):
    native.cc_library(name = name, copts = POUNCE_COPTS + copts, **kwargs)

def pounce_cc_test(name, srcs, deps = [], linkopts = [], copts = [], main = True, **kwargs):
    native.cc_test(
        name = name,
        srcs = srcs,
        deps = deps,
        copts = POUNCE_COPTS + copts,
        linkopts = linkopts + GTEST + (GTEST_MAIN if main else []),
        linkstatic = True,
        **kwargs
    )
