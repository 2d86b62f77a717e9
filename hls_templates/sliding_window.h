// Sliding window (convolution input generator) over an NHWC image streamed SIMD channels
// per beat: for every output pixel, its K*KW window in (ky, kx, c) order. K, STRIDE and PAD
// are the height's kernel, stride and top padding; the width's (KW, SW), the left, bottom
// and right padding (PL, PB, PR) default to them, the dilations (DH, DW) to 1. A line
// buffer of the (K-1)*DH+1 padded rows a window spans; padding elements take PAD_VALUE.
#ifndef BNNFLOW_SLIDING_WINDOW_H
#define BNNFLOW_SLIDING_WINDOW_H

#include "common.h"

namespace bnnflow {

template <unsigned H, unsigned W, unsigned C, unsigned K, unsigned STRIDE, unsigned PAD, unsigned PAD_VALUE,
          unsigned SIMD, unsigned EB, unsigned KW = K, unsigned SW = STRIDE, unsigned PL = PAD, unsigned PB = PAD,
          unsigned PR = PL, unsigned DH = 1, unsigned DW = 1>
void sliding_window(hls::stream<ap_uint<SIMD * EB> >& in, hls::stream<ap_uint<SIMD * EB> >& out) {
    const unsigned CF = C / SIMD, HP = H + PAD + PB, WP = W + PL + PR;
    const unsigned KEH = (K - 1) * DH + 1, KEW = (KW - 1) * DW + 1;
    const unsigned OH = (HP - KEH) / STRIDE + 1, OW = (WP - KEW) / SW + 1;
    uint64_t pad_chunks[(SIMD * EB + 63) / 64] = {0};
    for (unsigned s = 0; s < SIMD; s++) {
#pragma HLS UNROLL
        set_lane<EB>(pad_chunks, s, PAD_VALUE);
    }
    const ap_uint<SIMD * EB> pad_beat = pack<SIMD * EB>(pad_chunks);
    ap_uint<SIMD * EB> buf[KEH][WP][CF];
    for (unsigned py = 0; py < HP; py++) {
        const bool pad_row = py < PAD || py >= H + PAD;
        for (unsigned i = 0; i < WP * CF; i++) {
#pragma HLS PIPELINE II=1
            const unsigned px = i / CF, cf = i % CF;
            const bool pad = pad_row || px < PL || px >= W + PL;
            buf[py % KEH][px][cf] = pad ? pad_beat : in.read();
        }
        if (py + 1 < KEH || (py + 1 - KEH) % STRIDE != 0 || (py + 1 - KEH) / STRIDE >= OH) continue;
        const unsigned oy = (py + 1 - KEH) / STRIDE;
        for (unsigned i = 0; i < OW * K * KW * CF; i++) {
#pragma HLS PIPELINE II=1
            const unsigned cf = i % CF, kx = (i / CF) % KW, ky = (i / (CF * KW)) % K, ox = i / (CF * KW * K);
            out.write(buf[(oy * STRIDE + ky * DH) % KEH][ox * SW + kx * DW][cf]);
        }
    }
}

}  // namespace bnnflow

#endif
