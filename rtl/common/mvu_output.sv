// Last stage (S4) of the matrix-vector units (bnn_mvu, int_mvu): each PE's accumulator is
// compared with the T thresholds of its neuron (USE_THRESH=1; the output element is the
// number of thresholds reached) or passed through (USE_THRESH=0, OUT_BITS = ACCW), then
// registered on the output stream.
//
// The output register has a skid register behind it: the unit's pipeline advances (`en`)
// while the skid is empty, so `en` is a flip-flop's output and not the next engine's
// `m_axis_tready` of the same cycle (which otherwise runs through width converters into
// every register of the unit). A beat finished while the output register waits is parked
// in the skid and goes out next; throughput and latency are those of a plain register.
//
// Threshold memory: NF words of PE*T*TB bits, word nf holding thr[nf*PE+p][t] at
// [(p*T+t)*TB +: TB]; it is read two stages early, with the neuron fold `nfd` of the step
// entering S2, into the memory's own read register (`thr2`), which a fabric register (`thr3`)
// takes one stage later: the compare starts from a flip-flop, not from the block RAM's slow
// output (ECP5 EBR: 5.6 ns clock-to-out), and no latency is added. Accumulators and thresholds are unsigned (SIGNED=0, binary MVU popcounts) or two's
// complement (SIGNED=1); either way they are compared exactly (rtl/common/thresh_count.sv).
module mvu_output #(
    parameter int PE = 2,
    parameter int NF = 2,
    parameter int ACCW = 8,
    parameter int SIGNED = 0,
    parameter int USE_THRESH = 0,
    parameter int T = 1,
    parameter int TB = 8,
    parameter int OUT_BITS = 8,
    parameter THRESH_FILE = "",
    localparam int NFW = (NF > 1) ? $clog2(NF) : 1
) (
    input  logic                   ap_clk,
    input  logic                   ap_rst_n,
    output logic                   en,           // the pipeline advances this cycle (the skid is empty)
    input  logic [NFW-1:0]         nfd,          // neuron fold of the step entering S2
    input  logic                   v3,           // S3 holds finished accumulators
    input  logic [PE*ACCW-1:0]     acc,          // PE accumulators, lane p at [p*ACCW +: ACCW]
    output logic [PE*OUT_BITS-1:0] m_axis_tdata,
    output logic                   m_axis_tvalid,
    input  logic                   m_axis_tready
);
    localparam int THRW = PE * T * TB;

    logic [PE*OUT_BITS-1:0] out_c;
    if (USE_THRESH != 0) begin : g_thr
        logic [THRW-1:0] tmem [NF];
        logic [THRW-1:0] thr2, thr3;  // thr2 = tmem[nf2] whenever S2 holds a step
        initial begin
            if (THRESH_FILE != "") $readmemh(THRESH_FILE, tmem);
        end
        always_ff @(posedge ap_clk) begin
            if (en) begin
                thr2 <= tmem[nfd];
                thr3 <= thr2;
            end
        end
        thresh_count #(.PE(PE), .IN_BITS(ACCW), .TB(TB), .T(T), .SIGNED(SIGNED), .OUT_BITS(OUT_BITS))
            u_cmp (.x(acc), .thr(thr3), .cnt(out_c));
    end else begin : g_nothr
        always_comb begin
            for (int p = 0; p < PE; p++) out_c[p*OUT_BITS +: OUT_BITS] = OUT_BITS'(acc[p*ACCW +: ACCW]);
        end
        wire unused_nfd = ^nfd;  // only addresses the threshold memory
    end

    logic                   skid_v;
    logic [PE*OUT_BITS-1:0] skid_d;
    assign en = ~skid_v;
    wire out_free = ~m_axis_tvalid | m_axis_tready;  // the output register takes a beat this cycle
    always_ff @(posedge ap_clk) begin
        if (!ap_rst_n) begin
            m_axis_tvalid <= 1'b0;
            skid_v <= 1'b0;
        end else if (out_free) begin
            m_axis_tvalid <= skid_v | v3;  // the parked beat first (en = 0 then: no new one)
            skid_v <= 1'b0;
        end else if (v3 && !skid_v) begin
            skid_v <= 1'b1;                // finished while the output register waits
        end
        if (out_free) m_axis_tdata <= skid_v ? skid_d : out_c;
        else if (v3 && !skid_v) skid_d <= out_c;
    end
endmodule
