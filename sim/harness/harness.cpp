// Cycle-based driver for a verilated bnnflow top (compiled with --prefix Vtop).
//
// usage: harness IN.bin OUT.bin STATS.json FRAMES IN_BEATS/FRAME OUT_BEATS/FRAME
//                IN_BYTES OUT_BYTES [STALL_SEED|-1] [WATCHDOG_CYCLES] [STREAMS.txt]
// IN.bin holds FRAMES*IN_BEATS/FRAME beats of IN_BYTES little-endian bytes each; OUT.bin
// receives the output beats likewise. With a stall seed >= 0 the input valid and the
// output ready are dropped at random (seeded), else the input is valid whenever data
// remains and the output is always ready. Exit code 3 reports a stall (no output
// progress for WATCHDOG_CYCLES cycles).
//
// Built with -DBNNFLOW_EDGE_DEBUG (the top then has the simulation-only ports dbg_tvalid and
// dbg_tready, one bit per stream, named one per line in STREAMS.txt), a stall is diagnosed:
// the design runs a further window of cycles while the handshake of every stream is watched,
// and the report names the streams that stayed full (valid=1, ready=0) with no beat passing,
// or, when beats still move, says so. Nothing is watched before the watchdog fires, so the
// debug ports cost nothing in a run that completes.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "Vtop.h"
#include "verilated.h"

namespace {

template <typename T>
void set_sig(T& sig, const uint8_t* p, size_t n) {
    uint64_t v = 0;
    std::memcpy(&v, p, n < 8 ? n : 8);
    sig = static_cast<T>(v);
}
template <std::size_t W>
void set_sig(VlWide<W>& sig, const uint8_t* p, size_t n) {
    for (std::size_t i = 0; i < W; ++i) {
        uint32_t w = 0;
        for (std::size_t b = 0; b < 4; ++b) {
            std::size_t k = i * 4 + b;
            if (k < n) w |= static_cast<uint32_t>(p[k]) << (8 * b);
        }
        sig[i] = w;
    }
}
template <typename T>
void get_sig(const T& sig, uint8_t* p, size_t n) {
    uint64_t v = static_cast<uint64_t>(sig);
    std::memcpy(p, &v, n < 8 ? n : 8);
}
template <std::size_t W>
void get_sig(const VlWide<W>& sig, uint8_t* p, size_t n) {
    for (std::size_t k = 0; k < n; ++k) p[k] = static_cast<uint8_t>(sig[k / 4] >> (8 * (k % 4)));
}

struct Rng {  // xorshift64*
    uint64_t s;
    explicit Rng(uint64_t seed) : s(seed * 2654435761ULL + 0x9E3779B97F4A7C15ULL) {}
    uint32_t next() {
        s ^= s >> 12; s ^= s << 25; s ^= s >> 27;
        return static_cast<uint32_t>((s * 2685821657736338717ULL) >> 32);
    }
    bool chance(uint32_t percent) { return next() % 100 < percent; }
};

#ifdef BNNFLOW_EDGE_DEBUG
bool bit_of(const std::vector<uint8_t>& v, size_t i) { return (v[i / 8] >> (i % 8)) & 1; }

// One line naming the stalled streams, after running `window` more cycles under the same
// input/output policy (`drive` sets the inputs of a cycle and returns nothing).
template <typename Drive>
std::string diagnose(Vtop* top, const char* names_path, long cycle, long window, Drive drive) {
    std::vector<std::string> names;
    std::ifstream f(names_path);
    for (std::string line; std::getline(f, line);) names.push_back(line);
    const size_t n = names.size();
    const size_t nbytes = (n + 7) / 8;
    std::vector<uint8_t> v(nbytes + 8), r(nbytes + 8);
    std::vector<long> fired(n, 0), full(n, 0), empty(n, 0);
    for (long c = 0; c < window; ++c) {
        top->ap_clk = 0;
        drive();
        top->eval();
        get_sig(top->dbg_tvalid, v.data(), nbytes);
        get_sig(top->dbg_tready, r.data(), nbytes);
        for (size_t i = 0; i < n; ++i) {
            const bool vi = bit_of(v, i), ri = bit_of(r, i);
            fired[i] += vi && ri;
            full[i] += vi && !ri;
            empty[i] += !vi;
        }
        top->ap_clk = 1;
        top->eval();
    }
    std::string moving, stalled;
    long n_full = 0;
    for (size_t k = n; k-- > 0;) {  // downstream streams first
        if (fired[k]) {
            moving += (moving.empty() ? "" : ", ") + names[k] + " (" + std::to_string(fired[k]) + " beats)";
        } else if (full[k] == window) {
            if (++n_full <= 4)
                stalled += (stalled.empty() ? "" : "; ") + ("stream " + names[k]) + " full (valid=1, ready=0 for " +
                           std::to_string(window) + " cycles)";
        }
    }
    if (n_full > 4) stalled += "; " + std::to_string(n_full - 4) + " more streams full upstream";
    if (!moving.empty())
        return "no output progress, but beats still move in the last " + std::to_string(window) +
               " cycles on: " + moving;
    std::string starved;
    for (size_t k = 0; k < n; ++k)
        if (empty[k] == window && bit_of(r, k)) starved += (starved.empty() ? "" : ", ") + names[k];
    return "deadlock after " + std::to_string(cycle) + " cycles: " + (stalled.empty() ? "no stream full" : stalled) +
           (starved.empty() ? "" : "; waiting for data (valid=0, ready=1): " + starved);
}
#endif

}  // namespace

