// C-simulation harness of a generated bnnflow top: streams whole frames through it.
//
//   csim IN.bin OUT.bin FRAMES [REF.bin]
//
// IN.bin holds FRAMES * BNNFLOW_IN_BEATS beats, each ceil(BNNFLOW_IN_BITS/8) bytes little
// endian (element i of a beat at bits [i*EB +: EB]); OUT.bin receives the output beats in
// the same form. With REF.bin the outputs are compared with it and a mismatch fails.
#include <stdint.h>

#include <cstdio>
#include <cstdlib>
#include <vector>

#include "bnnflow_top.h"

static const unsigned IN_BYTES = (BNNFLOW_IN_BITS + 7) / 8;
static const unsigned OUT_BYTES = (BNNFLOW_OUT_BITS + 7) / 8;

static std::vector<unsigned char> read_file(const char* path) {
    std::vector<unsigned char> data;
    FILE* f = std::fopen(path, "rb");
    if (!f) return data;
    unsigned char buf[65536];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) data.insert(data.end(), buf, buf + n);
    std::fclose(f);
    return data;
}

int main(int argc, char** argv) {
    if (argc < 4) {
        std::fprintf(stderr, "usage: %s IN.bin OUT.bin FRAMES [REF.bin]\n", argv[0]);
        return 2;
    }
    const long frames = std::atol(argv[3]);
    const std::vector<unsigned char> in = read_file(argv[1]);
    if (frames < 0 || in.size() != (size_t)frames * BNNFLOW_IN_BEATS * IN_BYTES) {
        std::fprintf(stderr, "csim: %s holds %zu bytes, expected %ld frames of %u beats of %u bytes\n", argv[1],
                     in.size(), frames, BNNFLOW_IN_BEATS, IN_BYTES);
        return 2;
    }
    std::vector<unsigned char> out((size_t)frames * BNNFLOW_OUT_BEATS * OUT_BYTES);
    hls::stream<ap_uint<BNNFLOW_IN_BITS> > s_axis("s_axis");
    hls::stream<ap_uint<BNNFLOW_OUT_BITS> > m_axis("m_axis");
    size_t ip = 0, op = 0;
    for (long f = 0; f < frames; f++) {
        for (unsigned b = 0; b < BNNFLOW_IN_BEATS; b++) {
            ap_uint<BNNFLOW_IN_BITS> beat = 0;
            for (unsigned lo = 0; lo < BNNFLOW_IN_BITS; lo += 64) {  // 64 bits at a time
                const unsigned n = (BNNFLOW_IN_BITS - lo < 64) ? BNNFLOW_IN_BITS - lo : 64;
                uint64_t v = 0;
                for (unsigned k = 0; k < (n + 7) / 8; k++) v |= (uint64_t)in[ip++] << (8 * k);
                beat.range(lo + n - 1, lo) = v;
            }
            s_axis.write(beat);
        }
        bnnflow_top(s_axis, m_axis);
        if (!s_axis.empty() || m_axis.size() != BNNFLOW_OUT_BEATS) {
            std::fprintf(stderr, "csim: frame %ld: %zu input beats left over, %zu output beats instead of %u\n", f,
                         (size_t)s_axis.size(), (size_t)m_axis.size(), BNNFLOW_OUT_BEATS);
            return 1;
        }
        for (unsigned b = 0; b < BNNFLOW_OUT_BEATS; b++) {
            const ap_uint<BNNFLOW_OUT_BITS> beat = m_axis.read();
            for (unsigned lo = 0; lo < BNNFLOW_OUT_BITS; lo += 64) {
                const unsigned n = (BNNFLOW_OUT_BITS - lo < 64) ? BNNFLOW_OUT_BITS - lo : 64;
                const uint64_t v = beat.range(lo + n - 1, lo).to_uint64();
                for (unsigned k = 0; k < (n + 7) / 8; k++) out[op++] = (unsigned char)(v >> (8 * k));
            }
        }
    }
    FILE* f = std::fopen(argv[2], "wb");
    if (!f || std::fwrite(out.data(), 1, out.size(), f) != out.size()) {
        std::fprintf(stderr, "csim: cannot write %s\n", argv[2]);
        return 2;
    }
    std::fclose(f);
    if (argc > 4) {
        const std::vector<unsigned char> ref = read_file(argv[4]);
        if (ref != out) {
            std::fprintf(stderr, "csim: outputs differ from %s\n", argv[4]);
            return 1;
        }
        std::printf("csim: %ld frames match %s\n", frames, argv[4]);
    }
    return 0;
}
