// Data width converter: regroups a frame of ELEMS elements (EB bits) from IN_LANES to
// OUT_LANES per beat; one lane count divides the other. Element order is unchanged.
#ifndef BNNFLOW_DWC_H
#define BNNFLOW_DWC_H

#include "common.h"

namespace bnnflow {

template <unsigned IN_LANES, unsigned OUT_LANES, unsigned EB, unsigned ELEMS>
void dwc(hls::stream<ap_uint<IN_LANES * EB> >& in, hls::stream<ap_uint<OUT_LANES * EB> >& out) {
    const unsigned OW = OUT_LANES * EB, IW = IN_LANES * EB;
    if (IN_LANES >= OUT_LANES) {  // split every input beat
        const unsigned R = IN_LANES / OUT_LANES;
        ap_uint<IW> x = 0;
        for (unsigned i = 0; i < ELEMS / OUT_LANES; i++) {
#pragma HLS PIPELINE II=1
            if (i % R == 0) x = in.read();
            const ap_uint<OW> y = x.range((i % R) * OW + OW - 1, (i % R) * OW);
            out.write(y);
        }
    } else {  // gather input beats
        const unsigned R = OUT_LANES / IN_LANES;
        ap_uint<OW> y = 0;
        for (unsigned i = 0; i < ELEMS / IN_LANES; i++) {
#pragma HLS PIPELINE II=1
            const ap_uint<IW> x = in.read();
            y.range((i % R) * IW + IW - 1, (i % R) * IW) = x;
            if (i % R == R - 1) out.write(y);
        }
    }
}

}  // namespace bnnflow

#endif
