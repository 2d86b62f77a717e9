// Streaming binary matrix-vector(-threshold) unit: XNOR-popcount of an MW-bit input
// vector against an MH x MW weight matrix, optionally followed by multi-thresholding.
//
// Folding: PE output neurons and SIMD input bits per step; NF = MH/PE neuron folds,
// SF = MW/SIMD synapse folds. Schedule (as FINN's MVAU): for nf in 0..NF-1, for sf in
// 0..SF-1, one step per clock. Input beats (SIMD bits each) are written into a
// ping-pong buffer of two MW-bit banks: the next frame fills one bank while the
// current frame is replayed from the other, so back-to-back frames cost NF*SF cycles.
// A step reading a word that arrives in the same cycle takes it straight from the bus.
// The buffer and the schedule are rtl/common/mvu_sequencer.sv, shared with int_mvu.
//
// Pipeline: issue -> S1 (weight read, input word) -> S2 (XNOR + popcount per PE)
//   -> S3 (accumulate over sf, threshold read) -> S4 (threshold compare, output register;
//   rtl/common/mvu_output.sv).
// All stages advance together on `en` (output register empty or being taken).
//
// Output beat: PE elements of OUT_BITS; element p = popcount (USE_THRESH=0, 0..MW) or
// the number of thresholds t with popcount >= thr[nf*PE+p][t] (USE_THRESH=1, 0..T).
module bnn_mvu #(
    parameter int MW = 16,
    parameter int MH = 8,
    parameter int SIMD = 4,
    parameter int PE = 2,
    parameter int USE_THRESH = 0,
    parameter int T = 1,
    parameter int TB = 8,
    parameter int OUT_BITS = 5,
    parameter WEIGHTS_FILE = "",
    parameter THRESH_FILE = "",
    // only read by synthesis, through the ram_style attribute of the weight memory
    /* verilator lint_off UNUSEDPARAM */
    parameter RAM_STYLE = "auto"
    /* verilator lint_on UNUSEDPARAM */
) (
    input  logic                     ap_clk,
    input  logic                     ap_rst_n,
    input  logic [SIMD-1:0]          s_axis_tdata,
    input  logic                     s_axis_tvalid,
    output logic                     s_axis_tready,
    output logic [PE*OUT_BITS-1:0]   m_axis_tdata,
    output logic                     m_axis_tvalid,
    input  logic                     m_axis_tready
);
    localparam int NF = MH / PE;
    localparam int SF = MW / SIMD;
    localparam int WDEPTH = NF * SF;
    localparam int NFW = (NF > 1) ? $clog2(NF) : 1;
    localparam int WAW = (WDEPTH > 1) ? $clog2(WDEPTH) : 1;
    localparam int PCW = $clog2(SIMD + 1);   // per-step popcount width
    localparam int ACCW = $clog2(MW + 1);    // accumulator width

    initial begin
        if (MW % SIMD != 0 || MH % PE != 0) $error("bnn_mvu: SIMD must divide MW and PE must divide MH");
    end

    // ---------------- input buffer and step sequencer ----------------
    wire en = ~m_axis_tvalid | m_axis_tready;
    logic                 issue, first, last_sf;
    logic [SIMD-1:0]      x_word;
    logic [NFW-1:0]       nf;
    logic [WAW-1:0]       waddr;
    mvu_sequencer #(.XW(SIMD), .SF(SF), .NF(NF)) u_seq (
        .ap_clk, .ap_rst_n, .s_axis_tdata, .s_axis_tvalid, .s_axis_tready,
        .en, .issue, .x_word, .first, .last_sf, .nf, .waddr);

    // ---------------- weight memory ----------------
    (* ram_style = RAM_STYLE *) logic [PE*SIMD-1:0] wmem [WDEPTH];
    initial begin
        if (WEIGHTS_FILE != "") $readmemh(WEIGHTS_FILE, wmem);
    end

    // ---------------- S1 ----------------
    logic                 v1, first1, last1;
    logic [NFW-1:0]       nf1;
    logic [SIMD-1:0]      x1;
    logic [PE*SIMD-1:0]   w1;
    always_ff @(posedge ap_clk) begin
        if (en) begin
            w1 <= wmem[waddr];
            x1 <= x_word;
            first1 <= first;
            last1 <= last_sf;
            nf1 <= nf;
        end
        if (!ap_rst_n) v1 <= 1'b0;
        else if (en) v1 <= issue;
    end

    // ---------------- S2: XNOR-popcount ----------------
    logic [PCW-1:0] pc_c [PE];
    for (genvar p = 0; p < PE; p++) begin : g_pc
        bnn_popcount #(.N(SIMD), .CW(PCW)) u_pc (
            .bits(~(x1 ^ w1[p*SIMD +: SIMD])), .count(pc_c[p]));
    end
    logic           v2, first2, last2;
    logic [NFW-1:0] nf2;
    logic [PCW-1:0] pc2 [PE];
    always_ff @(posedge ap_clk) begin
        if (en) begin
            for (int p = 0; p < PE; p++) pc2[p] <= pc_c[p];
            first2 <= first1;
            last2 <= last1;
            nf2 <= nf1;
        end
        if (!ap_rst_n) v2 <= 1'b0;
        else if (en) v2 <= v1;
    end

    // ---------------- S3: accumulate ----------------
    logic            v3;
    logic [ACCW-1:0] acc [PE];
    always_ff @(posedge ap_clk) begin
        if (en && v2) begin
            for (int p = 0; p < PE; p++)
                acc[p] <= (first2 ? '0 : acc[p]) + ACCW'(pc2[p]);
        end
        if (!ap_rst_n) v3 <= 1'b0;
        else if (en) v3 <= v2 & last2;
    end

    // ---------------- S4: thresholds / output register ----------------
    logic [PE*ACCW-1:0] acc_lanes;
    always_comb for (int p = 0; p < PE; p++) acc_lanes[p*ACCW +: ACCW] = acc[p];
    mvu_output #(.PE(PE), .NF(NF), .ACCW(ACCW), .SIGNED(0), .USE_THRESH(USE_THRESH), .T(T), .TB(TB),
                 .OUT_BITS(OUT_BITS), .THRESH_FILE(THRESH_FILE)) u_out (
        .ap_clk, .ap_rst_n, .en, .nf2, .v3, .acc(acc_lanes), .m_axis_tdata, .m_axis_tvalid);
endmodule
