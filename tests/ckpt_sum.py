#!/usr/bin/env python3
# sha256 of a vae-suite checkpoint's parameters and model state (not its header, which
# holds the configuration text): "the final parameters' checksum" of a run.
import hashlib, json, struct, sys
with open(sys.argv[1], 'rb') as f:
    assert f.read(8)
    (n,) = struct.unpack('<Q', f.read(8))
    h = json.loads(f.read(n))
    p = f.read(4 * h['n_params']); s = f.read(4 * h['n_state'])
print(hashlib.sha256(p).hexdigest()[:16], hashlib.sha256(s).hexdigest()[:16], h['n_params'], h['n_state'])
