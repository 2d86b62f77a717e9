// Streaming vector-vector(-threshold) unit: the depthwise convolution over a sliding
// window's (ky, kx, c) window stream. For each window of TAPS taps x C channels (IN_BITS
// unsigned codes), acc[c] = sum_t x[t][c] * w[c][t], optionally followed by
// multi-thresholding (FINN's VectorVectorActivation).
//
// Folding: PE channels and SIMD taps per input beat, NF = C/PE, SF = TAPS/SIMD. Beat j of a
// window is (sf, nf) = (j / NF, j % NF); element s*PE+p of the beat is tap sf*SIMD+s of
// channel nf*PE+p (a run of consecutive window elements, so SIMD > 1 needs PE = C).
// One beat per clock, NF*SF clocks per window, back-to-back windows without bubbles; the
// NF accumulator words live in a small register file between the folds of one tap.
//
// Weight realisations (W_MODE, rtl/common/lane_product.sv) and lane field layout as rtl/mvu_int/int_mvu.sv:
//   0 bipolar (1 bit, 1 -> +1, 0 -> -1): add/subtract;  1 K-hot (K terms of 2+SB bits, sign
//   code 01 +1 / 11 -1, shift): shift-add;  2 W_BITS two's complement: a multiplier.
// Weight memory: depth SF*NF, word sf*NF+nf, lane (s, p) field at [(s*PE+p)*WB +: WB].
// Pipeline: S1 (weight read, input word) -> S2 (lane products, per-PE sum over SIMD taps)
//   -> S3 (accumulate into the channel fold's word) -> S4 (thresholds / output register,
//   rtl/common/mvu_output.sv; threshold memory word nf).
// Output beat: PE elements of OUT_BITS: the accumulator (USE_THRESH=0, OUT_BITS = ACC_BITS)
// or the number of TB-bit thresholds it reaches (USE_THRESH=1).
module vvu #(
    parameter int C = 4,
    parameter int TAPS = 9,
    parameter int PE = 2,
    parameter int SIMD = 1,
    parameter int IN_BITS = 4,
    parameter int W_MODE = 2,
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
    input  logic                         ap_clk,
    input  logic                         ap_rst_n,
    input  logic [PE*SIMD*IN_BITS-1:0]   s_axis_tdata,
    input  logic                         s_axis_tvalid,
    output logic                         s_axis_tready,
    output logic [PE*OUT_BITS-1:0]       m_axis_tdata,
    output logic                         m_axis_tvalid,
    input  logic                         m_axis_tready
);
    localparam int NF = C / PE;
    localparam int SF = TAPS / SIMD;
    localparam int WDEPTH = NF * SF;
    localparam int NFW = (NF > 1) ? $clog2(NF) : 1;
    localparam int SFW = (SF > 1) ? $clog2(SF) : 1;
    localparam int WAW = (WDEPTH > 1) ? $clog2(WDEPTH) : 1;
    localparam int WB = (W_MODE == 0) ? 1 : (W_MODE == 1) ? K * (2 + SB) : W_BITS;
    localparam int L = PE * SIMD;

    initial begin
        if (C % PE != 0 || TAPS % SIMD != 0) $error("vvu: PE must divide C and SIMD must divide TAPS");
        if (SIMD > 1 && PE != C) $error("vvu: SIMD > 1 needs PE = C");
        if (USE_THRESH == 0 && OUT_BITS != ACC_BITS) $error("vvu: OUT_BITS must equal ACC_BITS without thresholds");
        if (W_MODE < 0 || W_MODE > 2) $error("vvu: W_MODE must be 0, 1 or 2");
    end

    // ---------------- schedule: one beat per enabled clock ----------------
    logic en;  // all stages advance together (from u_out: its skid register is empty)
    assign s_axis_tready = en;
    wire issue = en & s_axis_tvalid;
    logic [NFW-1:0] nf;
    logic [SFW-1:0] sf;
    logic [WAW-1:0] waddr;
    always_ff @(posedge ap_clk) begin
        if (!ap_rst_n) begin
            nf <= '0;
            sf <= '0;
            waddr <= '0;
        end else if (issue) begin
            waddr <= (waddr == WAW'(WDEPTH - 1)) ? '0 : waddr + 1'b1;
            if (nf == NFW'(NF - 1)) begin
                nf <= '0;
                sf <= (sf == SFW'(SF - 1)) ? '0 : sf + 1'b1;
            end else begin
                nf <= nf + 1'b1;
            end
        end
    end

    // ---------------- weight memory ----------------
    (* ram_style = RAM_STYLE *) logic [L*WB-1:0] wmem [WDEPTH];
    initial begin
        if (WEIGHTS_FILE != "") $readmemh(WEIGHTS_FILE, wmem);
    end

    // ---------------- S1 ----------------
    logic                 v1, first1, last1;
    logic [NFW-1:0]       nf1;
    logic [L*IN_BITS-1:0] x1;
    logic [L*WB-1:0]      w1;
    always_ff @(posedge ap_clk) begin
        if (en) begin
            w1 <= wmem[waddr];
            x1 <= s_axis_tdata;
            first1 <= (sf == '0);
            last1 <= (sf == SFW'(SF - 1));
            nf1 <= nf;
        end
        if (!ap_rst_n) v1 <= 1'b0;
        else if (en) v1 <= issue;
    end

    // ---------------- S2: lane products and per-PE sums over the SIMD taps ----------------
    logic signed [ACC_BITS-1:0] prod [SIMD][PE];
    for (genvar s = 0; s < SIMD; s++) begin : g_tap
        for (genvar p = 0; p < PE; p++) begin : g_pe
            wire signed [ACC_BITS-1:0] x = ACC_BITS'($unsigned(x1[(s*PE+p)*IN_BITS +: IN_BITS]));
            wire [WB-1:0] w = w1[(s*PE+p)*WB +: WB];
            lane_product #(.W_MODE(W_MODE), .WB(WB), .PW(ACC_BITS), .K(K), .SB(SB)) u_prod (.x, .w, .p(prod[s][p]));
        end
    end

    logic signed [ACC_BITS-1:0] dot_c [PE];
    always_comb begin
        for (int p = 0; p < PE; p++) begin
            logic signed [ACC_BITS-1:0] d;
            d = '0;
            for (int s = 0; s < SIMD; s++) d = d + prod[s][p];
            dot_c[p] = d;
        end
    end

    logic                       v2, first2, last2;
    logic [NFW-1:0]             nf2;
    logic signed [ACC_BITS-1:0] dot2 [PE];
    always_ff @(posedge ap_clk) begin
        if (en) begin
            for (int p = 0; p < PE; p++) dot2[p] <= dot_c[p];
            first2 <= first1;
            last2 <= last1;
            nf2 <= nf1;
        end
        if (!ap_rst_n) v2 <= 1'b0;
        else if (en) v2 <= v1;
    end

    // ---------------- S3: accumulate into channel fold nf2 ----------------
    logic [PE*ACC_BITS-1:0] accmem [NF];
    logic [PE*ACC_BITS-1:0] acc_c, acc3;
    always_comb begin
        for (int p = 0; p < PE; p++) begin
            logic signed [ACC_BITS-1:0] prev;
            prev = first2 ? '0 : $signed(accmem[nf2][p*ACC_BITS +: ACC_BITS]);
            acc_c[p*ACC_BITS +: ACC_BITS] = prev + dot2[p];
        end
    end
    logic v3;
    always_ff @(posedge ap_clk) begin
        if (en && v2) begin
            accmem[nf2] <= acc_c;
            acc3 <= acc_c;
        end
        if (!ap_rst_n) v3 <= 1'b0;
        else if (en) v3 <= v2 & last2;
    end

    // ---------------- S4: thresholds / output register ----------------
    mvu_output #(.PE(PE), .NF(NF), .ACCW(ACC_BITS), .SIGNED(1), .USE_THRESH(USE_THRESH), .T(T), .TB(TB),
                 .OUT_BITS(OUT_BITS), .THRESH_FILE(THRESH_FILE)) u_out (
        .ap_clk, .ap_rst_n, .en, .nfd(nf1), .v3, .acc(acc3), .m_axis_tdata, .m_axis_tvalid, .m_axis_tready);
endmodule
