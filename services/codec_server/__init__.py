"""The codec server: decrypts payloads for the Temporal UI (and encodes what an operator types),
over the Temporal codec server protocol. See app.py."""
