// Binary matrix-vector unit: XNOR-popcount of SIMD input bits against PE weight rows per
// cycle, optionally followed by multi-thresholding (unsigned TB-bit thresholds).
//   weights: depth NF*SF (address nf*SF+sf), word PE*SIMD bits, bit p*SIMD+s = w[nf*PE+p][sf*SIMD+s]
//   thresholds: depth NF, word PE*T*TB bits, field p*T+t = thr[nf*PE+p][t]
// Output element: the popcount (0..MW, OB bits) or the number of thresholds passed (0..T).
#ifndef BNNFLOW_MVU_BINARY_H
#define BNNFLOW_MVU_BINARY_H

#include "common.h"

namespace bnnflow {

// Matches between the SIMD input bits and the SIMD weight bits of lane p.
template <unsigned SIMD>
unsigned xnor_popcount(const uint64_t* x, const uint64_t* w, unsigned p) {
#pragma HLS INLINE
    unsigned n = 0;
    for (unsigned j = 0; j < SIMD; j += 64) {
#pragma HLS UNROLL
        const unsigned b = (SIMD - j < 64) ? SIMD - j : 64;
        const uint64_t m = ~(get_bits(x, j, b) ^ get_bits(w, p * SIMD + j, b));
        n += popcount64(b == 64 ? m : (m & ((1ULL << b) - 1)));
    }
    return n;
}

template <unsigned MW, unsigned MH, unsigned SIMD, unsigned PE, unsigned VECS, unsigned T, unsigned TB,
          unsigned OB, unsigned WCH, unsigned TCH>
void binary_mvu(hls::stream<ap_uint<SIMD> >& in, hls::stream<ap_uint<PE * OB> >& out,
                const uint64_t weights[][WCH], const uint64_t thresholds[][TCH]) {
    const unsigned SF = MW / SIMD, NF = MH / PE, XC = (SIMD + 63) / 64, YC = (PE * OB + 63) / 64;
    uint64_t buf[SF][XC];
    unsigned acc[PE];
#pragma HLS ARRAY_PARTITION variable=acc complete
    for (unsigned v = 0; v < VECS; v++) {
        for (unsigned i = 0; i < NF * SF; i++) {
#pragma HLS PIPELINE II=1
            const unsigned nf = i / SF, sf = i % SF;
            if (nf == 0) unpack<SIMD>(in.read(), buf[sf]);
            for (unsigned p = 0; p < PE; p++) {
#pragma HLS UNROLL
                const unsigned pc = xnor_popcount<SIMD>(buf[sf], weights[i], p);
                acc[p] = (sf == 0) ? pc : acc[p] + pc;
            }
            if (sf == SF - 1) {
                uint64_t y[YC] = {0};
                for (unsigned p = 0; p < PE; p++) {
#pragma HLS UNROLL
                    unsigned cnt = 0;
                    for (unsigned t = 0; t < T; t++) {
#pragma HLS UNROLL
                        cnt += (acc[p] >= get_bits(thresholds[nf], (p * T + t) * TB, TB)) ? 1 : 0;
                    }
                    set_lane<OB>(y, p, cnt);
                }
                out.write(pack<PE * OB>(y));
            }
        }
    }
}

// Without thresholds: the popcount itself.
template <unsigned MW, unsigned MH, unsigned SIMD, unsigned PE, unsigned VECS, unsigned OB, unsigned WCH>
void binary_mvu(hls::stream<ap_uint<SIMD> >& in, hls::stream<ap_uint<PE * OB> >& out,
                const uint64_t weights[][WCH]) {
    const unsigned SF = MW / SIMD, NF = MH / PE, XC = (SIMD + 63) / 64, YC = (PE * OB + 63) / 64;
    uint64_t buf[SF][XC];
    unsigned acc[PE];
#pragma HLS ARRAY_PARTITION variable=acc complete
    for (unsigned v = 0; v < VECS; v++) {
        for (unsigned i = 0; i < NF * SF; i++) {
#pragma HLS PIPELINE II=1
            const unsigned nf = i / SF, sf = i % SF;
            if (nf == 0) unpack<SIMD>(in.read(), buf[sf]);
            uint64_t y[YC] = {0};
            for (unsigned p = 0; p < PE; p++) {
#pragma HLS UNROLL
                const unsigned pc = xnor_popcount<SIMD>(buf[sf], weights[i], p);
                acc[p] = (sf == 0) ? pc : acc[p] + pc;
                set_lane<OB>(y, p, acc[p]);
            }
            if (sf == SF - 1) out.write(pack<PE * OB>(y));
        }
    }
}

}  // namespace bnnflow

#endif
