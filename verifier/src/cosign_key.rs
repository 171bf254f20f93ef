//! cosign's encrypted private key format (`ENCRYPTED SIGSTORE PRIVATE KEY`), key generation and signing.
