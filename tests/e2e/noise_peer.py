# SPDX-License-Identifier: MIT
"""An independent Noise XX peer (revision 34) for interop tests, written from the Noise
specification on top of `cryptography` (X25519, AES-GCM, ChaCha20-Poly1305) and hashlib
(SHA-256, BLAKE2b). It shares no code with secho, so an interop test cannot pass because
both sides carry the same bug; check_vectors() first proves it against the published test
vectors.

It speaks secho/1 over TCP exactly as SPEC fixes it: preamble = u16be length + protocol
name; prologue = b"secho/1" + the whole preamble; every Noise message (handshake or
transport) = u16be length + message; empty handshake payloads; one transport message per
echo message.
"""

import hashlib
import hmac
import json
import os
import socket
import struct

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305

SUITES = [
    "Noise_XX_25519_AESGCM_SHA256",
    "Noise_XX_25519_AESGCM_BLAKE2b",
    "Noise_XX_25519_ChaChaPoly_SHA256",
    "Noise_XX_25519_ChaChaPoly_BLAKE2b",
]
PROLOGUE = b"secho/1"
MAX_NONCE = 2**64 - 1
DHLEN = 32


def _raw_pub(priv):
    return priv.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )


def keypair(priv_bytes=None):
    """Returns (private key object, raw public bytes); random when priv_bytes is None."""
    priv = (
        X25519PrivateKey.from_private_bytes(priv_bytes)
        if priv_bytes is not None
        else X25519PrivateKey.generate()
    )
    return priv, _raw_pub(priv)


def _dh(priv, pub_bytes):
    return priv.exchange(X25519PublicKey.from_public_bytes(pub_bytes))


class _Suite:
    def __init__(self, name):
        parts = name.split("_")
        if len(parts) != 5 or parts[0] != "Noise" or parts[2] != "25519":
            raise ValueError("unsupported protocol name " + name)
        self.pattern, self.cipher, self.hash = parts[1], parts[3], parts[4]
        if self.cipher not in ("AESGCM", "ChaChaPoly") or self.hash not in ("SHA256", "BLAKE2b"):
            raise ValueError("unsupported protocol name " + name)
        self.hashfn = hashlib.sha256 if self.hash == "SHA256" else hashlib.blake2b
        self.hashlen = 32 if self.hash == "SHA256" else 64

    def aead(self, key):
        return AESGCM(key) if self.cipher == "AESGCM" else ChaCha20Poly1305(key)

    def nonce(self, n):
        # Noise section 12.3: AESGCM puts the counter big-endian, ChaChaPoly little-endian,
        # both after four zero bytes.
        if self.cipher == "AESGCM":
            return b"\0" * 4 + struct.pack(">Q", n)
        return b"\0" * 4 + struct.pack("<Q", n)

    def hash_(self, data):
        return self.hashfn(data).digest()

    def hkdf(self, ck, ikm, n):
        temp = hmac.new(ck, ikm, self.hashfn).digest()
        o1 = hmac.new(temp, b"\x01", self.hashfn).digest()
        o2 = hmac.new(temp, o1 + b"\x02", self.hashfn).digest()
        if n == 2:
            return o1, o2
        o3 = hmac.new(temp, o2 + b"\x03", self.hashfn).digest()
        return o1, o2, o3


class CipherState:
    def __init__(self, suite, key=None):
        self.suite = suite
        self.n = 0
        self.aead = suite.aead(key) if key is not None else None

    def encrypt(self, ad, pt):
        if self.aead is None:
            return pt
        if self.n >= MAX_NONCE:
            raise ValueError("nonce exhausted")
        ct = self.aead.encrypt(self.suite.nonce(self.n), pt, ad)
        self.n += 1
        return ct

    def decrypt(self, ad, ct):
        if self.aead is None:
            return ct
        if self.n >= MAX_NONCE:
            raise ValueError("nonce exhausted")
        pt = self.aead.decrypt(self.suite.nonce(self.n), ct, ad)  # raises InvalidTag
        self.n += 1
        return pt


