"""StreamClassify traffic for bench/soak/soak.sh: keeps one bidirectional
stream open at a time, sends a two-image request every 0.1 s, answers are
checked against their request ids (in any order: with several messages in
flight the server may answer a later one first, as the API allows), and
every 50 messages the stream is closed and a new one opened (so stream
set-up and tear-down are soaked too). Counts OK answers, answers that came
before an earlier request's, and errors (each printed to stderr with the
time); prints the counts when the time is up.
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
PER_STREAM = 50
ok = errors = streams = out_of_order = 0
sent_in_stream = 0


def error(what):
    global errors
    errors += 1
    print(f"{time.strftime('%H:%M:%S')} stream error: {what}", file=sys.stderr)


def requests(count, start):
    global sent_in_stream
    sent_in_stream = 0
    for i in range(count):
        req = pb.ClassifyRequest(request_id=f"s{start + i}")
        req.inline_classes.names.extend(["dog", "cat", "sunflower"])
        for e in encoded[:2]:
            req.images.add(encoded=e)
        sent_in_stream += 1
        yield req
        time.sleep(0.1)
        if time.time() >= end:
            return


first = 0  # the first request id of the current stream
while time.time() < end:
    streams += 1
    oldest = first  # the oldest request of this stream not yet answered
    answered = set()
    try:
        for resp in stub.StreamClassify(requests(PER_STREAM, first), timeout=120):
            digits = resp.request_id[1:]
            index = int(digits) if resp.request_id[:1] == "s" and digits.isdigit() else -1
            if not first <= index < first + PER_STREAM or index in answered:
                error(f"answer to an unknown or repeated request id {resp.request_id!r}")
                continue
            answered.add(index)
            if resp.HasField("error") and resp.error.code != 0:
                error(f"{resp.request_id}: code {resp.error.code}: {resp.error.message}")
            elif len(resp.results) != 2:
                error(f"{resp.request_id}: {len(resp.results)} results for 2 images")
            else:
                ok += 1
                if index != oldest:
                    out_of_order += 1
            while oldest in answered:
                oldest += 1
        if len(answered) != sent_in_stream:
            error(f"stream ended OK with {sent_in_stream - len(answered)} of "
                  f"{sent_in_stream} requests unanswered")
    except grpc.RpcError as e:  # counted; the next stream starts over
        error(f"{e.code().name}: {e.details()}")
        time.sleep(1)
    first += PER_STREAM
print(f"stream_classify ok={ok} errors={errors} streams={streams} "
      f"answered_out_of_order={out_of_order}")
