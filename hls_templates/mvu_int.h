// Integer matrix-vector unit over unsigned IB-bit input codes, multiplier-free where the
// weights allow it. Each lane's weight field (WB bits) at [(p*SIMD+s)*WB +: WB] of word
// nf*SF+sf, by weight mode:
//   W_MODE 0: bipolar, 1 bit (1 -> +1, 0 -> -1): add/subtract
//   W_MODE 1: K-hot, K terms of (2+SB) bits (sign code, shift): at most K shift-adds
//   W_MODE 2: plain WB-bit two's complement: a multiplier
// The accumulator is ACC-bit two's complement; the output is the accumulator (OB = ACC)
// or the number of TB-bit two's complement thresholds it reaches.
#ifndef BNNFLOW_MVU_INT_H
#define BNNFLOW_MVU_INT_H

#include "common.h"

namespace bnnflow {

template <unsigned W_MODE, unsigned WB, unsigned K, unsigned SB, unsigned ACC>
ap_int<ACC> int_mvu_term(const ap_int<ACC>& x, const ap_uint<WB>& f) {
#pragma HLS INLINE
    if (W_MODE == 0) return f[0] ? ap_int<ACC>(x) : ap_int<ACC>(-x);
    if (W_MODE == 1) return khot_mul<K, SB, ACC>(x, f);
    const ap_int<WB> w = f;
    return x * w;
}

// The SIMD-element dot product of lane p for one input beat and one weight word.
template <unsigned SIMD, unsigned IB, unsigned W_MODE, unsigned WB, unsigned K, unsigned SB, unsigned ACC>
ap_int<ACC> int_mvu_dot(const uint64_t* x, const uint64_t* w, unsigned p) {
#pragma HLS INLINE
    ap_int<ACC> dot = 0;
    for (unsigned s = 0; s < SIMD; s++) {
#pragma HLS UNROLL
        const ap_int<ACC> xs = lane<IB, 0>(x, s);
        const ap_uint<WB> f = get_bits(w, (p * SIMD + s) * WB, WB);
        dot += int_mvu_term<W_MODE, WB, K, SB, ACC>(xs, f);
    }
    return dot;
}

template <unsigned MW, unsigned MH, unsigned SIMD, unsigned PE, unsigned VECS, unsigned IB, unsigned W_MODE,
          unsigned WB, unsigned K, unsigned SB, unsigned ACC, unsigned T, unsigned TB, unsigned OB, unsigned WCH,
          unsigned TCH>
void int_mvu(hls::stream<ap_uint<SIMD * IB> >& in, hls::stream<ap_uint<PE * OB> >& out,
             const uint64_t weights[][WCH], const uint64_t thresholds[][TCH]) {
    const unsigned SF = MW / SIMD, NF = MH / PE, XC = (SIMD * IB + 63) / 64, YC = (PE * OB + 63) / 64;
    uint64_t buf[SF][XC];
    ap_int<ACC> acc[PE];
#pragma HLS ARRAY_PARTITION variable=acc complete
    for (unsigned v = 0; v < VECS; v++) {
        for (unsigned i = 0; i < NF * SF; i++) {
#pragma HLS PIPELINE II=1
            const unsigned nf = i / SF, sf = i % SF;
            if (nf == 0) unpack<SIMD * IB>(in.read(), buf[sf]);
            for (unsigned p = 0; p < PE; p++) {
#pragma HLS UNROLL
                const ap_int<ACC> dot = int_mvu_dot<SIMD, IB, W_MODE, WB, K, SB, ACC>(buf[sf], weights[i], p);
                acc[p] = (sf == 0) ? dot : ap_int<ACC>(acc[p] + dot);
            }
            if (sf == SF - 1) {
                uint64_t y[YC] = {0};
                for (unsigned p = 0; p < PE; p++) {
#pragma HLS UNROLL
                    unsigned cnt = 0;
                    for (unsigned t = 0; t < T; t++) {
#pragma HLS UNROLL
                        cnt += (acc[p] >= lane<TB, 1>(thresholds[nf], p * T + t)) ? 1 : 0;
                    }
                    set_lane<OB>(y, p, cnt);
                }
                out.write(pack<PE * OB>(y));
            }
        }
    }
}

// Without thresholds: the accumulator (OB = ACC bits, two's complement).
template <unsigned MW, unsigned MH, unsigned SIMD, unsigned PE, unsigned VECS, unsigned IB, unsigned W_MODE,
          unsigned WB, unsigned K, unsigned SB, unsigned ACC, unsigned WCH>
void int_mvu(hls::stream<ap_uint<SIMD * IB> >& in, hls::stream<ap_uint<PE * ACC> >& out,
             const uint64_t weights[][WCH]) {
    const unsigned SF = MW / SIMD, NF = MH / PE, XC = (SIMD * IB + 63) / 64, YC = (PE * ACC + 63) / 64;
    uint64_t buf[SF][XC];
    ap_int<ACC> acc[PE];
#pragma HLS ARRAY_PARTITION variable=acc complete
    for (unsigned v = 0; v < VECS; v++) {
        for (unsigned i = 0; i < NF * SF; i++) {
#pragma HLS PIPELINE II=1
            const unsigned nf = i / SF, sf = i % SF;
            if (nf == 0) unpack<SIMD * IB>(in.read(), buf[sf]);
            uint64_t y[YC] = {0};
            for (unsigned p = 0; p < PE; p++) {
#pragma HLS UNROLL
                const ap_int<ACC> dot = int_mvu_dot<SIMD, IB, W_MODE, WB, K, SB, ACC>(buf[sf], weights[i], p);
                acc[p] = (sf == 0) ? dot : ap_int<ACC>(acc[p] + dot);
                set_lane<ACC>(y, p, acc[p]);
            }
            if (sf == SF - 1) out.write(pack<PE * ACC>(y));
        }
    }
}

}  // namespace bnnflow

#endif
