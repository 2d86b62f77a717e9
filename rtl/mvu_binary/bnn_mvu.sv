// Streaming binary matrix-vector(-threshold) unit: XNOR-popcount of an MW-bit input
// vector against an MH x MW weight matrix, optionally followed by multi-thresholding.
//
// Folding: PE output neurons and SIMD input bits per step; NF = MH/PE neuron folds,
// SF = MW/SIMD synapse folds. Schedule (as FINN's MVAU): for nf in 0..NF-1, for sf in
// 0..SF-1, one step per clock. Input beats (SIMD bits each) are written into a
// ping-pong buffer of two MW-bit banks: the next frame fills one bank while the
// current frame is replayed from the other, so back-to-back frames cost NF*SF cycles.
// A step reading a word that arrives in the same cycle takes it straight from the bus.
//
// The pipeline (input buffer, schedule, weight memory, accumulation, thresholds) is the
// skeleton rtl/common/mvu_pipeline.sv shared with int_mvu; this unit's per-lane product is
// the XNOR of SIMD input and weight bits, summed by a popcount per PE (S2). Above
// PC_GROUP lanes the popcount takes one more register stage (DOT_LAT = 1): groups of
// PC_GROUP lanes are counted and registered, their sum goes into S2. That keeps the
// slowest path at the depth of a PC_GROUP-lane tree (ECP5, sfc-w1a1: SIMD 196 in one stage
// ran at 68 MHz; a 64-lane tree was the path at 90.7 MHz); the unit's first output comes one
// cycle later, its cycles per frame are unchanged.
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
    localparam int PCW = $clog2(SIMD + 1);   // per-step popcount width
    localparam int ACCW = $clog2(MW + 1);    // accumulator width
    localparam int PC_GROUP = 32;            // lanes per registered popcount group
    localparam int G = (SIMD + PC_GROUP - 1) / PC_GROUP;
    localparam int DOT_LAT = (G > 1) ? 1 : 0;

    initial begin
        if (MW % SIMD != 0 || MH % PE != 0) $error("bnn_mvu: SIMD must divide MW and PE must divide MH");
    end

    logic [SIMD-1:0]    x1;
    logic [PE*SIMD-1:0] w1;
    logic [PE*PCW-1:0]  pc;
    logic               dot_en;
    mvu_pipeline #(.XW(SIMD), .WW(PE*SIMD), .DW(PCW), .ACCW(ACCW), .SIGNED(0), .DOT_LAT(DOT_LAT), .PE(PE),
                   .NF(NF), .SF(SF),
                   .USE_THRESH(USE_THRESH), .T(T), .TB(TB), .OUT_BITS(OUT_BITS),
                   .WEIGHTS_FILE(WEIGHTS_FILE), .THRESH_FILE(THRESH_FILE), .RAM_STYLE(RAM_STYLE)) u_pipe (
        .ap_clk, .ap_rst_n, .s_axis_tdata, .s_axis_tvalid, .s_axis_tready,
        .m_axis_tdata, .m_axis_tvalid, .m_axis_tready, .x1, .w1, .dot_en, .dot(pc));

    // ---------------- S2: XNOR-popcount ----------------
    if (G == 1) begin : g_one
        wire unused = dot_en;
        for (genvar p = 0; p < PE; p++) begin : g_pc
            bnn_popcount #(.N(SIMD), .CW(PCW)) u_pc (.x(x1), .w(w1[p*SIMD +: SIMD]), .count(pc[p*PCW +: PCW]));
        end
    end else begin : g_grouped
        localparam int GCW = $clog2(PC_GROUP + 1);
        for (genvar p = 0; p < PE; p++) begin : g_pc
            logic [GCW-1:0] gc [G];  // registered group counts
            for (genvar g = 0; g < G; g++) begin : g_grp
                localparam int LO = g * PC_GROUP;
                localparam int N = (SIMD - LO < PC_GROUP) ? SIMD - LO : PC_GROUP;
                localparam int CW = $clog2(N + 1);
                logic [CW-1:0] c;
                bnn_popcount #(.N(N), .CW(CW)) u_pc (.x(x1[LO +: N]), .w(w1[p*SIMD + LO +: N]), .count(c));
                always_ff @(posedge ap_clk) if (dot_en) gc[g] <= GCW'(c);
            end
            always_comb begin
                logic [PCW-1:0] s;
                s = '0;
                for (int g = 0; g < G; g++) s = s + PCW'(gc[g]);
                pc[p*PCW +: PCW] = s;
            end
        end
    end
endmodule
