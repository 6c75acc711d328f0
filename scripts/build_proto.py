"""Regenerate converter/proto/caffe.desc from caffe.proto (needs grpcio-tools).

The descriptor set, not protoc's generated Python, is committed: a serialized
FileDescriptorSet loads under every protobuf runtime from 3.20 on, while generated
_pb2 modules are tied to the protoc version that wrote them.
"""
import sys
from pathlib import Path

PROTO_DIR = Path(__file__).resolve().parent.parent / "converter" / "proto"


def build(out_path: Path) -> None:
    from grpc_tools import protoc

    rc = protoc.main(["protoc", f"-I{PROTO_DIR}", f"--descriptor_set_out={out_path}",
                      str(PROTO_DIR / "caffe.proto")])
    if rc != 0:
        raise SystemExit(f"protoc failed with exit code {rc}")


if __name__ == "__main__":
    build(Path(sys.argv[1]) if len(sys.argv) > 1 else PROTO_DIR / "caffe.desc")
