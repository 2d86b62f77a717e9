// StreamingConcat: two streams joined along channels. Per vector, A_BEATS beats of `a`,
// then B_BEATS beats of `b`, SIMD lanes each; lanes are zero-extended to OUT_BITS.
#ifndef BNNFLOW_CONCAT_H
#define BNNFLOW_CONCAT_H

#include "common.h"

namespace bnnflow {

// The configuration, as the generated top declares it (flow.ops.concat.StreamingConcat.hls_config):
//   struct config { static constexpr unsigned SIMD, A_BEATS, B_BEATS, A_BITS, B_BITS, OUT_BITS, VECTORS; };
template <class CFG>
void streaming_concat(hls::stream<ap_uint<CFG::SIMD * CFG::A_BITS> >& a,
                      hls::stream<ap_uint<CFG::SIMD * CFG::B_BITS> >& b,
                      hls::stream<ap_uint<CFG::SIMD * CFG::OUT_BITS> >& out) {
    constexpr unsigned AW = CFG::SIMD * CFG::A_BITS, BW = CFG::SIMD * CFG::B_BITS, OW = CFG::SIMD * CFG::OUT_BITS;
    for (unsigned v = 0; v < CFG::VECTORS; v++) {
        for (unsigned i = 0; i < CFG::A_BEATS + CFG::B_BEATS; i++) {
#pragma HLS PIPELINE II=1
            uint64_t y[(OW + 63) / 64] = {0};
            if (i < CFG::A_BEATS) {
                uint64_t x[(AW + 63) / 64];
                unpack<AW>(a.read(), x);
                for (unsigned p = 0; p < CFG::SIMD; p++) {
#pragma HLS UNROLL
                    set_lane<CFG::OUT_BITS>(y, p, lane<CFG::A_BITS, 0>(x, p));
                }
            } else {
                uint64_t x[(BW + 63) / 64];
                unpack<BW>(b.read(), x);
                for (unsigned p = 0; p < CFG::SIMD; p++) {
#pragma HLS UNROLL
                    set_lane<CFG::OUT_BITS>(y, p, lane<CFG::B_BITS, 0>(x, p));
                }
            }
            out.write(pack<OW>(y));
        }
    }
}

}  // namespace bnnflow

#endif
