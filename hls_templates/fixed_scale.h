// Per-channel fixed-point affine: y = sat(round((x * mult + bias) >> SHIFT)), PE channels
// per beat. Parameters: depth NF = C/PE, word PE*LW bits, lane p at [p*LW +: LW] for
// channel nf*PE+p: the low MF bits the multiplier (MULT_MODE 0: a K-hot field, shift-add;
// MULT_MODE 1: MB-bit two's complement, a multiplier), the BB-bit two's complement bias
// above. ROUND 1 adds 2**(SHIFT-1) before the arithmetic shift (half up), ROUND 0 floors.
// The result saturates to [LO, HI] and is emitted as OB bits.
#ifndef BNNFLOW_FIXED_SCALE_H
#define BNNFLOW_FIXED_SCALE_H

#include "common.h"

namespace bnnflow {

template <unsigned C, unsigned PE, unsigned VECS, unsigned IB, unsigned IN_SIGNED, unsigned MULT_MODE, unsigned MB,
          unsigned K, unsigned SB, unsigned BB, unsigned SHIFT, unsigned ROUND, unsigned ACC, long long LO,
          long long HI, unsigned OB, unsigned PCH>
void fixed_scale(hls::stream<ap_uint<PE * IB> >& in, hls::stream<ap_uint<PE * OB> >& out,
                 const uint64_t params[][PCH]) {
    const unsigned NF = C / PE;
    const unsigned MF = MULT_MODE == 0 ? K * (2 + SB) : MB;
    const unsigned LW = MF + BB;
    for (unsigned i = 0; i < VECS * NF; i++) {
#pragma HLS PIPELINE II=1
        const unsigned nf = i % NF;
        uint64_t x[(PE * IB + 63) / 64], y[(PE * OB + 63) / 64] = {0};
        unpack<PE * IB>(in.read(), x);
        for (unsigned p = 0; p < PE; p++) {
#pragma HLS UNROLL
            const ap_int<ACC> xv = lane<IB, IN_SIGNED>(x, p);
            const ap_uint<MF> mf = get_bits(params[nf], p * LW, MF);
            const ap_int<BB> bias = ap_uint<BB>(get_bits(params[nf], p * LW + MF, BB));
            ap_int<ACC> acc;
            if (MULT_MODE == 0) {
                acc = khot_mul<K, SB, ACC>(xv, mf);
            } else {
                const ap_int<MB> m = mf;
                acc = xv * m;
            }
            acc += bias;
            if (ROUND && SHIFT > 0) acc += ap_int<ACC>(1) << (SHIFT - 1);
            ap_int<ACC> r = acc >> SHIFT;
            if (r > HI) r = HI;
            if (r < LO) r = LO;
            set_lane<OB>(y, p, r);
        }
        out.write(pack<PE * OB>(y));
    }
}

}  // namespace bnnflow

#endif
