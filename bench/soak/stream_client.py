"""StreamClassify traffic for bench/soak/soak.sh: keeps one bidirectional
stream open at a time, sends a two-image request every 0.1 s, answers are
checked against their request ids, and every 50 messages the stream is
closed and a new one opened (so stream set-up and tear-down are soaked too).
Counts OK answers and errors; prints them when the time is up.
  python3 stream_client.py STUBS_DIR ADDRESS SECONDS IMAGE..."""
import sys
import time

sys.path.insert(0, sys.argv[1])
import grpc  # noqa: E402
from provp.v1 import classification_pb2 as pb  # noqa: E402
from provp.v1 import classification_pb2_grpc as rpc  # noqa: E402

address, seconds, images = sys.argv[2], float(sys.argv[3]), sys.argv[4:]
encoded = [open(p, "rb").read() for p in images]
stub = rpc.ClassificationServiceStub(grpc.insecure_channel(address))
end = time.time() + seconds
ok = errors = streams = 0


def requests(count, start):
    for i in range(count):
        req = pb.ClassifyRequest(request_id=f"s{start + i}")
        req.inline_classes.names.extend(["dog", "cat", "sunflower"])
        for e in encoded[:2]:
            req.images.add(encoded=e)
        yield req
        time.sleep(0.1)
        if time.time() >= end:
            return


sent = 0
while time.time() < end:
    streams += 1
    try:
        for resp in stub.StreamClassify(requests(50, sent), timeout=120):
            if resp.HasField("error") and resp.error.code != 0:
                errors += 1
            elif resp.request_id != f"s{sent}" or len(resp.results) != 2:
                errors += 1
            else:
                ok += 1
            sent += 1
    except grpc.RpcError as e:  # counted; the next stream starts over
        errors += 1
        print(f"stream error: {e.code().name}: {e.details()}", file=sys.stderr)
        time.sleep(1)
print(f"stream_classify ok={ok} errors={errors} streams={streams}")
