#!/usr/bin/python3
"""Make cosign-format encrypted private keys with Python, independently of vouch's Rust code.

Run by hand with Debian's interpreter (needs python3-cryptography and python3-nacl):

    /usr/bin/python3 make_cosign_keys.py OUTDIR

It writes, for each of p256, p384 and ed25519, OUTDIR/cosign-ALG.key (PEM "ENCRYPTED SIGSTORE PRIVATE KEY":
JSON with scrypt N=65536 r=8 p=1, a random 32-byte salt, nacl/secretbox with a random 24-byte nonce, over the
PKCS#8 DER of the private key) and OUTDIR/cosign-ALG.pub (SPKI PEM), all with the password below. The layout
follows cosign 2.x / go-securesystemslib's `encrypted` package as documented; no code is shared with it.

    /usr/bin/python3 make_cosign_keys.py --check KEY PUB

decrypts KEY (password from $COSIGN_PASSWORD) and checks that its public key equals PUB: the reverse check,
for keys vouch wrote.
"""
import base64
import json
import os
import sys

import nacl.secret
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

PASSWORD = b"vouch test vector"
LABELS = ("ENCRYPTED SIGSTORE PRIVATE KEY", "ENCRYPTED COSIGN PRIVATE KEY")


def b64(data):
    return base64.b64encode(data).decode("ascii")


def pem(label, der):
    body = base64.b64encode(der).decode("ascii")
    lines = [body[i:i + 64] for i in range(0, len(body), 64)]
    return "-----BEGIN %s-----\n%s\n-----END %s-----\n" % (label, "\n".join(lines), label)


def encrypt(pkcs8_der, password):
    salt = os.urandom(32)
    nonce = os.urandom(24)
    key = Scrypt(salt=salt, length=32, n=65536, r=8, p=1).derive(password)
    box = nacl.secret.SecretBox(key)
    ciphertext = box.encrypt(pkcs8_der, nonce).ciphertext  # tag || ciphertext, without the nonce
    doc = {
        "kdf": {"name": "scrypt", "params": {"N": 65536, "r": 8, "p": 1}, "salt": b64(salt)},
        "cipher": {"name": "nacl/secretbox", "nonce": b64(nonce)},
        "ciphertext": b64(ciphertext),
    }
    return pem(LABELS[0], json.dumps(doc, separators=(",", ":")).encode("ascii"))


def decrypt(pem_text, password):
    lines = pem_text.strip().splitlines()
    label = lines[0][len("-----BEGIN "):-len("-----")]
    assert label in LABELS, label
    doc = json.loads(base64.b64decode("".join(lines[1:-1])))
    assert doc["kdf"]["name"] == "scrypt" and doc["cipher"]["name"] == "nacl/secretbox"
    params = doc["kdf"]["params"]
    key = Scrypt(salt=base64.b64decode(doc["kdf"]["salt"]), length=32,
                 n=params["N"], r=params["r"], p=params["p"]).derive(password)
    box = nacl.secret.SecretBox(key)
    der = box.decrypt(base64.b64decode(doc["ciphertext"]), base64.b64decode(doc["cipher"]["nonce"]))
    return serialization.load_der_private_key(der, password=None), params


def spki_pem(private_key):
    return private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode("ascii")


def make(outdir):
    keys = {
        "p256": ec.generate_private_key(ec.SECP256R1()),
        "p384": ec.generate_private_key(ec.SECP384R1()),
        "ed25519": ed25519.Ed25519PrivateKey.generate(),
    }
    for name, private_key in keys.items():
        der = private_key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                                        serialization.NoEncryption())
        with open(os.path.join(outdir, "cosign-%s.key" % name), "w") as f:
            f.write(encrypt(der, PASSWORD))
        with open(os.path.join(outdir, "cosign-%s.pub" % name), "w") as f:
            f.write(spki_pem(private_key))


def check(key_path, pub_path):
    password = os.environb[b"COSIGN_PASSWORD"]
    with open(key_path) as f:
        private_key, params = decrypt(f.read(), password)
    with open(pub_path) as f:
        expected = f.read()
    ok = spki_pem(private_key).strip() == expected.strip()
    print("%s: %s, scrypt %s, public key %s" % (key_path, type(private_key).__name__, params,
                                               "matches" if ok else "DIFFERS"))
    return 0 if ok else 1


if __name__ == "__main__":
    if sys.argv[1] == "--check":
        sys.exit(check(sys.argv[2], sys.argv[3]))
    make(sys.argv[1])
