"""Error correction for the watermark payload: CRC-32 for acceptance, a K=7 rate-1/3 convolutional code.

The convolutional code with soft-decision Viterbi decoding turns many weak, noisy bit correlations into a
reliable message; the CRC-32 over the decoded payload is what keeps false detections on unmarked images
near 2**-32 per decoded hypothesis (a random decoded word passes it with that probability).
"""

from __future__ import annotations

import zlib

import numpy as np

K = 7  # constraint length
GENERATORS = (0o133, 0o171, 0o165)  # the standard K=7 rate-1/3 code
N_STATES = 1 << (K - 1)
CRC_BITS = 32


def _parity(x: int) -> int:
    return bin(x).count("1") & 1


def _tables() -> tuple[np.ndarray, np.ndarray]:
    """Output signs for the two predecessors of every next state, and the input bit that leads there."""
    signs = np.zeros((N_STATES, 2, len(GENERATORS)), dtype=np.float64)
    for ns in range(N_STATES):
        b = ns >> (K - 2)
        for lsb in range(2):
            p = ((ns & (N_STATES // 2 - 1)) << 1) | lsb
            reg = (b << (K - 1)) | p
            for j, g in enumerate(GENERATORS):
                signs[ns, lsb, j] = 1.0 - 2.0 * _parity(reg & g)
    inputs = (np.arange(N_STATES) >> (K - 2)).astype(np.uint8)
    return signs, inputs


_SIGNS, _INPUTS = _tables()


def coded_length(n_bits: int) -> int:
    return len(GENERATORS) * (n_bits + K - 1)


def conv_encode(bits: np.ndarray) -> np.ndarray:
    """0/1 message -> 0/1 code word, zero-terminated so the decoder knows the final state."""
    out: list[int] = []
    state = 0
    for b in list(np.asarray(bits, dtype=np.uint8)) + [0] * (K - 1):
        reg = (int(b) << (K - 1)) | state
        out.extend(_parity(reg & g) for g in GENERATORS)
        state = reg >> 1
    return np.array(out, dtype=np.uint8)


def viterbi_decode(soft: np.ndarray, n_bits: int) -> np.ndarray:
    """Soft values (positive means a 0 bit, magnitude is reliability) -> most likely 0/1 message."""
    n_out = len(GENERATORS)
    steps = n_bits + K - 1
    y = np.asarray(soft, dtype=np.float64).reshape(steps, n_out)
    metric = np.full(N_STATES, -np.inf)
    metric[0] = 0.0
    decisions = np.zeros((steps, N_STATES), dtype=np.uint8)
    ns = np.arange(N_STATES)
    preds = np.stack([((ns & (N_STATES // 2 - 1)) << 1) | 0, ((ns & (N_STATES // 2 - 1)) << 1) | 1], axis=1)
    for t in range(steps):
        branch = _SIGNS @ y[t]  # (states, 2)
        cand = metric[preds] + branch
        choice = np.argmax(cand, axis=1)
        decisions[t] = choice
        metric = cand[ns, choice]
    state = 0
    bits = np.zeros(steps, dtype=np.uint8)
    for t in range(steps - 1, -1, -1):
        bits[t] = _INPUTS[state]
        state = int(preds[state, decisions[t, state]])
    return bits[:n_bits]


def int_to_bits(value: int, n: int) -> np.ndarray:
    return np.array([(value >> (n - 1 - i)) & 1 for i in range(n)], dtype=np.uint8)


def bits_to_int(bits: np.ndarray) -> int:
    v = 0
    for b in bits:
        v = (v << 1) | int(b)
    return v


def crc32_of(payload: int, n_bits: int, salt: bytes) -> int:
    return zlib.crc32(salt + payload.to_bytes((n_bits + 7) // 8, "big")) & 0xFFFFFFFF


def encode_payload(payload: int, n_bits: int, salt: bytes) -> np.ndarray:
    """Payload + CRC-32 -> convolutional code word (0/1)."""
    msg = np.concatenate([int_to_bits(payload, n_bits), int_to_bits(crc32_of(payload, n_bits, salt), CRC_BITS)])
    return conv_encode(msg)


def decode_payload_guess(soft: np.ndarray, n_bits: int, salt: bytes) -> tuple[int, bool]:
    """Soft code word -> (most likely payload, whether its CRC-32 matches)."""
    msg = viterbi_decode(soft, n_bits + CRC_BITS)
    payload = bits_to_int(msg[:n_bits])
    crc = bits_to_int(msg[n_bits:])
    return payload, crc == crc32_of(payload, n_bits, salt)


def decode_payload(soft: np.ndarray, n_bits: int, salt: bytes) -> int | None:
    """Soft code word -> payload, or None when the CRC-32 does not match (no watermark, or too damaged)."""
    payload, ok = decode_payload_guess(soft, n_bits, salt)
    return payload if ok else None
