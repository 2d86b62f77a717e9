// Max-pool over an NHWC image of unsigned EB-bit codes, PE channels per beat (a bitwise
// OR on binary data). K x KW windows with strides STRIDE, SW (KW, SW default to K, STRIDE),
// no padding; a line buffer of K rows.
#ifndef BNNFLOW_MAXPOOL_H
#define BNNFLOW_MAXPOOL_H

#include "common.h"

namespace bnnflow {

template <unsigned H, unsigned W, unsigned C, unsigned K, unsigned STRIDE, unsigned PE, unsigned EB,
          unsigned KW = K, unsigned SW = STRIDE>
void maxpool(hls::stream<ap_uint<PE * EB> >& in, hls::stream<ap_uint<PE * EB> >& out) {
    const unsigned CF = C / PE, XC = (PE * EB + 63) / 64, OH = (H - K) / STRIDE + 1, OW = (W - KW) / SW + 1;
    ap_uint<PE * EB> buf[K][W][CF];
    for (unsigned py = 0; py < H; py++) {
        for (unsigned i = 0; i < W * CF; i++) {
#pragma HLS PIPELINE II=1
            buf[py % K][i / CF][i % CF] = in.read();
        }
        if (py + 1 < K || (py + 1 - K) % STRIDE != 0 || (py + 1 - K) / STRIDE >= OH) continue;
        const unsigned oy = (py + 1 - K) / STRIDE;
        for (unsigned i = 0; i < OW * CF; i++) {
#pragma HLS PIPELINE II=1
            const unsigned ox = i / CF, cf = i % CF;
            uint64_t m[PE] = {0};
            for (unsigned ky = 0; ky < K; ky++) {
                for (unsigned kx = 0; kx < KW; kx++) {
                    uint64_t x[XC];
                    unpack<PE * EB>(buf[(oy * STRIDE + ky) % K][ox * SW + kx][cf], x);
                    for (unsigned p = 0; p < PE; p++) {
#pragma HLS UNROLL
                        const uint64_t a = get_bits(x, p * EB, EB);
                        if (a > m[p]) m[p] = a;
                    }
                }
            }
            uint64_t y[XC] = {0};
            for (unsigned p = 0; p < PE; p++) {
#pragma HLS UNROLL
                put_bits(y, p * EB, EB, m[p]);
            }
            out.write(pack<PE * EB>(y));
        }
    }
}

}  // namespace bnnflow

#endif
