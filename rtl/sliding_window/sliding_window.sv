// NHWC sliding-window generator with a circular line buffer.
//
// Input: an IFM_H x IFM_W x C image, SIMD channels per beat, beats in (y, x, c) order
// (IN_BEATS = IFM_H*IFM_W*C/SIMD per frame). Output: for every window (oy, ox) the K*K_W*C
// elements in (ky, kx, c) order, SIMD per beat (OUT_BEATS = OH*OW*K*K_W*C/SIMD), with
// OH = (IFM_H + PAD + PAD_BOTTOM - (K-1)*DIL_H - 1)/STRIDE + 1 and
// OW = (IFM_W + PAD_LEFT + PAD_RIGHT - (K_W-1)*DIL_W - 1)/STRIDE_W + 1. K, STRIDE and PAD
// are the height's kernel, stride and top padding; the width's and the other sides default
// to them (a square window), the dilations to 1. Taps outside the image read PAD_VALUE.
// A 1-D window is IFM_H = K = 1.
//
// Buffer: BD = 2**ceil(log2((KEH+STRIDE)*IFM_W*C/SIMD)) beats of SIMD*ELEM_BITS bits, with
// KEH = (K-1)*DIL_H + 1 the rows one window spans, or BUF_BEATS where given (deeper, so that the
// next frame's first window row streams too: flow/ops/sliding_window.py line_buffer_beats). Input beat
// g of the stream (counted over frames) lives at address g mod BD. The writer may run ahead
// of the reader up to BD beats past the first beat the reader still needs (the first beat of
// the current window in its top row), and up to two frames ahead, so frames overlap and both
// sides stream at one beat per clock; freeing window by window, not row by row, lets the
// writer fill the next frame's first rows while the reader finishes the last window row.
// Steady state: max(IN_BEATS, OUT_BEATS) cycles per frame (the last output beat of a frame
// also waits until the frame's last input beat is in).
//
// Read pipeline: issue (address, availability) -> S1 (buffer read) -> output register.
module sliding_window #(
    parameter int IFM_H = 4,
    parameter int IFM_W = 4,
    parameter int C = 2,
    parameter int K = 3,
    parameter int STRIDE = 1,
    parameter int PAD = 1,
    parameter int PAD_VALUE = 0,
    parameter int SIMD = 1,
    parameter int ELEM_BITS = 4,
    parameter int K_W = K,
    parameter int STRIDE_W = STRIDE,
    parameter int PAD_LEFT = PAD,
    parameter int PAD_BOTTOM = PAD,
    parameter int PAD_RIGHT = PAD_LEFT,
    parameter int DIL_H = 1,
    parameter int DIL_W = 1,
    parameter int BUF_BEATS = 0,  // line buffer depth, a power of two above the default; 0: the default
    /* verilator lint_off UNUSEDPARAM */
    parameter RAM_STYLE = "auto"  // only read by synthesis (ram_style attribute of the buffer)
    /* verilator lint_on UNUSEDPARAM */
) (
    input  logic                        ap_clk,
    input  logic                        ap_rst_n,
    input  logic [SIMD*ELEM_BITS-1:0]   s_axis_tdata,
    input  logic                        s_axis_tvalid,
    output logic                        s_axis_tready,
    output logic [SIMD*ELEM_BITS-1:0]   m_axis_tdata,
    output logic                        m_axis_tvalid,
    input  logic                        m_axis_tready
);
    localparam int DW = SIMD * ELEM_BITS;
    localparam int CF = C / SIMD;
    localparam int KEH = (K - 1) * DIL_H + 1;              // rows one window spans
    localparam int KEW = (K_W - 1) * DIL_W + 1;            // columns one window spans
    localparam int OH = (IFM_H + PAD + PAD_BOTTOM - KEH) / STRIDE + 1;
    localparam int OW = (IFM_W + PAD_LEFT + PAD_RIGHT - KEW) / STRIDE_W + 1;
    localparam int ROWB = IFM_W * CF;                      // beats per image row
    localparam int NIN = IFM_H * ROWB;                     // input beats per frame
    localparam int AW = (BUF_BEATS > 0) ? $clog2(BUF_BEATS) : $clog2((KEH + STRIDE) * ROWB);  // buffer address bits
    localparam int BD = 1 << AW;
    localparam int PMAX = (PAD > PAD_LEFT) ? PAD : PAD_LEFT;
    localparam int KMAX = (K > K_W) ? K : K_W;
    localparam int KEMAX = (KEH > KEW) ? KEH : KEW;
    // signed index arithmetic: frame-relative beat indices, padded rows/columns negative
    localparam int IW = $clog2(NIN + BD + (KEH + STRIDE + PAD) * ROWB + PAD_LEFT * CF + 1) + 2;
    localparam int CW = $clog2(((CF > KMAX) ? CF : KMAX) + 1) + 1;
    localparam int OYW = $clog2(OH + 1) + 1;
    localparam int OXW = $clog2(OW + 1) + 1;
    localparam int YW = $clog2(IFM_H + KEMAX + STRIDE * OH + PMAX + 1) + 2;
    localparam int XW = $clog2(IFM_W + KEMAX + STRIDE_W * OW + PMAX + 1) + 2;

    initial begin
        if (C % SIMD != 0) $error("sliding_window: SIMD must divide C");
        if (IFM_H + PAD + PAD_BOTTOM < KEH || IFM_W + PAD_LEFT + PAD_RIGHT < KEW)
            $error("sliding_window: kernel larger than the padded image");
    end

    (* ram_style = RAM_STYLE *) logic [DW-1:0] buffer [BD];

    // ---------------- writer ----------------
    logic [IW-1:0] wcnt;         // beats of the writer's frame written so far (0..NIN-1)
    logic [1:0]    ahead;        // frames the writer is ahead of the reader (0..2)
    logic [AW-1:0] waddr;
    logic [IW-1:0] free_from;    // first beat (reader's frame) the reader still needs
    wire [IW-1:0] wglob = wcnt + ((ahead == 2'd0) ? '0 : (ahead == 2'd1) ? IW'(NIN) : IW'(2 * NIN));
    wire w_last = (wcnt == IW'(NIN - 1));
    assign s_axis_tready = ($signed(wglob) < $signed(free_from + IW'(BD))) && !(ahead == 2'd2 && w_last);
    wire in_fire = s_axis_tvalid & s_axis_tready;

    // ---------------- reader counters ----------------
    logic [OYW-1:0] oy;
    logic [OXW-1:0] ox;
    logic [CW-1:0]  ky, kx, cf;
    logic signed [YW-1:0] iy, y0;       // image row of the tap; first row of the window row
    logic signed [XW-1:0] ix, x0;       // image column of the tap; first column of the window
    logic signed [IW-1:0] row_base;     // y0 * ROWB
    logic signed [IW-1:0] win_base;     // y0 * ROWB + x0 * CF
    logic signed [IW-1:0] idx;          // beat index of the current tap (valid when in the image)
    logic [AW-1:0]        rbase;        // buffer address of the reader frame's first beat

    wire pad_tap = (iy < 0) || (iy >= YW'(IFM_H)) || (ix < 0) || (ix >= XW'(IFM_W));
    wire last_cf = (cf == CW'(CF - 1));
    wire last_kx = (kx == CW'(K_W - 1));
    wire last_ky = (ky == CW'(K - 1));
    wire last_ox = (ox == OXW'(OW - 1));
    wire last_oy = (oy == OYW'(OH - 1));
    wire last_tap = last_cf & last_kx & last_ky;
    wire frame_end = last_tap & last_ox & last_oy;
    // data present: padding, or written (writer in a later frame or past this beat)
    wire avail = pad_tap || (ahead != 2'd0) || ($signed(idx) < $signed(wcnt));
    wire en = ~m_axis_tvalid | m_axis_tready;
    // the last beat of a frame also waits for the writer to finish that frame
    wire issue = en & avail & (~frame_end | (ahead != 2'd0));
    // the next window of this window row starts inside the image, past what is already free:
    // every beat before its first one is then read by no later window
    wire signed [XW-1:0] x0_next = x0 + XW'(STRIDE_W);
    wire free_next = (x0_next > 0) && (x0_next < XW'(IFM_W)) && (y0 >= 0)
                     && ($signed(win_base + IW'(STRIDE_W * CF)) > $signed(free_from));

    always_ff @(posedge ap_clk) begin
        if (!ap_rst_n) begin
            wcnt <= '0;
            ahead <= 2'd0;
            waddr <= '0;
            oy <= '0; ox <= '0; ky <= '0; kx <= '0; cf <= '0;
            y0 <= YW'(-PAD);  iy <= YW'(-PAD);
            x0 <= XW'(-PAD_LEFT);  ix <= XW'(-PAD_LEFT);
            row_base <= IW'(-PAD * ROWB);
            win_base <= IW'(-PAD * ROWB - PAD_LEFT * CF);
            idx <= IW'(-PAD * ROWB - PAD_LEFT * CF);
            free_from <= '0;
            rbase <= '0;
        end else begin
            if (in_fire) begin
                waddr <= waddr + 1'b1;
                wcnt <= w_last ? '0 : wcnt + 1'b1;
            end
            // ahead: +1 when the writer finishes a frame, -1 when the reader does
            if (in_fire && w_last && !(issue && frame_end)) ahead <= ahead + 2'd1;
            else if (!(in_fire && w_last) && issue && frame_end) ahead <= ahead - 2'd1;
            if (issue) begin
                if (!last_cf) begin
                    cf <= cf + 1'b1;
                    idx <= idx + 1'b1;
                end else if (!last_kx) begin
                    cf <= '0;
                    kx <= kx + 1'b1;
                    ix <= ix + XW'(DIL_W);
                    idx <= idx + IW'((DIL_W - 1) * CF + 1);   // next tap pixel, channel 0
                end else if (!last_ky) begin
                    cf <= '0;
                    kx <= '0;
                    ky <= ky + 1'b1;
                    ix <= x0;
                    iy <= iy + YW'(DIL_H);
                    idx <= idx + IW'(DIL_H * ROWB - (K_W - 1) * DIL_W * CF - (CF - 1));
                end else if (!last_ox) begin
                    cf <= '0; kx <= '0; ky <= '0;
                    ox <= ox + 1'b1;
                    x0 <= x0 + XW'(STRIDE_W);
                    ix <= x0 + XW'(STRIDE_W);
                    iy <= y0;
                    win_base <= win_base + IW'(STRIDE_W * CF);
                    idx <= win_base + IW'(STRIDE_W * CF);
                    // the columns of the window row's top row left of the next window are no
                    // longer needed (later windows start right of them, later rows below)
                    if (free_next) free_from <= win_base + IW'(STRIDE_W * CF);
                end else if (!last_oy) begin
                    cf <= '0; kx <= '0; ky <= '0; ox <= '0;
                    oy <= oy + 1'b1;
                    y0 <= y0 + YW'(STRIDE);
                    iy <= y0 + YW'(STRIDE);
                    x0 <= XW'(-PAD_LEFT);
                    ix <= XW'(-PAD_LEFT);
                    row_base <= row_base + IW'(STRIDE * ROWB);
                    win_base <= row_base + IW'(STRIDE * ROWB - PAD_LEFT * CF);
                    idx <= row_base + IW'(STRIDE * ROWB - PAD_LEFT * CF);
                    // rows above the next window row are no longer needed
                    if ($signed(row_base + IW'(STRIDE * ROWB)) > $signed(free_from))
                        free_from <= row_base + IW'(STRIDE * ROWB);
                end else begin
                    cf <= '0; kx <= '0; ky <= '0; ox <= '0; oy <= '0;
                    y0 <= YW'(-PAD);  iy <= YW'(-PAD);
                    x0 <= XW'(-PAD_LEFT);  ix <= XW'(-PAD_LEFT);
                    row_base <= IW'(-PAD * ROWB);
                    win_base <= IW'(-PAD * ROWB - PAD_LEFT * CF);
                    idx <= IW'(-PAD * ROWB - PAD_LEFT * CF);
                    free_from <= '0;
                    rbase <= rbase + AW'(NIN);
                end
            end
        end
        if (in_fire) buffer[waddr] <= s_axis_tdata;
    end

    // ---------------- S1: buffer read; output register ----------------
    wire [AW-1:0] raddr = rbase + AW'(idx);
    logic          v1, pad1;
    logic [DW-1:0] rd1;
    always_ff @(posedge ap_clk) begin
        if (en) begin
            rd1 <= buffer[raddr];
            pad1 <= pad_tap;
        end
        if (!ap_rst_n) v1 <= 1'b0;
        else if (en) v1 <= issue;
    end

    always_ff @(posedge ap_clk) begin
        if (!ap_rst_n) m_axis_tvalid <= 1'b0;
        else if (en) m_axis_tvalid <= v1;
        if (en && v1) m_axis_tdata <= pad1 ? {SIMD{ELEM_BITS'(PAD_VALUE)}} : rd1;
    end
endmodule
