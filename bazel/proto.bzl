"""pounce_proto_library: compiles .proto files with the system protoc.

Each proto package under api/proto has a BUILD calling this macro. Generated headers are
included by their proto path, e.g. "pounce/config/v1/bootstrap.pb.h".
"""

PROTO_ROOT = "api/proto"

def pounce_proto_library(name, srcs, deps = [], visibility = ["//visibility:public"]):
    pkg = native.package_name()
    if not pkg.startswith(PROTO_ROOT + "/"):
        fail("pounce_proto_library must live under " + PROTO_ROOT)
    hdrs = [s[:-len(".proto")] + ".pb.h" for s in srcs]
    ccs = [s[:-len(".proto")] + ".pb.cc" for s in srcs]

    # All .proto files this one may import: its own and its deps' (transitively, through
    # the deps' *_protos filegroups).
    native.filegroup(
        name = name + "_protos",
        srcs = srcs + [d + "_protos" for d in deps],
        visibility = visibility,
    )
    native.genrule(
        name = name + "_gen",
        srcs = [":" + name + "_protos"],
        outs = hdrs + ccs,
        cmd = "protoc --proto_path=%s --cpp_out=$(GENDIR)/%s %s" % (
            PROTO_ROOT,
            PROTO_ROOT,
            " ".join([pkg + "/" + s for s in srcs]),
        ),
        message = "protoc " + pkg,
    )
    native.cc_library(
        name = name,
        srcs = ccs,
        hdrs = hdrs,
        strip_include_prefix = "/" + PROTO_ROOT,
        deps = deps,
        copts = ["-Wno-unused-parameter"],
        linkopts = ["-lprotobuf"],
        visibility = visibility,
    )
