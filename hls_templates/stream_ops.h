// Stream plumbing for branching graphs: duplicate (fork), fifo and add_streams (residual join).
#ifndef BNNFLOW_STREAM_OPS_H
#define BNNFLOW_STREAM_OPS_H

#include "common.h"

namespace bnnflow {

// Every beat of the input on both outputs.
template <unsigned W, unsigned BEATS>
void duplicate(hls::stream<ap_uint<W> >& in, hls::stream<ap_uint<W> >& out0, hls::stream<ap_uint<W> >& out1) {
    for (unsigned i = 0; i < BEATS; i++) {
#pragma HLS PIPELINE II=1
        const ap_uint<W> x = in.read();
        out0.write(x);
        out1.write(x);
    }
}

// A FIFO stage: the beats pass unchanged; the generated top gives its output stream the
// FIFO's depth (the buffering that balances a residual branch).
template <unsigned W, unsigned BEATS>
void fifo(hls::stream<ap_uint<W> >& in, hls::stream<ap_uint<W> >& out) {
    for (unsigned i = 0; i < BEATS; i++) {
#pragma HLS PIPELINE II=1
        out.write(in.read());
    }
}

// Element-wise sum of two streams of PE lanes (operands signed when SIGNED); the sum wraps
// to OB bits (two's complement).
template <unsigned PE, unsigned AB, unsigned BB, unsigned SIGNED, unsigned OB, unsigned BEATS>
void add_streams(hls::stream<ap_uint<PE * AB> >& a, hls::stream<ap_uint<PE * BB> >& b,
                 hls::stream<ap_uint<PE * OB> >& out) {
    for (unsigned i = 0; i < BEATS; i++) {
#pragma HLS PIPELINE II=1
        uint64_t xa[(PE * AB + 63) / 64], xb[(PE * BB + 63) / 64], y[(PE * OB + 63) / 64] = {0};
        unpack<PE * AB>(a.read(), xa);
        unpack<PE * BB>(b.read(), xb);
        for (unsigned p = 0; p < PE; p++) {
#pragma HLS UNROLL
            const ap_int<(AB > BB ? AB : BB) + 2> s = lane<AB, SIGNED>(xa, p) + lane<BB, SIGNED>(xb, p);
            set_lane<OB>(y, p, s);
        }
        out.write(pack<PE * OB>(y));
    }
}

}  // namespace bnnflow

#endif
