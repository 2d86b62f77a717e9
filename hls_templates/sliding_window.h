// Sliding window (convolution input generator) over an NHWC image streamed SIMD channels
// per beat: for every output pixel, its K*K window in (ky, kx, c) order. A line buffer of
// K padded rows; padding elements take PAD_VALUE.
#ifndef BNNFLOW_SLIDING_WINDOW_H
#define BNNFLOW_SLIDING_WINDOW_H

#include "common.h"

namespace bnnflow {

template <unsigned H, unsigned W, unsigned C, unsigned K, unsigned STRIDE, unsigned PAD, unsigned PAD_VALUE,
          unsigned SIMD, unsigned EB>
void sliding_window(hls::stream<ap_uint<SIMD * EB> >& in, hls::stream<ap_uint<SIMD * EB> >& out) {
    const unsigned CF = C / SIMD, HP = H + 2 * PAD, WP = W + 2 * PAD;
    const unsigned OH = (HP - K) / STRIDE + 1, OW = (WP - K) / STRIDE + 1;
    uint64_t pad_chunks[(SIMD * EB + 63) / 64] = {0};
    for (unsigned s = 0; s < SIMD; s++) {
#pragma HLS UNROLL
        set_lane<EB>(pad_chunks, s, PAD_VALUE);
    }
    const ap_uint<SIMD * EB> pad_beat = pack<SIMD * EB>(pad_chunks);
    ap_uint<SIMD * EB> buf[K][WP][CF];
    for (unsigned py = 0; py < HP; py++) {
        const bool pad_row = py < PAD || py >= H + PAD;
        for (unsigned i = 0; i < WP * CF; i++) {
#pragma HLS PIPELINE II=1
            const unsigned px = i / CF, cf = i % CF;
            const bool pad = pad_row || px < PAD || px >= W + PAD;
            buf[py % K][px][cf] = pad ? pad_beat : in.read();
        }
        if (py + 1 < K || (py + 1 - K) % STRIDE != 0 || (py + 1 - K) / STRIDE >= OH) continue;
        const unsigned oy = (py + 1 - K) / STRIDE;
        for (unsigned i = 0; i < OW * K * K * CF; i++) {
#pragma HLS PIPELINE II=1
            const unsigned cf = i % CF, kx = (i / CF) % K, ky = (i / (CF * K)) % K, ox = i / (CF * K * K);
            out.write(buf[(oy * STRIDE + ky) % K][ox * STRIDE + kx][cf]);
        }
    }
}

}  // namespace bnnflow

#endif
