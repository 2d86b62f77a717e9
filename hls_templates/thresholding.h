// Multi-threshold activation: out[c] = #{t : in[c] >= thr[c][t]}, PE channels per beat.
//   thresholds: depth NF = C/PE, word PE*T*TB bits, field p*T+t = thr[nf*PE+p][t]
//   (two's complement when IN_SIGNED, unsigned otherwise); SHARED: every channel has the same
//   thresholds and the memory holds one word, every fold's.
#ifndef BNNFLOW_THRESHOLDING_H
#define BNNFLOW_THRESHOLDING_H

#include "common.h"

namespace bnnflow {

template <unsigned C, unsigned PE, unsigned VECS, unsigned IB, unsigned IN_SIGNED, unsigned T, unsigned TB,
          unsigned OB, unsigned SHARED, unsigned TCH>
void thresholding(hls::stream<ap_uint<PE * IB> >& in, hls::stream<ap_uint<PE * OB> >& out,
                  const uint64_t thresholds[][TCH]) {
    const unsigned NF = C / PE, XC = (PE * IB + 63) / 64, YC = (PE * OB + 63) / 64;
    for (unsigned i = 0; i < VECS * NF; i++) {
#pragma HLS PIPELINE II=1
        const unsigned nf = SHARED ? 0 : i % NF;
        uint64_t x[XC];
        unpack<PE * IB>(in.read(), x);
        uint64_t y[YC] = {0};
        for (unsigned p = 0; p < PE; p++) {
#pragma HLS UNROLL
            const ap_int<IB + 1> xv = lane<IB, IN_SIGNED>(x, p);
            unsigned cnt = 0;
            for (unsigned t = 0; t < T; t++) {
#pragma HLS UNROLL
                cnt += (xv >= lane<TB, IN_SIGNED>(thresholds[nf], p * T + t)) ? 1 : 0;
            }
            set_lane<OB>(y, p, cnt);
        }
        out.write(pack<PE * OB>(y));
    }
}

}  // namespace bnnflow

#endif