class HandshakeState:
    """Noise XX only (the pattern secho/1 uses)."""

    def __init__(self, name, initiator, prologue, s_priv, e_priv=None):
        self.suite = _Suite(name)
        if self.suite.pattern != "XX":
            raise ValueError("only XX")
        nb = name.encode()
        if len(nb) <= self.suite.hashlen:
            self.h = nb + b"\0" * (self.suite.hashlen - len(nb))
        else:
            self.h = self.suite.hash_(nb)
        self.ck = self.h
        self.cs = CipherState(self.suite)
        self.initiator = initiator
        self.s, self.s_pub = keypair(s_priv)
        self.fixed_e = e_priv
        self.e = self.e_pub = None
        self.re = self.rs = None
        self.msg = 0
        self._mix_hash(prologue)

    def _mix_hash(self, data):
        self.h = self.suite.hash_(self.h + data)

    def _mix_key(self, ikm):
        self.ck, k = self.suite.hkdf(self.ck, ikm, 2)
        self.cs = CipherState(self.suite, k[:32])

    def _enc_hash(self, pt):
        ct = self.cs.encrypt(self.h, pt)
        self._mix_hash(ct)
        return ct

    def _dec_hash(self, ct):
        pt = self.cs.decrypt(self.h, ct)
        self._mix_hash(ct)
        return pt

    def _my_turn(self):
        return (self.msg % 2 == 0) == self.initiator

    @property
    def done(self):
        return self.msg >= 3

    def write_message(self, payload=b""):
        if self.done or not self._my_turn():
            raise ValueError("not our turn")
        out = b""
        if self.msg == 0:  # -> e
            self.e, self.e_pub = keypair(self.fixed_e)
            out += self.e_pub
            self._mix_hash(self.e_pub)
        elif self.msg == 1:  # <- e, ee, s, es
            self.e, self.e_pub = keypair(self.fixed_e)
            out += self.e_pub
            self._mix_hash(self.e_pub)
            self._mix_key(_dh(self.e, self.re))
            out += self._enc_hash(self.s_pub)
            self._mix_key(_dh(self.s, self.re))
        else:  # -> s, se
            out += self._enc_hash(self.s_pub)
            self._mix_key(_dh(self.s, self.re))
        out += self._enc_hash(payload)
        self.msg += 1
        return out

    def read_message(self, m):
        if self.done or self._my_turn():
            raise ValueError("not our turn")
        if self.msg == 0:  # -> e
            if len(m) < DHLEN:
                raise ValueError("short message")
            self.re, m = m[:DHLEN], m[DHLEN:]
            self._mix_hash(self.re)
        elif self.msg == 1:  # <- e, ee, s, es
            if len(m) < DHLEN + DHLEN + 16:
                raise ValueError("short message")
            self.re, m = m[:DHLEN], m[DHLEN:]
            self._mix_hash(self.re)
            self._mix_key(_dh(self.e, self.re))
            self.rs = self._dec_hash(m[: DHLEN + 16])
            m = m[DHLEN + 16 :]
            self._mix_key(_dh(self.e, self.rs))
        else:  # -> s, se
            if len(m) < DHLEN + 16:
                raise ValueError("short message")
            self.rs = self._dec_hash(m[: DHLEN + 16])
            m = m[DHLEN + 16 :]
            self._mix_key(_dh(self.e, self.rs))
        payload = self._dec_hash(m)
        self.msg += 1
        return payload

    def split(self):
        """Returns (send, recv) CipherStates for this side."""
        k1, k2 = self.suite.hkdf(self.ck, b"", 2)
        c1, c2 = CipherState(self.suite, k1[:32]), CipherState(self.suite, k2[:32])
        return (c1, c2) if self.initiator else (c2, c1)


# ---- test vectors ----


def check_vectors(path_dir):
    """Runs every XX 25519 {AESGCM,ChaChaPoly} x {SHA256,BLAKE2b} vector in the two vector
    files against this implementation. Returns how many passed; raises AssertionError on
    any mismatch."""
    count = 0
    for fname in ("cacophony.txt", "noise-c-basic.txt"):
        with open(os.path.join(path_dir, fname)) as f:
            vectors = json.load(f)["vectors"]
        for v in vectors:
            name = v.get("protocol_name") or v.get("name")
            if name not in SUITES:
                continue
            init = HandshakeState(
                name,
                True,
                bytes.fromhex(v["init_prologue"]),
                bytes.fromhex(v["init_static"]),
                bytes.fromhex(v["init_ephemeral"]),
            )
            resp = HandshakeState(
                name,
                False,
                bytes.fromhex(v["resp_prologue"]),
                bytes.fromhex(v["resp_static"]),
                bytes.fromhex(v["resp_ephemeral"]),
            )
            sender, receiver = init, resp
            send = recv = None
            for i, m in enumerate(v["messages"]):
                pt, ct = bytes.fromhex(m["payload"]), bytes.fromhex(m["ciphertext"])
                if i < 3:
                    got = sender.write_message(pt)
                    assert got == ct, "%s message %d ciphertext" % (name, i)
                    assert receiver.read_message(got) == pt, "%s message %d payload" % (name, i)
                    sender, receiver = receiver, sender
                    if i == 2:
                        assert init.h == resp.h
                        if "handshake_hash" in v:
                            assert init.h.hex() == v["handshake_hash"], name + " handshake hash"
                        isend, irecv = init.split()
                        rsend, rrecv = resp.split()
                        send = {True: isend, False: rsend}
                        recv = {True: irecv, False: rrecv}
                else:
                    # Transport: message 3 goes responder -> initiator, then alternating.
                    from_init = i % 2 == 0
                    got = send[from_init].encrypt(b"", pt)
                    assert got == ct, "%s transport message %d" % (name, i)
                    assert recv[not from_init].decrypt(b"", got) == pt
            count += 1
    return count


