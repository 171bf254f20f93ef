//! Public keys (PEM: ECDSA P-256/P-384, Ed25519, RSA) and signature verification with them.
