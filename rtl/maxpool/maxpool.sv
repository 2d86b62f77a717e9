// NHWC max-pool: an H x W x C image (PE channels per beat, (y, x, c) order) to the
// OH x OW x C maxima of its K x K_W windows at strides STRIDE, STRIDE_W (no padding),
// OH = (H-K)/STRIDE + 1, OW = (W-K_W)/STRIDE_W + 1 (K_W, STRIDE_W default to K, STRIDE).
// Elements are SIGNED or unsigned; on 1-bit unsigned data the max
// is an OR. A sliding_window engine lists every window's taps, a reducer keeps the
// running maximum of the window's C/PE beats and emits one beat per K*K_W taps.
// Steady state: max(H*W, OH*OW*K*K_W) * C/PE cycles per frame, the sliding window's rate.
module maxpool #(
    parameter int H = 4,
    parameter int W = 4,
    parameter int C = 2,
    parameter int K = 2,
    parameter int STRIDE = 2,
    parameter int PE = 1,
    parameter int ELEM_BITS = 4,
    parameter int SIGNED = 0,
    parameter RAM_STYLE = "auto",
    parameter int K_W = K,
    parameter int STRIDE_W = STRIDE
) (
    input  logic                      ap_clk,
    input  logic                      ap_rst_n,
    input  logic [PE*ELEM_BITS-1:0]   s_axis_tdata,
    input  logic                      s_axis_tvalid,
    output logic                      s_axis_tready,
    output logic [PE*ELEM_BITS-1:0]   m_axis_tdata,
    output logic                      m_axis_tvalid,
    input  logic                      m_axis_tready
);
    localparam int DW = PE * ELEM_BITS;
    localparam int CF = C / PE;
    localparam int TAPS = K * K_W;
    localparam int CFW = (CF > 1) ? $clog2(CF) : 1;
    localparam int TPW = (TAPS > 1) ? $clog2(TAPS) : 1;

    logic [DW-1:0] win_tdata;
    logic          win_tvalid, win_tready;
    sliding_window #(
        .IFM_H(H), .IFM_W(W), .C(C), .K(K), .STRIDE(STRIDE), .PAD(0), .PAD_VALUE(0),
        .SIMD(PE), .ELEM_BITS(ELEM_BITS), .RAM_STYLE(RAM_STYLE), .K_W(K_W), .STRIDE_W(STRIDE_W), .PAD_LEFT(0),
        .PAD_BOTTOM(0), .PAD_RIGHT(0)
    ) u_win (
        .ap_clk(ap_clk), .ap_rst_n(ap_rst_n),
        .s_axis_tdata(s_axis_tdata), .s_axis_tvalid(s_axis_tvalid), .s_axis_tready(s_axis_tready),
        .m_axis_tdata(win_tdata), .m_axis_tvalid(win_tvalid), .m_axis_tready(win_tready)
    );

    function automatic logic greater(input logic [ELEM_BITS-1:0] a, input logic [ELEM_BITS-1:0] b);
        if (SIGNED != 0) greater = $signed(a) > $signed(b);
        else greater = a > b;
    endfunction

    // ---------------- reducer: one partial-maximum beat per channel fold ----------------
    logic [DW-1:0]  part [CF];
    logic [CFW-1:0] cf;
    logic [TPW-1:0] tap;
    wire last_cf = (cf == CFW'(CF - 1));
    wire last_tap = (tap == TPW'(TAPS - 1));
    assign win_tready = ~last_tap | ~m_axis_tvalid | m_axis_tready;
    wire take = win_tvalid & win_tready;

    // The beat's running maximum, per element: the window beat at the first tap, else the larger
    // of it and the partial maximum. Called where a beat is taken, so that a cycle-based simulator
    // computes it only then (an always_comb, computed every cycle, was about a tenth of a CNV-w1a1
    // simulation); the logic is the same.
    function automatic logic [DW-1:0] merge(input logic [DW-1:0] win, input logic [DW-1:0] prev, input logic first);
        for (int p = 0; p < PE; p++) begin
            logic [ELEM_BITS-1:0] a, b;
            a = win[p*ELEM_BITS +: ELEM_BITS];
            b = prev[p*ELEM_BITS +: ELEM_BITS];
            merge[p*ELEM_BITS +: ELEM_BITS] = (first || greater(a, b)) ? a : b;
        end
    endfunction

    always_ff @(posedge ap_clk) begin
        if (!ap_rst_n) begin
            cf <= '0;
            tap <= '0;
            m_axis_tvalid <= 1'b0;
        end else begin
            if (m_axis_tready) m_axis_tvalid <= 1'b0;
            if (take) begin
                cf <= last_cf ? '0 : cf + 1'b1;
                if (last_cf) tap <= last_tap ? '0 : tap + 1'b1;
                if (last_tap) m_axis_tvalid <= 1'b1;
            end
        end
        if (take) begin
            part[cf] <= merge(win_tdata, part[cf], tap == '0);
            if (last_tap) m_axis_tdata <= merge(win_tdata, part[cf], tap == '0);
        end
    end
endmodule