# ---- secho/1 over TCP ----


class Wire:
    """A socket that records every byte seen in both directions (for plaintext checks)."""

    def __init__(self, sock):
        self.sock = sock
        self.seen = bytearray()

    def send(self, data):
        self.seen += data
        self.sock.sendall(data)

    def recv_exact(self, n):
        out = bytearray()
        while len(out) < n:
            chunk = self.sock.recv(n - len(out))
            if not chunk:
                raise EOFError("connection closed after %d of %d bytes" % (len(out), n))
            out += chunk
        self.seen += out
        return bytes(out)

    def send_frame(self, body):
        self.send(struct.pack(">H", len(body)) + body)

    def recv_frame(self):
        (n,) = struct.unpack(">H", self.recv_exact(2))
        return self.recv_exact(n)

    def close(self):
        self.sock.close()


def _keep(stage, data):
    return data


class Session:
    """An established secho/1 channel. tamper(stage, bytes) -> bytes may alter what is sent
    (stages "m1", "m2", "m3" for the handshake messages, "rec" for transport records)."""

    def __init__(self, wire, hs, tamper=_keep):
        self.tamper = tamper
        self.wire = wire
        self.hs = hs
        self.send_cs, self.recv_cs = hs.split()
        self.remote_static = hs.rs
        self.handshake_hash = hs.h

    def send(self, msg):
        self.wire.send_frame(self.tamper("rec", self.send_cs.encrypt(b"", msg)))

    def recv(self):
        return self.recv_cs.decrypt(b"", self.wire.recv_frame())

    def close(self):
        self.wire.close()


def _prologue(preamble):
    return PROLOGUE + preamble


def preamble(name):
    nb = name.encode()
    return struct.pack(">H", len(nb)) + nb


def connect(sock, name, s_priv=None, tamper=_keep):
    """Initiator: runs the handshake on a connected socket. Returns a Session."""
    wire = Wire(sock)
    pre = preamble(name)
    hs = HandshakeState(name, True, _prologue(pre), s_priv)
    m1 = tamper("m1", hs.write_message())
    wire.send(pre + struct.pack(">H", len(m1)) + m1)
    hs.read_message(wire.recv_frame())
    wire.send_frame(tamper("m3", hs.write_message()))
    return Session(wire, hs, tamper)


def accept(sock, s_priv, tamper=_keep):
    """Responder: reads the preamble and runs the handshake on an accepted socket. Returns a
    Session; raises ValueError for a protocol name outside SUITES."""
    wire = Wire(sock)
    (n,) = struct.unpack(">H", wire.recv_exact(2))
    name = wire.recv_exact(n)
    if name.decode("ascii", "replace") not in SUITES:
        raise ValueError("unsupported protocol name %r" % name)
    pre = struct.pack(">H", n) + name
    hs = HandshakeState(name.decode(), False, _prologue(pre), s_priv)
    hs.read_message(wire.recv_frame())
    wire.send_frame(tamper("m2", hs.write_message()))
    hs.read_message(wire.recv_frame())
    s = Session(wire, hs, tamper)
    s.name = name.decode()
    return s


def new_static():
    """A fresh static private key as raw bytes, with its raw public key."""
    priv = X25519PrivateKey.generate()
    raw = priv.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    return raw, _raw_pub(priv)


def make_socket(port, host="127.0.0.1", timeout=10):
    return socket.create_connection((host, port), timeout=timeout)


def flip(data, bit):
    """data with one bit inverted (bit counted from the start, modulo the length)."""
    b = bytearray(data)
    bit %= len(b) * 8
    b[bit // 8] ^= 1 << (bit % 8)
    return bytes(b)
