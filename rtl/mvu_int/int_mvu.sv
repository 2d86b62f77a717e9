// Streaming integer matrix-vector(-threshold) unit: acc[h] = sum_k x[k] * w[h][k] over an
// MW-element input vector (IN_BITS per element, signed when IN_SIGNED) and an MH x MW
// weight matrix, optionally followed by multi-thresholding.
//
// Weight realisations (W_MODE):
//   0  bipolar: one bit per weight, 1 -> +1, 0 -> -1; the product is +x or -x (add/subtract).
//   1  K-hot: each weight is a sum of up to K signed powers of two; term j of a lane is a
//      (2+SB)-bit field at [j*(2+SB) +: 2+SB]: low 2 bits the sign code (00 zero, 01 +1,
//      11 -1; 10 reads as zero), high SB bits the shift. The product is a sum of shifted x.
//   2  plain W_BITS two's-complement weights and a multiplier per lane.
// Weight memory: depth NF*SF, address nf*SF+sf, lane (p, s) field at [(p*SIMD+s)*WB +: WB]
// holding w[nf*PE+p][sf*SIMD+s], WB = 1 / K*(2+SB) / W_BITS for modes 0 / 1 / 2.
//
// Folding and schedule as bnn_mvu: NF = MH/PE, SF = MW/SIMD, NF*SF steps of one clock per
// frame, input words replayed from a ping-pong buffer, back-to-back frames without bubbles
// (rtl/common/mvu_sequencer.sv).
// The pipeline (input buffer, schedule, weight memory, accumulation, thresholds) is the
// skeleton rtl/common/mvu_pipeline.sv shared with bnn_mvu; this unit supplies the per-lane
// products (rtl/common/lane_product.sv: add/subtract, shift-add or multiply, by W_MODE) and
// their per-PE sums (S2).
//
// Output beat: PE elements of OUT_BITS; element p = the accumulator (USE_THRESH=0,
// ACC_BITS two's complement, OUT_BITS must equal ACC_BITS) or the number of thresholds
// t (TB-bit two's complement) with acc >= thr[nf*PE+p][t] (USE_THRESH=1, 0..T).
module int_mvu #(
    parameter int MW = 8,
    parameter int MH = 4,
    parameter int SIMD = 2,
    parameter int PE = 2,
    parameter int IN_BITS = 4,
    parameter int IN_SIGNED = 1,
    parameter int W_MODE = 0,
    parameter int W_BITS = 4,
    parameter int K = 2,
    parameter int SB = 3,
    parameter int ACC_BITS = 12,
    parameter int USE_THRESH = 0,
    parameter int T = 1,
    parameter int TB = 8,
    parameter int OUT_BITS = 12,
    parameter WEIGHTS_FILE = "",
    parameter THRESH_FILE = "",
    /* verilator lint_off UNUSEDPARAM */
    parameter RAM_STYLE = "auto"  // only read by synthesis (ram_style attribute of the weights)
    /* verilator lint_on UNUSEDPARAM */
) (
    input  logic                      ap_clk,
    input  logic                      ap_rst_n,
    input  logic [SIMD*IN_BITS-1:0]   s_axis_tdata,
    input  logic                      s_axis_tvalid,
    output logic                      s_axis_tready,
    output logic [PE*OUT_BITS-1:0]    m_axis_tdata,
    output logic                      m_axis_tvalid,
    input  logic                      m_axis_tready
);
    localparam int NF = MH / PE;
    localparam int SF = MW / SIMD;
    localparam int WB = (W_MODE == 0) ? 1 : (W_MODE == 1) ? K * (2 + SB) : W_BITS;
    localparam int XW = SIMD * IN_BITS;

    initial begin
        if (MW % SIMD != 0 || MH % PE != 0) $error("int_mvu: SIMD must divide MW and PE must divide MH");
        if (USE_THRESH == 0 && OUT_BITS != ACC_BITS) $error("int_mvu: OUT_BITS must equal ACC_BITS without thresholds");
        if (W_MODE < 0 || W_MODE > 2) $error("int_mvu: W_MODE must be 0, 1 or 2");
    end

    logic [XW-1:0]         x1;
    logic [PE*SIMD*WB-1:0] w1;
    logic [PE*ACC_BITS-1:0] dot;
    wire unused_dot_en;     // the products are combinational (DOT_LAT = 0)
    mvu_pipeline #(.XW(XW), .WW(PE*SIMD*WB), .DW(ACC_BITS), .ACCW(ACC_BITS), .SIGNED(1), .PE(PE), .NF(NF),
                   .SF(SF), .USE_THRESH(USE_THRESH), .T(T), .TB(TB), .OUT_BITS(OUT_BITS),
                   .WEIGHTS_FILE(WEIGHTS_FILE), .THRESH_FILE(THRESH_FILE), .RAM_STYLE(RAM_STYLE)) u_pipe (
        .ap_clk, .ap_rst_n, .s_axis_tdata, .s_axis_tvalid, .s_axis_tready,
        .m_axis_tdata, .m_axis_tvalid, .m_axis_tready, .x1, .w1, .dot_en(unused_dot_en), .dot);

    // ---------------- S2: lane products and per-PE sums ----------------
    // one dot product per PE (rtl/mvu_int/int_dot.sv: lane products and their adder tree); a
    // module of its own, so synthesis elaborates it once for all PE instances
    for (genvar p = 0; p < PE; p++) begin : g_pe
        int_dot #(.SIMD(SIMD), .IN_BITS(IN_BITS), .IN_SIGNED(IN_SIGNED), .W_MODE(W_MODE), .WB(WB),
                  .W_BITS(W_BITS), .K(K), .SB(SB), .ACC_BITS(ACC_BITS)) u_dot (
            .x(x1), .w(w1[p*SIMD*WB +: SIMD*WB]), .dot(dot[p*ACC_BITS +: ACC_BITS]));
    end
endmodule
