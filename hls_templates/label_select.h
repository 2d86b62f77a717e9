// Label select: the index of the largest of L unsigned IB-bit values streamed PE per beat;
// ties go to the lowest index (as torch.argmax). One OB-bit index per frame.
#ifndef BNNFLOW_LABEL_SELECT_H
#define BNNFLOW_LABEL_SELECT_H

#include "common.h"

namespace bnnflow {

template <unsigned L, unsigned PE, unsigned IB, unsigned OB>
void label_select(hls::stream<ap_uint<PE * IB> >& in, hls::stream<ap_uint<OB> >& out) {
    ap_uint<IB> best = 0;
    ap_uint<OB> best_idx = 0;
    for (unsigned b = 0; b < L / PE; b++) {
#pragma HLS PIPELINE II=1
        const ap_uint<PE * IB> x = in.read();
        for (unsigned p = 0; p < PE; p++) {
#pragma HLS UNROLL
            const ap_uint<IB> v = x.range(p * IB + IB - 1, p * IB);
            if ((b == 0 && p == 0) || v > best) {
                best = v;
                best_idx = b * PE + p;
            }
        }
    }
    out.write(best_idx);
}

}  // namespace bnnflow

#endif
