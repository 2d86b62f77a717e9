// Global accumulation pool: per-channel sum over an H x W NHWC image (the numerator of a
// global average pool), PE channels per beat; sums are OB-bit two's complement (unsigned
// when the input is unsigned). With NV > 1: the sums of NV consecutive H x W windows.
#ifndef BNNFLOW_GLOBAL_POOL_H
#define BNNFLOW_GLOBAL_POOL_H

#include "common.h"

namespace bnnflow {

template <unsigned H, unsigned W, unsigned C, unsigned PE, unsigned IB, unsigned IN_SIGNED, unsigned OB,
          unsigned NV = 1>
void global_acc_pool(hls::stream<ap_uint<PE * IB> >& in, hls::stream<ap_uint<PE * OB> >& out) {
    const unsigned CF = C / PE, XC = (PE * IB + 63) / 64, YC = (PE * OB + 63) / 64;
    ap_int<OB + 1> acc[CF][PE];
#pragma HLS ARRAY_PARTITION variable=acc complete dim=2
    for (unsigned v = 0; v < NV; v++) {
        for (unsigned i = 0; i < H * W * CF; i++) {
#pragma HLS PIPELINE II=1
            const unsigned cf = i % CF;
            uint64_t x[XC];
            unpack<PE * IB>(in.read(), x);
            for (unsigned p = 0; p < PE; p++) {
#pragma HLS UNROLL
                const ap_int<OB + 1> prev = (i < CF) ? ap_int<OB + 1>(0) : acc[cf][p];
                acc[cf][p] = prev + lane<IB, IN_SIGNED>(x, p);
            }
        }
        for (unsigned cf = 0; cf < CF; cf++) {
#pragma HLS PIPELINE II=1
            uint64_t y[YC] = {0};
            for (unsigned p = 0; p < PE; p++) {
#pragma HLS UNROLL
                set_lane<OB>(y, p, acc[cf][p]);
            }
            out.write(pack<PE * OB>(y));
        }
    }
}

}  // namespace bnnflow

#endif
