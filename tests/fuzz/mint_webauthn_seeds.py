#!/usr/bin/env python3
"""Writes the fuzz_webauthn seeds from the recorded WebAuthn vectors.

    python3 tests/fuzz/mint_webauthn_seeds.py   (from the repository's top)

Each seed is one byte picking the target in fuzz_webauthn.cpp (0 authData,
1 clientDataJSON, 2 COSE key, 3 attestation object, 4 and 5 the recorded
assertion's authData and clientDataJSON) and then the input.
"""
import base64
import hashlib
import json
import os

VECTORS = 'tests/unit/webauthn_vectors'
OUT = 'tests/fuzz/corpus/fuzz_webauthn'


def b64(s):
    return base64.urlsafe_b64decode(s + '=' * (-len(s) % 4))


def main():
    os.makedirs(OUT, exist_ok=True)
    for name in ('es256-none', 'es256-packed', 'rs256-none', 'eddsa-none'):
        with open(os.path.join(VECTORS, name + '.json')) as f:
            v = json.load(f)
        reg, first = v['registration'], v['assertions'][0]
        att = b64(reg['attestationObject'])
        # authData is the attestation object's last member.
        auth_data = att[att.rfind(hashlib.sha256(
            v['rp_id'].encode()).digest()):]
        id_len = int.from_bytes(auth_data[53:55], 'big')
        seeds = {
            'auth-data-reg': b'\0' + auth_data,
            'auth-data-get': b'\0' + b64(first['authenticatorData']),
            'client-data': b'\1' + b64(first['clientDataJSON']),
            'cose-key': b'\2' + auth_data[55 + id_len:],
            'attestation': b'\3' + att,
        }
        if name == 'es256-none':
            seeds['assert-auth-data'] = b'\4' + b64(first['authenticatorData'])
            seeds['assert-client-data'] = b'\5' + b64(first['clientDataJSON'])
        for kind, data in seeds.items():
            with open(os.path.join(OUT, f'{name}-{kind}'), 'wb') as f:
                f.write(data)


if __name__ == '__main__':
    main()
