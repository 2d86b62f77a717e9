// Per-channel fixed-point affine: y[c] = sat(round((x[c] * mult[c] + bias[c]) >> SHIFT)).
// C channels per frame, PE per beat (C/PE beats per frame, one per clock). ROUND = 0 floors
// (arithmetic shift), ROUND = 1 adds 2**(SHIFT-1) first (half up). The result saturates to
// OUT_BITS, signed (OUT_SIGNED=1) or unsigned.
//
// Multiplier realisation (MULT_MODE):
//   0  multiplier-free: mult is a sum of up to K signed powers of two (shift-add); its
//      field holds K terms of 2+SB bits, term j at [j*(2+SB) +: 2+SB], low 2 bits the sign
//      code (00 zero, 01 +1, 11 -1), high SB bits the shift (rtl/common/lane_product.sv).
//   1  plain MULT_BITS two's-complement mult and a multiplier.
// Parameter memory PARAMS_FILE: depth C/PE, word PE*LW bits with LW = MF + BIAS_BITS,
// MF = K*(2+SB) (mode 0) or MULT_BITS (mode 1); lane p of word nf at [p*LW +: LW] holds
// channel nf*PE+p: mult field at the low MF bits, bias (two's complement) above it.
// Pipeline: S1 (input register, parameter read) -> S2 (affine, round, saturate, output).
module fixed_scale #(
    parameter int C = 4,
    parameter int PE = 2,
    parameter int IN_BITS = 8,
    parameter int IN_SIGNED = 1,
    parameter int MULT_BITS = 8,
    parameter int BIAS_BITS = 12,
    parameter int SHIFT = 4,
    parameter int OUT_BITS = 8,
    parameter int OUT_SIGNED = 1,
    parameter int ROUND = 0,
    parameter int MULT_MODE = 1,
    parameter int K = 2,
    parameter int SB = 3,
    parameter PARAMS_FILE = "",
    /* verilator lint_off UNUSEDPARAM */
    parameter RAM_STYLE = "auto"  // only read by synthesis (ram_style attribute of the parameters)
    /* verilator lint_on UNUSEDPARAM */
) (
    input  logic                   ap_clk,
    input  logic                   ap_rst_n,
    input  logic [PE*IN_BITS-1:0]  s_axis_tdata,
    input  logic                   s_axis_tvalid,
    output logic                   s_axis_tready,
    output logic [PE*OUT_BITS-1:0] m_axis_tdata,
    output logic                   m_axis_tvalid,
    input  logic                   m_axis_tready
);
    localparam int NF = C / PE;
    localparam int NFW = (NF > 1) ? $clog2(NF) : 1;
    localparam int MF = (MULT_MODE == 0) ? K * (2 + SB) : MULT_BITS;
    localparam int LW = MF + BIAS_BITS;
    localparam int MMAG = (MULT_MODE == 0) ? (1 << SB) + 1 : MULT_BITS;   // |mult| < 2**MMAG
    localparam int PW = IN_BITS + MMAG + 1;
    localparam int AW = ((PW > BIAS_BITS) ? PW : BIAS_BITS) + 2;          // affine sum width
    localparam int RW = (AW > SHIFT + OUT_BITS + 2) ? AW : SHIFT + OUT_BITS + 2;

    initial begin
        if (C % PE != 0) $error("fixed_scale: PE must divide C");
    end

    (* ram_style = RAM_STYLE *) logic [PE*LW-1:0] pmem [NF];
    initial begin
        if (PARAMS_FILE != "") $readmemh(PARAMS_FILE, pmem);
    end

    wire en = ~m_axis_tvalid | m_axis_tready;
    assign s_axis_tready = en;
    wire in_fire = s_axis_tvalid & en;

    logic                 v1;
    logic [NFW-1:0]       nf;
    logic [PE*IN_BITS-1:0] x1;
    logic [PE*LW-1:0]     p1;
    always_ff @(posedge ap_clk) begin
        if (!ap_rst_n) begin
            nf <= '0;
            v1 <= 1'b0;
        end else if (en) begin
            v1 <= s_axis_tvalid;
            if (s_axis_tvalid) nf <= (nf == NFW'(NF - 1)) ? '0 : nf + 1'b1;
        end
        if (in_fire) begin
            x1 <= s_axis_tdata;
            p1 <= pmem[nf];
        end
    end

    // x * mult of every lane, extended to RW bits
    logic signed [RW-1:0] prod [PE];
    for (genvar p = 0; p < PE; p++) begin : g_lane
        wire [IN_BITS-1:0] xv = x1[p*IN_BITS +: IN_BITS];
        wire [MF-1:0] m = p1[p*LW +: MF];
        wire signed [RW-1:0] x = (IN_SIGNED != 0) ? RW'($signed(xv)) : RW'($unsigned(xv));
        lane_product #(.W_MODE(MULT_MODE == 0 ? 1 : 2), .WB(MF), .PW(RW), .K(K), .SB(SB)) u_prod (.x, .w(m), .p(prod[p]));
    end

    localparam logic signed [RW-1:0] HALF = (ROUND != 0 && SHIFT > 0) ? RW'(1) <<< (SHIFT - 1) : '0;
    localparam logic signed [RW-1:0] LO = (OUT_SIGNED != 0) ? -(RW'(1) <<< (OUT_BITS - 1)) : '0;
    localparam logic signed [RW-1:0] HI = (OUT_SIGNED != 0) ? (RW'(1) <<< (OUT_BITS - 1)) - 1
                                                            : (RW'(1) <<< OUT_BITS) - 1;
    logic [PE*OUT_BITS-1:0] out_c;
    always_comb begin
        for (int p = 0; p < PE; p++) begin
            logic signed [RW-1:0] a, y;
            a = prod[p] + RW'($signed(p1[p*LW + MF +: BIAS_BITS])) + HALF;
            y = a >>> SHIFT;
            if (y < LO) y = LO;
            else if (y > HI) y = HI;
            out_c[p*OUT_BITS +: OUT_BITS] = y[OUT_BITS-1:0];
        end
    end

    always_ff @(posedge ap_clk) begin
        if (!ap_rst_n) m_axis_tvalid <= 1'b0;
        else if (en) m_axis_tvalid <= v1;
        if (en && v1) m_axis_tdata <= out_c;
    end
endmodule
