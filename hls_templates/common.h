// bnnflow HLS stream library: shared helpers.
//
// Streams are hls::stream<ap_uint<LANES * EB>>: element i of a beat at bits [i*EB +: EB]
// (lowest index in the lowest bits), as on the RTL wire. Weight, threshold and parameter
// memories are const arrays of 64-bit chunks, mem[address][chunk], chunk c holding bits
// [64*c +: 64] of the memory word; the word layouts are those of the RTL engines.
#ifndef BNNFLOW_COMMON_H
#define BNNFLOW_COMMON_H

#include <stdint.h>

#include <ap_int.h>
#include <hls_stream.h>

namespace bnnflow {

// Words are handled as arrays of 64-bit chunks (chunk c = bits [64*c +: 64]): memories are
// stored that way, and beats are split into chunks once, so that every element access is a
// shift and a mask of at most two chunks.
template <int W>
void unpack(const ap_uint<W>& x, uint64_t c[(W + 63) / 64]) {
#pragma HLS INLINE
    for (int i = 0; i < (W + 63) / 64; i++) {
#pragma HLS UNROLL
        const int hi = (64 * i + 63 < W) ? 64 * i + 63 : W - 1;
        c[i] = x.range(hi, 64 * i).to_uint64();
    }
}

template <int W>
ap_uint<W> pack(const uint64_t c[(W + 63) / 64]) {
#pragma HLS INLINE
    ap_uint<W> x = 0;
    for (int i = 0; i < (W + 63) / 64; i++) {
#pragma HLS UNROLL
        const int hi = (64 * i + 63 < W) ? 64 * i + 63 : W - 1;
        x.range(hi, 64 * i) = c[i];
    }
    return x;
}

// Bits [pos +: b] (1 <= b <= 64) of a chunked word.
inline uint64_t get_bits(const uint64_t* c, unsigned pos, unsigned b) {
#pragma HLS INLINE
    const unsigned i = pos / 64, o = pos % 64;
    uint64_t v = c[i] >> o;
    if (o + b > 64) v |= c[i + 1] << (64 - o);
    return b == 64 ? v : (v & ((1ULL << b) - 1));
}

// Write the low b bits of v at [pos +: b] of a chunked word (the field must be zero).
inline void put_bits(uint64_t* c, unsigned pos, unsigned b, uint64_t v) {
#pragma HLS INLINE
    const unsigned i = pos / 64, o = pos % 64;
    if (b < 64) v &= (1ULL << b) - 1;
    c[i] |= v << o;
    if (o + b > 64) c[i + 1] |= v >> (64 - o);
}

// Element i (B <= 64 bits) of a chunked word, zero- or sign-extended to B+1 bits.
template <unsigned B, unsigned SIGNED>
ap_int<B + 1> lane(const uint64_t* c, unsigned i) {
#pragma HLS INLINE
    const ap_uint<B> u = get_bits(c, i * B, B);
    if (SIGNED) {
        const ap_int<B> s = u;
        return s;
    }
    return u;
}

// Store the low B bits of v as element i of a chunked word.
template <unsigned B, typename V>
void set_lane(uint64_t* c, unsigned i, const V& v) {
#pragma HLS INLINE
    const ap_uint<B> u = v;
    put_bits(c, i * B, B, u.to_uint64());
}

// Population count of a 64-bit value as an adder tree (no multiplier).
inline unsigned popcount64(uint64_t x) {
#pragma HLS INLINE
    x = x - ((x >> 1) & 0x5555555555555555ULL);
    x = (x & 0x3333333333333333ULL) + ((x >> 2) & 0x3333333333333333ULL);
    x = (x + (x >> 4)) & 0x0F0F0F0F0F0F0F0FULL;
    x = x + (x >> 8);
    x = x + (x >> 16);
    x = x + (x >> 32);
    return (unsigned)(x & 0x7F);
}

// x times a K-hot weight field: K terms of (2 + SB) bits, low 2 bits the sign code
// (00 zero, 01 +1, 11 -1), high SB bits the shift. Shift-add only; wraps modulo 2**ACC.
template <unsigned K, unsigned SB, unsigned ACC>
ap_int<ACC> khot_mul(const ap_int<ACC>& x, const ap_uint<K * (2 + SB)>& f) {
#pragma HLS INLINE
    static_assert(K * (2 + SB) <= 64, "a K-hot weight field is at most 64 bits");
    // The fields are read with native shifts and masks of the (<= 64-bit) word: the same
    // wires in hardware, and no ap_range_ref objects in C simulation.
    const uint64_t bits = f.to_uint64();
    ap_int<ACC> y = 0;
    for (unsigned j = 0; j < K; j++) {
#pragma HLS UNROLL
        const unsigned code = (unsigned)(bits >> (j * (2 + SB))) & 3u;
        const unsigned sh = (unsigned)(bits >> (j * (2 + SB) + 2)) & ((1u << SB) - 1u);
        const ap_int<ACC> t = x << sh;
        if (code == 1) y += t;
        else if (code == 3) y -= t;
    }
    return y;
}

}  // namespace bnnflow

#endif