int main(int argc, char** argv) {
    if (argc < 9) {
        std::fprintf(stderr, "usage: %s IN OUT STATS FRAMES IN_BPF OUT_BPF IN_BYTES OUT_BYTES [SEED] [WATCHDOG]\n", argv[0]);
        return 2;
    }
    const char* in_path = argv[1];
    const char* out_path = argv[2];
    const char* stats_path = argv[3];
    const long frames = std::atol(argv[4]);
    const long in_bpf = std::atol(argv[5]);
    const long out_bpf = std::atol(argv[6]);
    const size_t in_bytes = std::strtoul(argv[7], nullptr, 10);
    const size_t out_bytes = std::strtoul(argv[8], nullptr, 10);
    const long seed = argc > 9 ? std::atol(argv[9]) : -1;
    const long watchdog = argc > 10 ? std::atol(argv[10]) : 1000000;
    const char* streams_path = argc > 11 ? argv[11] : nullptr;

    const long n_in = frames * in_bpf;
    const long n_out = frames * out_bpf;
    std::vector<uint8_t> in(static_cast<size_t>(n_in) * in_bytes);
    std::vector<uint8_t> out(static_cast<size_t>(n_out) * out_bytes);
    {
        FILE* f = std::fopen(in_path, "rb");
        if (!f || std::fread(in.data(), 1, in.size(), f) != in.size()) {
            std::fprintf(stderr, "harness: cannot read %ld beats from %s\n", n_in, in_path);
            return 2;
        }
        std::fclose(f);
    }

    Verilated::commandArgs(1, argv);
    Vtop* top = new Vtop;
    Rng rng(static_cast<uint64_t>(seed < 0 ? 0 : seed));
    const bool stalls = seed >= 0;

    top->ap_clk = 0;
    top->ap_rst_n = 0;
    top->s_axis_tvalid = 0;
    top->m_axis_tready = 0;
    for (int i = 0; i < 4; ++i) {
        top->ap_clk = 0; top->eval();
        top->ap_clk = 1; top->eval();
    }
    top->ap_rst_n = 1;

    long in_i = 0, out_i = 0, cycle = 0, first_in = -1, last_progress = 0;
    std::vector<long> frame_done;
    frame_done.reserve(static_cast<size_t>(frames));
    while (out_i < n_out) {
        const bool valid = in_i < n_in && !(stalls && rng.chance(30));
        const bool ready = !(stalls && rng.chance(30));
        top->ap_clk = 0;
        top->s_axis_tvalid = valid;
        if (valid) set_sig(top->s_axis_tdata, &in[static_cast<size_t>(in_i) * in_bytes], in_bytes);
        top->m_axis_tready = ready;
        top->eval();
        const bool in_fire = valid && top->s_axis_tready;
        const bool out_fire = ready && top->m_axis_tvalid;
        if (out_fire) {
            get_sig(top->m_axis_tdata, &out[static_cast<size_t>(out_i) * out_bytes], out_bytes);
            ++out_i;
            last_progress = cycle;
            if (out_i % out_bpf == 0) frame_done.push_back(cycle);
        }
        if (in_fire) {
            if (first_in < 0) first_in = cycle;
            ++in_i;
        }
        top->ap_clk = 1;
        top->eval();
        ++cycle;
        if (cycle - last_progress > watchdog) {
            std::string why = "design stalled: no output progress for " + std::to_string(watchdog) + " cycles";
#ifdef BNNFLOW_EDGE_DEBUG
            if (streams_path) {
                const long window = watchdog < 4096 ? watchdog : 4096;
                why = diagnose(top, streams_path, cycle, window, [&]() {
                    const bool v = in_i < n_in && !(stalls && rng.chance(30));
                    top->s_axis_tvalid = v;
                    if (v) set_sig(top->s_axis_tdata, &in[static_cast<size_t>(in_i) * in_bytes], in_bytes);
                    top->m_axis_tready = !(stalls && rng.chance(30));
                });
            }
#else
            (void)streams_path;
#endif
            std::fprintf(stderr, "harness: %s (input beats accepted %ld/%ld, output beats %ld/%ld)\n",
                         why.c_str(), in_i, n_in, out_i, n_out);
            return 3;
        }
    }
    top->final();
    delete top;

    FILE* f = std::fopen(out_path, "wb");
    if (!f || std::fwrite(out.data(), 1, out.size(), f) != out.size()) {
        std::fprintf(stderr, "harness: cannot write %s\n", out_path);
        return 2;
    }
    std::fclose(f);

    f = std::fopen(stats_path, "w");
    if (!f) return 2;
    std::fprintf(f, "{\"cycles\": %ld, \"frames\": %ld, \"first_in_cycle\": %ld, \"frame_done\": [", cycle, frames, first_in);
    for (size_t i = 0; i < frame_done.size(); ++i) std::fprintf(f, i ? ", %ld" : "%ld", frame_done[i]);
    std::fprintf(f, "]}\n");
    std::fclose(f);
    return 0;
}
