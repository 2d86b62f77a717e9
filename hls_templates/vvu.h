// Vector-vector unit: the depthwise convolution over a sliding window's (ky, kx, c) window
// stream (as rtl/vvu/vvu.sv). Configured by a named config struct CFG of static constexpr
// fields (as hls4ml's config structs):
//   C, TAPS        channels and kernel taps per window      PE, SIMD  channels, taps per beat
//   VECS           windows per frame                        IB        unsigned input code bits
//   W_MODE, WB     weight realisation (0 add/subtract, 1 K-hot shift-add, 2 multiplier) and
//   K, SB          field bits per lane; K-hot terms and shift bits
//   ACC            two's complement accumulator bits
//   USE_THRESH, T, TB, OB   thresholds per channel, their bits, output element bits (OB = ACC
//                  without thresholds)
//   WCH, TCH       64-bit chunks per weight / threshold memory word
// Beat j of a window is (sf, nf) = (j / NF, j % NF); element s*PE+p is tap sf*SIMD+s of
// channel nf*PE+p and reads the weight field at [(s*PE+p)*WB +: WB] of word j.
#ifndef BNNFLOW_VVU_H
#define BNNFLOW_VVU_H

#include "common.h"
#include "mvu_int.h"

namespace bnnflow {

template <typename CFG>
void vvu_core(hls::stream<ap_uint<CFG::PE * CFG::SIMD * CFG::IB> >& in, hls::stream<ap_uint<CFG::PE * CFG::OB> >& out,
              const uint64_t weights[][CFG::WCH], const uint64_t (*thresholds)[CFG::TCH]) {
#pragma HLS INLINE
    constexpr unsigned NF = CFG::C / CFG::PE, SF = CFG::TAPS / CFG::SIMD, L = CFG::PE * CFG::SIMD;
    constexpr unsigned XC = (L * CFG::IB + 63) / 64, YC = (CFG::PE * CFG::OB + 63) / 64;
    static_assert(CFG::C % CFG::PE == 0 && CFG::TAPS % CFG::SIMD == 0, "PE must divide C, SIMD must divide TAPS");
    static_assert(CFG::SIMD == 1 || CFG::PE == CFG::C, "SIMD > 1 needs PE = C");
    ap_int<CFG::ACC> acc[NF][CFG::PE];
#pragma HLS ARRAY_PARTITION variable=acc complete dim=2
    for (unsigned v = 0; v < CFG::VECS; v++) {
        for (unsigned i = 0; i < NF * SF; i++) {
#pragma HLS PIPELINE II=1
            const unsigned nf = i % NF, sf = i / NF;
            uint64_t x[XC];
            unpack<L * CFG::IB>(in.read(), x);
            uint64_t y[YC] = {0};
            for (unsigned p = 0; p < CFG::PE; p++) {
#pragma HLS UNROLL
                ap_int<CFG::ACC> dot = 0;
                for (unsigned s = 0; s < CFG::SIMD; s++) {
#pragma HLS UNROLL
                    const ap_int<CFG::ACC> xs = lane<CFG::IB, 0>(x, s * CFG::PE + p);
                    const ap_uint<CFG::WB> f = get_bits(weights[i], (s * CFG::PE + p) * CFG::WB, CFG::WB);
                    dot += int_mvu_term<CFG::W_MODE, CFG::WB, CFG::K, CFG::SB, CFG::ACC>(xs, f);
                }
                const ap_int<CFG::ACC> a = (sf == 0) ? dot : ap_int<CFG::ACC>(acc[nf][p] + dot);
                acc[nf][p] = a;
                if (CFG::USE_THRESH) {
                    unsigned cnt = 0;
                    for (unsigned t = 0; t < CFG::T; t++) {
#pragma HLS UNROLL
                        cnt += (a >= lane<CFG::TB, 1>(thresholds[nf], p * CFG::T + t)) ? 1 : 0;
                    }
                    set_lane<CFG::OB>(y, p, cnt);
                } else {
                    set_lane<CFG::OB>(y, p, a);
                }
            }
            if (sf == SF - 1) out.write(pack<CFG::PE * CFG::OB>(y));
        }
    }
}

// With thresholds: the number of thresholds each channel's accumulator reaches.
template <typename CFG>
void vvu(hls::stream<ap_uint<CFG::PE * CFG::SIMD * CFG::IB> >& in, hls::stream<ap_uint<CFG::PE * CFG::OB> >& out,
         const uint64_t weights[][CFG::WCH], const uint64_t thresholds[][CFG::TCH]) {
    static_assert(CFG::USE_THRESH, "the threshold memory is given, so USE_THRESH must be 1");
    vvu_core<CFG>(in, out, weights, thresholds);
}

// Without thresholds: the accumulators (OB = ACC bits, two's complement).
template <typename CFG>
void vvu(hls::stream<ap_uint<CFG::PE * CFG::SIMD * CFG::IB> >& in, hls::stream<ap_uint<CFG::PE * CFG::OB> >& out,
         const uint64_t weights[][CFG::WCH]) {
    static_assert(!CFG::USE_THRESH && CFG::OB == CFG::ACC, "without thresholds the output is the accumulator");
    vvu_core<CFG>(in, out, weights, nullptr);
}

}  // namespace bnnflow

#endif
