#!/usr/bin/env python3
"""Generates AES-GCM known-answer vectors with OpenSSL (through the `cryptography` package).

The vault tests open them with swift-crypto (BoringSSL): two independent implementations must agree.
Wycheproof's vectors are not shipped with Keywarden, so these stand in for them; rerun only to
regenerate (the output is committed):

    python3 scripts/generate-aes-gcm-vectors.py > Tests/KeywardenVaultTests/Resources/aes_gcm_vectors.json
"""
import json
import os
import random

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

rng = random.Random(20261122)


def rand(n):
    return bytes(rng.getrandbits(8) for _ in range(n))


vectors = []
for key_bits in (128, 256):
    for pt_len in (0, 1, 15, 16, 17, 31, 32, 33, 56, 64, 255, 1000):
        for aad_len in (0, 1, 13, 40):
            key, nonce, aad, pt = rand(key_bits // 8), rand(12), rand(aad_len), rand(pt_len)
            sealed = AESGCM(key).encrypt(nonce, pt, aad)
            ct, tag = sealed[:-16], sealed[-16:]
            vector = {"key": key.hex(), "nonce": nonce.hex(), "aad": aad.hex(), "pt": pt.hex(),
                      "ct": ct.hex(), "tag": tag.hex(), "valid": True}
            vectors.append(vector)
            # Every fourth vector also appears tampered: one bit of the tag, of the ciphertext, or of the aad.
            if len(vectors) % 4 == 0:
                bad_tag = bytearray(tag); bad_tag[rng.randrange(16)] ^= 1 << rng.randrange(8)
                vectors.append({**vector, "tag": bytes(bad_tag).hex(), "valid": False, "tamper": "tag"})
                if ct:
                    bad_ct = bytearray(ct); bad_ct[rng.randrange(len(ct))] ^= 1 << rng.randrange(8)
                    vectors.append({**vector, "ct": bytes(bad_ct).hex(), "valid": False, "tamper": "ciphertext"})
                if aad:
                    bad_aad = bytearray(aad); bad_aad[rng.randrange(len(aad))] ^= 1 << rng.randrange(8)
                    vectors.append({**vector, "aad": bytes(bad_aad).hex(), "valid": False, "tamper": "aad"})

print(json.dumps({"generator": "OpenSSL via python cryptography", "vectors": vectors}, indent=1))
